"""The crash-model candidates of the second attempt, fixed before any of their results was seen.

Every candidate reads closes only (volatility, trend and drawdown of the close), so a frozen design
runs unchanged on a source with closes alone. Families: `naive` (the rule's score itself, the
baseline), `logit` (L2 logistic regression on standardised inputs) and `lgbm` (LightGBM with
monotone +1 constraints on volatility-type inputs). Combinations with the naive rule take its score
as one more input. `fit` returns a FittedModel whose `predict` gives raw probabilities.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

VOL = ("rv_5", "rv_21", "rv_63", "rv_126", "downside_vol_21", "vol_of_vol_63", "rv_z_252", "rv_ratio_5_21")
TREND = ("mom_21", "mom_63", "mom_126", "mom_252", "dist_ma_50", "dist_ma_200", "ma_cross_50_200")
DRAWDOWN = ("drawdown_63", "drawdown_252", "worst_day_21", "skew_63")
NAIVE = ("naive_score",)
# inputs whose rise should never lower the crash probability (LightGBM's monotone constraints)
MONOTONE_UP = frozenset(
    {"rv_5", "rv_21", "rv_63", "rv_126", "downside_vol_21", "vol_of_vol_63", "naive_score"}
)

LGBM_FIXED = {
    "objective": "binary",
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
    "bagging_freq": 1,
    "bagging_fraction": 0.8,
    "feature_fraction": 0.8,
    "monotone_constraints_method": "advanced",
}


@dataclass(frozen=True)
class Candidate:
    """One model family on one input set with a small grid of hyper-parameters (chosen by CV)."""

    name: str
    family: str  # "naive", "logit" or "lgbm"
    features: tuple[str, ...]
    grid: tuple[dict, ...] = ({},)
    note: str = ""


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("naive_rule", "naive", NAIVE, note="baseline: rv_21 over its trailing 80th percentile"),
    Candidate("logit_vol", "logit", VOL, ({"C": 0.01}, {"C": 0.1}, {"C": 1.0})),
    Candidate("logit_vol_trend_dd", "logit", VOL + TREND + DRAWDOWN, ({"C": 0.01}, {"C": 0.1}, {"C": 1.0})),
    Candidate(
        "logit_all_naive",
        "logit",
        VOL + TREND + DRAWDOWN + NAIVE,
        ({"C": 0.01}, {"C": 0.1}, {"C": 1.0}),
        note="combination with the naive rule: its score as one more input",
    ),
    Candidate(
        "lgbm_mono",
        "lgbm",
        VOL + TREND + DRAWDOWN,
        (
            {
                "num_rounds": 100,
                "learning_rate": 0.03,
                "num_leaves": 4,
                "min_data_in_leaf": 100,
                "lambda_l2": 1.0,
            },
            {
                "num_rounds": 200,
                "learning_rate": 0.03,
                "num_leaves": 8,
                "min_data_in_leaf": 200,
                "lambda_l2": 10.0,
            },
        ),
    ),
    Candidate(
        "lgbm_mono_naive",
        "lgbm",
        VOL + TREND + DRAWDOWN + NAIVE,
        (
            {
                "num_rounds": 100,
                "learning_rate": 0.03,
                "num_leaves": 4,
                "min_data_in_leaf": 100,
                "lambda_l2": 1.0,
            },
            {
                "num_rounds": 200,
                "learning_rate": 0.03,
                "num_leaves": 8,
                "min_data_in_leaf": 200,
                "lambda_l2": 10.0,
            },
        ),
        note="combination with the naive rule: its score as one more monotone input",
    ),
)
BASELINE = "naive_rule"


def candidate(name: str) -> Candidate:
    by_name = {c.name: c for c in CANDIDATES}
    if name not in by_name:
        raise ValueError(f"unknown crash-model candidate {name!r}; known: {', '.join(by_name)}")
    return by_name[name]


@dataclass
class FittedModel:
    """A fitted candidate as plain data: logistic weights on standardised inputs, or LightGBM text."""

    name: str
    family: str
    features: list[str]
    params: dict
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    booster: str = ""  # LightGBM model text (family "lgbm")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw crash probability of each row of x (NaN = missing). The naive rule's score s maps to
        s / (1 + s): same ranking, and its logit is log(s), so a sigmoid calibration is a logistic fit."""
        x = np.asarray(x, dtype=float)
        if self.family == "naive":
            s = np.nan_to_num(x[:, 0], nan=0.0)
            return s / (1.0 + s)
        if self.family == "logit":
            z = np.nan_to_num((x - np.asarray(self.mean)) / np.asarray(self.scale))
            return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))
        import lightgbm as lgb

        return lgb.Booster(model_str=self.booster).predict(x)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FittedModel:
        return cls(**data)


def matrix(rows: pl.DataFrame, features: tuple[str, ...] | list[str]) -> np.ndarray:
    return rows.select(pl.col(list(features)).cast(pl.Float64)).to_numpy()


def fit(cand: Candidate, params: dict, rows: pl.DataFrame, seed: int = 0, threads: int = 1) -> FittedModel:
    """Fit `cand` with `params` on labelled rows (a `crash` column); deterministic for a seed."""
    x, y = matrix(rows, cand.features), rows["crash"].to_numpy().astype(int)
    out = FittedModel(cand.name, cand.family, list(cand.features), dict(params))
    if cand.family == "naive":
        return out
    if cand.family == "logit":
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():  # an input with no value in these rows: mean 0, scale 1
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, scale = np.nan_to_num(np.nanmean(x, axis=0)), np.nanstd(x, axis=0)
        scale[~(scale > 0)] = 1.0
        z = np.nan_to_num((x - mean) / scale)
        lr = LogisticRegression(C=params["C"], max_iter=2000, random_state=seed).fit(z, y)
        out.mean, out.scale = mean.tolist(), scale.tolist()
        out.coef, out.intercept = lr.coef_[0].tolist(), float(lr.intercept_[0])
        return out
    import lightgbm as lgb

    lgb_params = {
        **LGBM_FIXED,
        **{k: v for k, v in params.items() if k != "num_rounds"},
        "seed": seed,
        "num_threads": threads,
        "monotone_constraints": [int(f in MONOTONE_UP) for f in cand.features],
    }
    data = lgb.Dataset(x, label=y, feature_name=list(cand.features), params={"verbosity": -1})
    out.booster = lgb.train(lgb_params, data, num_boost_round=int(params["num_rounds"])).model_to_string()
    return out
