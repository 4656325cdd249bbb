"""Market-regime classifier: will the equity proxy be in a high-volatility state over the next 5 days?

Label at day t (needs prices after t, so training-only): the realized volatility of the proxy's
daily log-returns over days t+1..t+5 is above the 80th percentile of the trailing 252-day
distribution of the same 5-day realized volatility, measured on days t-251..t (on a history
shorter than 756 days, the trailing window is a third of it). Unknown (NaN) where the future or
the trailing window is incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from offline.train.cv import Fold
from offline.train.lgbm import lgbm_params

HORIZON = 5
TRAILING = 252
QUANTILE = 0.8

DEFAULT_PARAMS = {
    "objective": "binary",
    "n_estimators": 200,
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 5.0,
    "verbose": -1,
}


def regime_label(
    proxy_ret: np.ndarray, horizon: int = HORIZON, trailing: int = TRAILING, q: float = QUANTILE
) -> np.ndarray:
    """1.0 / 0.0 / NaN per day, from the proxy's daily log-returns (the `px_ret1` feature)."""
    r = pl.Series("r", proxy_ret, dtype=pl.Float64, nan_to_null=True)
    frame = pl.DataFrame([r]).with_columns(pl.col("r").rolling_std(horizon, min_samples=horizon).alias("rv"))
    frame = frame.with_columns(
        pl.col("rv").shift(-horizon).alias("future"),
        pl.col("rv").rolling_quantile(q, window_size=trailing, min_samples=trailing // 2).alias("threshold"),
    )
    label = frame.select(
        pl.when(pl.col("future").is_null() | pl.col("threshold").is_null())
        .then(None)
        .otherwise((pl.col("future") > pl.col("threshold")).cast(pl.Float64))
    ).to_series()
    return label.to_numpy().astype(np.float64)


def _params(params: dict | None, seed: int) -> dict:
    return lgbm_params(DEFAULT_PARAMS, seed, overrides=params)


def _fit(X: np.ndarray, y: np.ndarray, params: dict, names: list[str]) -> lgb.LGBMClassifier:
    model = lgb.LGBMClassifier(**params)
    model.fit(X, y, feature_name=names)
    return model


def fold_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    """ROC AUC, PR AUC (vs the base rate), Brier score; NaN AUCs when a block has one class."""
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "base_rate": float(np.mean(y)),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
    }


@dataclass
class RegimeResult:
    label: np.ndarray
    oof_prob: np.ndarray  # NaN where no fold predicted the day
    folds: list[dict]
    overall: dict
    model_text: str
    features: list[str]
    reliability: dict = field(default_factory=dict)


def train_regime(
    X: np.ndarray,
    features: list[str],
    proxy_ret: np.ndarray,
    folds: list[Fold],
    params: dict | None = None,
    seed: int = 0,
) -> RegimeResult:
    """Walk-forward OOF probabilities, per-fold metrics, and the final model refit on every labeled day."""
    y = regime_label(proxy_ret, trailing=min(TRAILING, max(20, len(proxy_ret) // 3)))
    p = _params(params, seed)
    oof = np.full(len(y), np.nan)
    per_fold = []
    for i, f in enumerate(folds):
        tr = f.train_idx()
        tr = tr[~np.isnan(y[tr])]
        te = f.test_idx()
        if len(np.unique(y[tr])) < 2:
            raise ValueError(f"regime fold {i}: training labels have one class only")
        oof[te] = _fit(X[tr], y[tr], p, features).booster_.predict(X[te])
        known = te[~np.isnan(y[te])]
        per_fold.append({"fold": i, **fold_metrics(y[known], oof[known])})
    scored = ~np.isnan(oof) & ~np.isnan(y)
    overall = fold_metrics(y[scored], oof[scored])
    labeled = ~np.isnan(y)
    final = _fit(X[labeled], y[labeled], p, features)
    return RegimeResult(
        label=y,
        oof_prob=oof,
        folds=per_fold,
        overall=overall,
        model_text=final.booster_.model_to_string(),
        features=list(features),
        reliability=reliability(y[scored], oof[scored]),
    )


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    """Mean predicted probability and observed frequency per probability bin."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = {"mean_pred": [], "observed": [], "count": []}
    for b in range(bins):
        m = which == b
        if m.any():
            out["mean_pred"].append(float(p[m].mean()))
            out["observed"].append(float(y[m].mean()))
            out["count"].append(int(m.sum()))
    return out
