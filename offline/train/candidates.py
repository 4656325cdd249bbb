"""The candidate models besides the two-stage engine, each out of fold and refit on every day:

- prior: per target, the mean of its daily cross-sectional label rank over the training days;
- pooled: one LightGBM over every (day, target) row of the generic features (`FeatureSpec.pooled_features`);
- ridge: a ridge regression on the same rows plus the structural `lsd_*` stats, served as a dot product;
- recent: per target, its own mean daily rank over its newest delivered labels (the `lrank` feature,
  which the kernel updates online as labels arrive): the prior, kept current;
- local: one ridge per target on its own stats, the key instruments' recent and lagged windows and the
  market's volatility (`FeatureSpec.local_layout`): target-specific lead-lag and volatility slopes
  that a pooled model shares across targets. Its penalty is chosen per fold on the competition score
  of the fold's last training days (an inner walk-forward split), so it adapts to the market;
- leaders (offline/train/leaders.py): the same key windows with sparse slopes per leg (a reweighted
  ridge) and one lag profile, pooled over the targets that share a leg.

Lag and asset class enter the pooled rows as integer codes (the packed forest has no categorical
splits; a tree isolates a code with two splits).
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from kaggle_kernel.blend import recent_index
from kaggle_kernel.features import FeatureSpec, pooled_rows
from kaggle_kernel.forest import Linear
from kaggle_kernel.local import LocalLinear, standardize
from offline.progress import progress
from offline.train.cv import Fold, fit_rows
from offline.train.evaluate import daily_scores
from offline.train.lgbm import SubsetFit, available_cores, fit_subsets, lgbm_params
from offline.train.regressors import rank_per_day

POOLED_PARAMS = {
    "objective": "regression",
    "n_estimators": 120,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 1000,
    "subsample": 0.5,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "reg_lambda": 10.0,
    "max_bin": 63,
}
DAY_STRIDE = 3  # neighbouring days' rows overlap (multi-day targets): every third day is enough
POOLED_STRIDE = 6  # the pooled LightGBM, every sixth day: half the time, OOF 0.51 -> 0.48 on drift_momentum
CHUNK_DAYS = 64  # days of pooled rows built at once when predicting
RIDGE_ALPHA = 0.1  # penalty per training row, on standardized features
CLIP_Z = 5.0
# penalties per training row the inner split chooses from
LOCAL_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
LOCAL_INNER = 0.25  # share of a fold's training days, at its end, on which the penalty is chosen
LOCAL_MIN_ROWS = 100  # fewer labelled training days: the target gets no local model (NaN, blended as 0)


@dataclass
class CandidateFit:
    """oof: (days, targets) predictions on each fold's test days (NaN elsewhere and for other targets)."""

    name: str
    oof: np.ndarray
    final: object  # prior vector, LightGBM model text, Linear or LocalLinear; None for the engine (its files are per target)
    info: dict | None = None  # what the fit chose (the local model's penalty per fold, then final)


