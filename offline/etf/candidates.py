"""The crash-model candidates of the third design pass, fixed before any of their validation results was seen.

Why the second pass lost ROC AUC to the naive rule on validation (0.549 against 0.598) while beating
it on PR AUC: ROC AUC counts the order of every crash day against every calm day, and LightGBM with
200-row leaves gives most calm days one tied low probability, so it is sharp at the top only; its
absolute volatility levels, learnt on 2000-2014, also say little inside a calm regime. This pass
adds candidates that stay close to the rule's ranking by construction, or rank smoothly:

- `naive_rule`: rv_21 over its trailing 80th percentile (the baseline; it always survives).
- `logit_naive_rv`: L2 logistic regression (strong penalty) on the rule's log score and rv_21.
- `logit_scale_free`: the same on scale-free inputs only (log score, rv_z_252, drawdown_63).
- `blend_naive_lgbm`: the rule's log score plus a small learned correction: a weighted sum of its
  z-scored log score and the z-scored logit of `lgbm_mono`'s small point; the weight w by CV.
- `lgbm_stumps`: monotone LightGBM with 2 or 3 leaves per tree on the rule's score and a few
  volatility and drawdown inputs (near-additive, few ties).
- `lgbm_mono`, `lgbm_mono_naive`: the second pass's LightGBM families, kept for the comparison.

Every candidate reads closes only (volatility, trend and drawdown of the close), so a frozen design
runs unchanged on a source with closes alone. The survival rule (training-block CV) and the final
choice (validation) are in offline/etf/stages/cv.py and fit.py. `fit` returns a FittedModel whose
`predict` gives raw probabilities.
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
SCALE_FREE = ("naive_log", "rv_z_252", "drawdown_63")  # no absolute volatility level
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
LGBM_SMALL = {
    "num_rounds": 100,
    "learning_rate": 0.03,
    "num_leaves": 4,
    "min_data_in_leaf": 100,
    "lambda_l2": 1.0,
}
LGBM_LARGE = {
    "num_rounds": 200,
    "learning_rate": 0.03,
    "num_leaves": 8,
    "min_data_in_leaf": 200,
    "lambda_l2": 10.0,
}
STUMPS = {"num_rounds": 150, "learning_rate": 0.05, "min_data_in_leaf": 50, "lambda_l2": 10.0}


@dataclass(frozen=True)
class Candidate:
    """One model family on one input set with a small grid of hyper-parameters (chosen by CV)."""

    name: str
    family: str  # "naive", "logit", "lgbm" or "blend"
    features: tuple[str, ...]
    grid: tuple[dict, ...] = ({},)
    note: str = ""


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("naive_rule", "naive", NAIVE, note="baseline: rv_21 over its trailing 80th percentile"),
    Candidate(
        "logit_naive_rv",
        "logit",
        ("naive_log", "rv_21"),
        ({"C": 0.001}, {"C": 0.01}),
        note="the rule's log score and one absolute volatility level, strongly penalised",
    ),
    Candidate(
        "logit_scale_free",
        "logit",
        SCALE_FREE,
        ({"C": 0.001}, {"C": 0.01}),
        note="scale-free inputs only: the rule's log score, the volatility z-score, the 63-day drawdown",
    ),
    Candidate(
        "blend_naive_lgbm",
        "blend",
        (*VOL, *TREND, *DRAWDOWN, "naive_log"),
        ({"w": 0.25, **LGBM_SMALL}, {"w": 0.5, **LGBM_SMALL}),
        note="(1-w) z(the rule's log score) + w z(logit of lgbm_mono): the rule plus a learned correction",
    ),
    Candidate(
        "lgbm_stumps",
        "lgbm",
        ("naive_score", "rv_21", "downside_vol_21", "rv_z_252", "drawdown_63"),
        ({"num_leaves": 2, **STUMPS}, {"num_leaves": 3, **STUMPS}),
        note="monotone LightGBM with 2-3 leaves per tree: near-additive, few tied scores",
    ),
    Candidate("lgbm_mono", "lgbm", VOL + TREND + DRAWDOWN, (LGBM_SMALL, LGBM_LARGE)),
    Candidate(
        "lgbm_mono_naive",
        "lgbm",
        VOL + TREND + DRAWDOWN + NAIVE,
        (LGBM_SMALL, LGBM_LARGE),
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
        if self.family == "lgbm":
            return _booster_predict(self.booster, x)
        if self.family == "blend":  # the rule's log score (last input) next to the learned part's logit
            x = np.column_stack([x[:, -1], _logit(_booster_predict(self.booster, x[:, :-1]))])
        z = np.nan_to_num((x - np.asarray(self.mean)) / np.asarray(self.scale))
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FittedModel:
        return cls(**data)


def matrix(rows: pl.DataFrame, features: tuple[str, ...] | list[str]) -> np.ndarray:
    return rows.select(pl.col(list(features)).cast(pl.Float64)).to_numpy()


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def _booster_predict(text: str, x: np.ndarray) -> np.ndarray:
    import lightgbm as lgb

    return lgb.Booster(model_str=text).predict(x)


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales ignoring NaN; an input with no spread or no value gets mean 0, scale 1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, scale = np.nan_to_num(np.nanmean(x, axis=0)), np.nanstd(x, axis=0)
    scale[~(scale > 0)] = 1.0
    return mean, scale


def _fit_booster(
    params: dict, x: np.ndarray, y: np.ndarray, features: tuple[str, ...], seed: int, threads: int
) -> str:
    import lightgbm as lgb

    lgb_params = {
        **LGBM_FIXED,
        **{k: v for k, v in params.items() if k not in ("num_rounds", "w")},
        "seed": seed,
        "num_threads": threads,
        "monotone_constraints": [int(f in MONOTONE_UP) for f in features],
    }
    data = lgb.Dataset(x, label=y, feature_name=list(features), params={"verbosity": -1})
    return lgb.train(lgb_params, data, num_boost_round=int(params["num_rounds"])).model_to_string()


def fit(cand: Candidate, params: dict, rows: pl.DataFrame, seed: int = 0, threads: int = 1) -> FittedModel:
    """Fit `cand` with `params` on labelled rows (a `crash` column); deterministic for a seed."""
    x, y = matrix(rows, cand.features), rows["crash"].to_numpy().astype(int)
    out = FittedModel(cand.name, cand.family, list(cand.features), dict(params))
    if cand.family == "naive":
        return out
    if cand.family == "lgbm":
        out.booster = _fit_booster(params, x, y, cand.features, seed, threads)
        return out
    if cand.family == "logit":
        from sklearn.linear_model import LogisticRegression

        mean, scale = _standardisation(x)
        lr = LogisticRegression(C=params["C"], max_iter=2000, random_state=seed)
        lr.fit(np.nan_to_num((x - mean) / scale), y)
        out.mean, out.scale = mean.tolist(), scale.tolist()
        out.coef, out.intercept = lr.coef_[0].tolist(), float(lr.intercept_[0])
        return out
    if cand.family == "blend":
        out.booster = _fit_booster(params, x[:, :-1], y, cand.features[:-1], seed, threads)
        mean, scale = _standardisation(
            np.column_stack([x[:, -1], _logit(_booster_predict(out.booster, x[:, :-1]))])
        )
        w = float(params["w"])
        out.mean, out.scale, out.coef = mean.tolist(), scale.tolist(), [1.0 - w, w]
        out.intercept = float(_logit(np.array([y.mean()]))[0])
        return out
    raise ValueError(f"candidate {cand.name!r}: unknown family {cand.family!r}")
