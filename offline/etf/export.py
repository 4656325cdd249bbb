"""The final crash model for serving: refit on every labelled row of a competition's ETFs.

The out-of-fold probabilities (offline.etf.oof) train the 424 regressors; this is the model the
kernel then runs on new days, so it uses all labels. Returns the kernel's CrashModel (tickers,
input order, a logistic model's weights) and, for a LightGBM model, the booster's model text.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kaggle_kernel.crash import CrashModel
from offline.errors import UserError
from offline.etf.config import EtfConfig
from offline.etf.oof import MIN_ROWS, competition_features, fit_crash


def final_crash_model(
    comp_or_dir, config: EtfConfig | None = None, until: int | None = None
) -> tuple[CrashModel, str]:
    """(CrashModel, LightGBM model text or "" for a logistic model) fit on all labelled rows of `comp_or_dir`.

    Same inputs and parameters as each walk-forward fit of oof_crash_probability. With `until`, only
    prices up to that date_id exist for it (a crash label needs its whole horizon before then).
    """
    comp = comp_or_dir
    if isinstance(comp_or_dir, (str, Path)):
        from offline.data.competition import load_competition

        comp = load_competition(comp_or_dir)
    cfg = config or EtfConfig()
    prices = comp.prices()
    if until is not None:
        prices = prices.filter(pl.col("date_id") <= until)
    frame, cols, info = competition_features(prices, cfg)
    rows = frame.filter(pl.col("crash").is_not_null())
    if rows.height < MIN_ROWS or rows["crash"].n_unique() < 2:
        raise UserError(
            f"{rows.height} labelled market rows with {int(rows['crash'].sum() or 0)} crash days: need at "
            f"least {MIN_ROWS} rows and both classes to fit the crash model (loosen --depth or add data)"
        )
    fitted = fit_crash(rows, cfg)
    linear = (
        {"mean": fitted.mean, "scale": fitted.scale, "coef": fitted.coef, "intercept": fitted.intercept}
        if fitted.family == "logit"
        else None
    )
    model = CrashModel(market=info["market"], defensive=list(info["defensive"]), features=cols, linear=linear)
    return model, fitted.booster