def prior(Y: np.ndarray, idx: list[int], folds: list[Fold]) -> CandidateFit:
    """Per-target mean daily rank of the training labels (ranks over each day's labelled targets)."""
    R = rank_per_day(Y)
    P = np.full(Y.shape, np.nan)
    final = np.full(Y.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a target without labels: NaN, blended as 0
        for f in folds:
            P[f.test_start : f.test_end, idx] = np.nanmean(R[: f.train_end, idx], axis=0)
        final[idx] = np.nanmean(R[:, idx], axis=0)
    return CandidateFit("prior", P, final)


def recent(spec: FeatureSpec, X: np.ndarray, idx: list[int], folds: list[Fold]) -> CandidateFit:
    """The online label prior read from the features on each fold's test days: nothing is fit, so
    nothing is stored (the kernel reads the same feature)."""
    P = np.full((X.shape[0], len(spec.targets)), np.nan)
    cols = recent_index(spec)[idx]
    for f in folds:
        P[f.test_start : f.test_end, idx] = X[f.test_start : f.test_end][:, cols]
    return CandidateFit("recent", P, None)


def _rows(
    spec: FeatureSpec, X: np.ndarray, index: np.ndarray, days: np.ndarray, idx: list[int]
) -> np.ndarray:
    """Pooled rows of `days` for the targets `idx`: (days x len(idx), features), float32."""
    rows = pooled_rows(spec, X[days], index)
    if len(idx) < len(spec.targets):
        rows = rows.reshape(len(days), len(spec.targets), -1)[:, idx].reshape(-1, rows.shape[1])
    return rows.astype(np.float32)


def _strided(spec, X, Y, index, idx, stride: int, folds: list[Fold], final: bool):
    """Pooled rows of every `stride`-th day, built once, and each fit's labelled rows among them
    (`cv.fit_rows`): (x, y, [row positions per fit])."""
    days = np.arange(X.shape[0])[::stride]
    x = _rows(spec, X, index, days, idx)
    y = Y[days][:, idx].reshape(-1)
    return x, y, fit_rows(np.repeat(days, len(idx)), y, folds, X.shape[0], final)


def _predict_days(predict, spec, X, index, days, idx, P) -> None:
    for start in range(0, len(days), CHUNK_DAYS):
        chunk = days[start : start + CHUNK_DAYS]
        P[np.ix_(chunk, idx)] = predict(_rows(spec, X, index, chunk, idx)).reshape(len(chunk), len(idx))


def pooled(
    spec: FeatureSpec,
    X: np.ndarray,
    Y: np.ndarray,
    idx: list[int],
    folds: list[Fold],
    seed: int,
    params=None,
    final: bool = True,
) -> CandidateFit:
    """One LightGBM over (day, target) rows of the generic features; final model text on every day."""
    index = spec.pooled_index()
    names = spec.pooled_features()
    p = lgbm_params(POOLED_PARAMS, seed, overrides=params)
    P = np.full(Y.shape, np.nan)
    x, y, rows = _strided(spec, X, Y, index, idx, POOLED_STRIDE, folds, final)
    fits = [SubsetFit(r, y[r], None, {"min_child_samples": _leaf(p, len(r))}) for r in rows]
    models = list(fit_subsets(x, fits, p, names))
    for f, model in zip(folds, models[: len(folds)], strict=True):  # the final model, if any, is last
        _predict_days(model.predict, spec, X, index, f.test_idx(), idx, P)
    text = models[-1].model_to_string() if final else None
    return CandidateFit("pooled", P, text)


def _leaf(params: dict, n_rows: int) -> int:
    """The pooled model's min_child_samples on n_rows rows: small data (tests) can still split."""
    return min(params["min_child_samples"], max(20, n_rows // 100))


def column_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the mean and population std of the finite values, in float64; an all-NaN or
    constant column gets mean 0 / scale 1. No warnings (nanmean's would escape the threads that
    fit the local ridges: warnings.catch_warnings is not thread-safe)."""
    ok = np.isfinite(x)
    n = ok.sum(axis=0)
    v = np.where(ok, x, 0.0).astype(np.float64, copy=False)
    total = v.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        var = np.where(ok, (v - mean) ** 2, 0.0).sum(axis=0) / n
    mean = np.where(n > 0, mean, 0.0)
    scale = np.sqrt(var)
    scale = np.where((n > 0) & np.isfinite(scale) & (scale > 0), scale, 1.0)
    return mean, scale


def fit_linear(x: np.ndarray, y: np.ndarray, names: list[str], alpha: float) -> Linear:
    """Ridge on standardized, clipped features (NaN -> 0, the training mean); closed form."""
    mean, scale = column_moments(x)
    lin = Linear(tuple(names), mean, scale, np.zeros(len(names)), 0.0, CLIP_Z)
    z = lin.standardize(x)
    ym = float(np.mean(y))
    A = z.T @ z + alpha * len(y) * np.eye(z.shape[1])
    coef = np.linalg.solve(A, z.T @ (y - ym))
    return Linear(tuple(names), mean, scale, coef, ym, CLIP_Z)


def ridge(
    spec: FeatureSpec,
    X: np.ndarray,
    Y: np.ndarray,
    idx: list[int],
    folds: list[Fold],
    alpha: float = RIDGE_ALPHA,
    final: bool = True,
) -> CandidateFit:
    """Pooled ridge on the generic and structural features of every (day, target) row."""
    index = spec.pooled_index(structural=True)
    names = spec.pooled_features(structural=True)
    P = np.full(Y.shape, np.nan)

    x, y, rows = _strided(spec, X, Y, index, idx, DAY_STRIDE, folds, final)
    models = [fit_linear(x[r].astype(np.float64), y[r], names, alpha) for r in rows]
    for f, model in zip(folds, models[: len(folds)], strict=True):  # the final model, if any, is last
        _predict_days(model.predict, spec, X, index, f.test_idx(), idx, P)
    return CandidateFit("ridge", P, models[-1] if final else None)


def _ridge_path(v: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]):
    """One target's labelled rows -> (mean, scale, intercept, coefs (alphas, features)) or None
    for too few rows: standardize, then every penalty's ridge from one eigendecomposition."""
    ok = ~np.isnan(y)
    if ok.sum() < LOCAL_MIN_ROWS:
        return None
    v, y = v[ok], y[ok]
    mean, scale = column_moments(v)
    z = standardize(v, mean, scale, CLIP_Z)
    intercept = float(y.mean())
    w, Q = np.linalg.eigh(z.T @ z)
    proj = Q.T @ (z.T @ (y - intercept))
    coefs = np.stack([Q @ (proj / (np.maximum(w, 0.0) + a * len(y))) for a in alphas])
    return mean, scale, intercept, coefs


def _each_target(work, idx: list[int], desc: str) -> None:
    """work(t) for every target on a thread per core: each writes only its own target's cells, and
    numpy's linear algebra (one BLAS thread each) runs without the GIL, so the result is the same."""
    with ThreadPoolExecutor(max_workers=available_cores()) as pool:
        for _ in progress(pool.map(work, idx), total=len(idx), desc=desc, unit="target"):
            pass


def inner_split(train_end: int, gap: int) -> tuple[int, int]:
    """(fit_end, start): the inner split of [0, train_end) that chooses the penalty."""
    start = train_end - int(round(LOCAL_INNER * train_end))
    return start - gap, start


def sharpe_of(P: np.ndarray, Y: np.ndarray) -> float:
    _, corr, _ = daily_scores(P, Y, np.ones(len(Y), dtype=bool))
    sd = float(np.std(corr))
    return float(np.mean(corr)) / sd if sd > 0 else -np.inf


def local(
    spec: FeatureSpec,
    X: np.ndarray,
    Yfit: np.ndarray,
    Yscore: np.ndarray,
    idx: list[int],
    folds: list[Fold],
    gap: int,
    alphas: tuple[float, ...] = LOCAL_ALPHAS,
    final: bool = True,
) -> CandidateFit:
    """One ridge per target on `FeatureSpec.local_layout`, fit on Yfit. Each block (fold, then the
    final fit on every day) takes the penalty whose ridges, fit on its training days up to an inner
    split, score best on the competition metric (on Yscore) over its last LOCAL_INNER share."""
    with threadpool_limits(limits=1, user_api="blas"):  # thousands of tiny solves: threads only cost
        return _local(spec, X, Yfit, Yscore, idx, folds, gap, alphas, final)


def _local(spec, X, Yfit, Yscore, idx, folds, gap, alphas, final) -> CandidateFit:
    index = spec.local_index()
    n, n_t, n_f = X.shape[0], len(spec.targets), index.shape[1]
    ends = [f.train_end for f in folds] + ([n] if final else [])
    inner = [inner_split(e, gap) for e in ends]
    guesses = [np.full((len(alphas), e - s, n_t), np.nan) for (_, s), e in zip(inner, ends, strict=True)]

    def penalty_path(t: int) -> None:  # every penalty's guesses on each block's inner days
        v = X[:, index[t]]
        for (fit_end, start), end, G in zip(inner, ends, guesses, strict=True):
            path = _ridge_path(v[:fit_end], Yfit[:fit_end, t], alphas)
            if path is not None:
                mean, scale, b0, coefs = path
                z = standardize(v[start:end], mean, scale, CLIP_Z)
                G[:, :, t] = (z @ coefs.T).T + b0

    _each_target(penalty_path, idx, "local ridges: penalty")
    chosen = []
    for (_, start), end, G in zip(inner, ends, guesses, strict=True):
        scores = [sharpe_of(G[k][:, idx], Yscore[start:end][:, idx]) for k in range(len(alphas))]
        chosen.append(alphas[int(np.argmax(scores))])
    P = np.full(Yfit.shape, np.nan)
    mean, scale = np.zeros((n_t, n_f)), np.ones((n_t, n_f))
    coef, intercept = np.zeros((n_t, n_f)), np.full(n_t, np.nan)

    def fit(t: int) -> None:  # each fold's chosen ridge on its test days, then the final one
        v = X[:, index[t]]
        for i, (end, a) in enumerate(zip(ends, chosen, strict=True)):
            path = _ridge_path(v[:end], Yfit[:end, t], (a,))
            if path is None:
                continue
            m, s, b0, c = path
            if i < len(folds):
                f = folds[i]
                z = standardize(v[f.test_start : f.test_end], m, s, CLIP_Z)
                P[f.test_start : f.test_end, t] = z @ c[0] + b0
            else:
                mean[t], scale[t], coef[t], intercept[t] = m, s, c[0], b0

    _each_target(fit, idx, "local ridges: fit")
    model = LocalLinear(spec.local_layout, mean, scale, coef, intercept, CLIP_Z) if final else None
    return CandidateFit("local", P, model, {"alphas": chosen})
