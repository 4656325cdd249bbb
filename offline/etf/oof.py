"""Walk-forward (out-of-fold) crash probabilities per date_id for a competition directory.

The engine offers these to the 424 regressors as a feature; each probability comes from a model
fit only on rows whose labels ended before that row's chunk began (purged by the label horizon).
The model is the frozen design's family, inputs and parameters (offline/etf/frozen.json) when the
kernel can serve it (see kit_design).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.etf.candidates import Candidate, FittedModel, candidate, fit, matrix
from offline.etf.config import EtfConfig
from offline.etf.frame import build_frame
from offline.etf.frozen import load_frozen
from offline.etf.sources import competition_frame

MIN_ROWS = 50  # labelled rows a walk-forward or final fit needs
DEFAULT_DESIGN = ("lgbm_mono", dict(candidate("lgbm_mono").grid[0]))  # before any design is frozen


def kit_design() -> tuple[Candidate, dict]:
    """The frozen design's candidate and parameters when the kernel can serve it, else DEFAULT_DESIGN.

    The kernel evaluates the crash model with its packed forest (kaggle_kernel.forest), so only a
    LightGBM family is served; a frozen rule, logistic or blend design leaves the kit on DEFAULT_DESIGN.
    """
    frozen = load_frozen()
    servable = frozen is not None and frozen.model["family"] == "lgbm"
    name, params = (frozen.model["name"], frozen.model["params"]) if servable else DEFAULT_DESIGN
    return candidate(name), params


def competition_features(prices: pl.DataFrame, cfg: EtfConfig) -> tuple[pl.DataFrame, list[str], dict]:
    """Indicators, naive rule and crash label of the competition's market ETF; the model's inputs; tickers."""
    raw, info = competition_frame(prices, tuple(cfg.market_tickers), tuple(cfg.defensive_tickers))
    return build_frame(raw, cfg), list(kit_design()[0].features), info


def fit_crash(rows: pl.DataFrame, cfg: EtfConfig) -> FittedModel:
    """The kit's crash model fit on labelled rows: one walk-forward or the final fit."""
    cand, params = kit_design()
    return fit(cand, params, rows, cfg.seed, cfg.threads)


def oof_crash_probability(comp, config: EtfConfig | None = None) -> pl.DataFrame:
    """date_id and etf_crash_prob for every date_id of `comp` (a Competition or its directory).

    The first `oof_min_train_frac` of rows (and warm-up rows) get null; later rows come in
    `oof_chunks` chunks, each predicted by a model fit on rows before the chunk minus the purge gap.
    Days without a market close carry the previous probability forward (known at that time).
    """
    if isinstance(comp, (str, Path)):
        from offline.data.competition import load_competition

        comp = load_competition(comp)
    cfg = config or EtfConfig()
    prices = comp.prices()
    frame, cols, _ = competition_features(prices, cfg)
    n = frame.height
    first = int(n * cfg.oof_min_train_frac)
    prob = np.full(n, np.nan)
    labelled = frame["crash"].is_not_null().to_numpy()
    for chunk in np.array_split(np.arange(first, n), cfg.oof_chunks):
        if len(chunk) == 0:
            continue
        stop = max(int(chunk[0]) - cfg.purge, 0)
        fit_rows = frame[np.flatnonzero(labelled[:stop])]
        if fit_rows.height < MIN_ROWS or fit_rows["crash"].n_unique() < 2:
            continue  # too little history or no crash yet: leave null rather than guess
        prob[chunk] = fit_crash(fit_rows, cfg).predict(matrix(frame[chunk], cols))
    out = frame.select("date_id").with_columns(pl.Series("etf_crash_prob", prob).fill_nan(None))
    return (
        prices.select("date_id")
        .join(out, on="date_id", how="left")
        .sort("date_id")
        .with_columns(pl.col("etf_crash_prob").forward_fill())
    )
