"""Walk-forward (out-of-fold) crash probabilities per date_id for a competition directory.

The engine offers these to the 424 regressors as a feature; each probability comes from a model
fit only on rows whose labels ended before that row's chunk began (purged by the label horizon).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.etf import indicators as ind
from offline.etf import model as mdl
from offline.etf.config import EtfConfig
from offline.etf.regime import fit_regime
from offline.etf.sources import competition_frame

DEFAULT_PARAMS = {
    "num_rounds": 150,
    "learning_rate": 0.05,
    "num_leaves": 8,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
    "scale_pos_weight": 1.0,
}


def competition_features(prices: pl.DataFrame, cfg: EtfConfig) -> tuple[pl.DataFrame, list[str], dict]:
    """Indicators, interactions and crash label of the competition's market ETF (rows with a close)."""
    from offline.etf.stages import build_prep_frame, feature_columns

    raw, info = competition_frame(prices, tuple(cfg.market_tickers), tuple(cfg.defensive_tickers))
    frame = ind.interactions(build_prep_frame(raw, cfg))
    cols, _ = feature_columns(frame, cfg)
    return frame, cols, info


def fit_crash(rows: pl.DataFrame, cols: list[str], cfg: EtfConfig, params: dict):
    """(regime model, input columns, booster) fit on labelled rows: one walk-forward or final fit."""
    rm = fit_regime(rows, cfg.pca_components, cfg.regimes, cfg.seed)
    use = [*cols, *rm.output_columns]
    x = rm.transform(rows).select(use).to_numpy().astype(float)
    booster = mdl.fit_booster(x, rows["crash"].to_numpy(), params, cfg.seed, cfg.threads, use)
    return rm, use, booster


def oof_crash_probability(comp, config: EtfConfig | None = None, params: dict | None = None) -> pl.DataFrame:
    """date_id and etf_crash_prob for every date_id of `comp` (a Competition or its directory).

    The first `oof_min_train_frac` of rows (and warm-up rows) get null; later rows come in
    `oof_chunks` chunks, each predicted by a model fit on rows before the chunk minus the purge gap.
    Days without a market close carry the previous probability forward (known at that time).
    """
    if isinstance(comp, (str, Path)):
        from offline.data.competition import load_competition

        comp = load_competition(comp)
    cfg = config or EtfConfig()
    params = params or DEFAULT_PARAMS
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
        fit_idx = np.flatnonzero(labelled[:stop])
        fit_rows = frame[fit_idx]
        if fit_rows.height < 50 or fit_rows["crash"].n_unique() < 2:
            continue  # too little history or no crash yet: leave null rather than guess
        rm, use, booster = fit_crash(fit_rows, cols, cfg, params)
        prob[chunk] = booster.predict(rm.transform(frame[chunk]).select(use).to_numpy().astype(float))
    out = frame.select("date_id").with_columns(pl.Series("etf_crash_prob", prob).fill_nan(None))
    return (
        prices.select("date_id")
        .join(out, on="date_id", how="left")
        .sort("date_id")
        .with_columns(pl.col("etf_crash_prob").forward_fill())
    )
