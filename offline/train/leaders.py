"""The `leaders` candidate: each leg's forecast from the key instruments' recent and lagged windows,
leg A's minus leg B's per target, with one lag profile per label lag shared by every leg.

A lead-lag (one instrument following another a week or more later) is a handful of slopes per leg
over the same few windows; the per-target `local` ridge estimates 66 free window slopes per target
from one target's labels, this model 11 slopes per leg (one per key instrument) and 6 window
weights per lag, pooled over every target that shares the leg. It is fit on the targets' labels by
alternating ridge (slopes given the profile, then the profile given the slopes) and served as a
LocalLinear on the key-window part of `FeatureSpec.local_layout`: per target, slope difference x
window weight, the same dot product as `local`. The slopes are sparse where a lead-lag is (a leg
follows one key instrument or none), so each slope solve is a reweighted ridge, close to a lasso.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from kaggle_kernel.features import KEY_LAGGED, FeatureSpec, _short
from kaggle_kernel.local import LocalLinear, standardize
from offline.progress import progress
from offline.train.candidates import CLIP_Z, CandidateFit, column_moments, inner_split, sharpe_of
from offline.train.cv import Fold

LEADER_WINDOWS = (
    "ret5",
    *KEY_LAGGED,
)  # the key windows of local_layout: the last 5 days, then blocks back to 63
LEADER_ALPHAS = (0.1, 1.0, 10.0)  # slope penalty per labelled row, on standardized windows
ADAPTIVE_ROUNDS = 3  # reweighted solves after the plain ridge
ADAPTIVE_FLOOR = 0.05  # of the mean slope size: a slope near 0 gets 20x the mean penalty, not infinity
PROFILE_ALPHA = 1e-6  # the window weights: six numbers from every target's rows, barely penalized
ITERATIONS = 3  # alternating steps (the profile settles in two or three)
MIN_ROWS = 100  # a target with fewer labelled training days takes no part and gets no prediction


@dataclass(frozen=True)
class Leaders:
    """One block's fit for the targets of one label lag: slopes (legs, keys), profile (windows)."""

    slopes: np.ndarray
    profile: np.ndarray


def key_layout(spec: FeatureSpec) -> np.ndarray:
    """(keys, windows): positions of the key windows in `spec.local_layout`."""
    at = {f: i for i, f in enumerate(spec.local_layout)}
    return np.array(
        [[at[f"key_{_short(c)}_{w}"] for w in LEADER_WINDOWS] for c in spec.key_instruments], dtype=np.intp
    )


def _normal_equations(U, Yc, ok, a, b, n_legs):
    """The slopes' least-squares system given the profile, y ~ (s_A - s_B) . U over every target's
    rows: (G (legs x keys)^2, r, rows per leg)."""
    k = U.shape[1]
    m = ok.astype(np.float64)
    S = (m.T @ (U[:, :, None] * U[:, None, :]).reshape(len(U), k * k)).reshape(-1, k, k)  # per target's rows
    q = U.T @ Yc  # (keys, targets); unlabelled cells of Yc are 0
    count = m.sum(axis=0)
    pair = b >= 0
    # blocks (leg, leg, S-sign): +S on both legs' diagonals, -S between the two legs of a pair
    rows_of = np.concatenate([a, b[pair], a[pair], b[pair]])
    cols_of = np.concatenate([a, b[pair], b[pair], a[pair]])
    blocks = np.concatenate([S, S[pair], -S[pair], -S[pair]])
    i = (rows_of[:, None, None] * k + np.arange(k)[None, :, None]).repeat(k, axis=2)
    j = (cols_of[:, None, None] * k + np.arange(k)[None, None, :]).repeat(k, axis=1)
    G = sparse.coo_matrix((blocks.ravel(), (i.ravel(), j.ravel())), shape=(n_legs * k, n_legs * k))
    r = np.zeros((n_legs, k))
    np.add.at(r, a, q.T)
    np.add.at(r, b[pair], -q.T[pair])
    rows = np.bincount(a, count, n_legs) + np.bincount(b[pair], count[pair], n_legs)
    return G, r.ravel(), rows


def _ridge(system, alpha: float, k: int, weights: np.ndarray) -> np.ndarray:
    """Ridge slopes (legs, keys): penalty alpha per labelled row of each leg, times each slope's
    weight (legs * keys). The system couples two legs only where a target pairs them, so it is
    solved as a sparse matrix (a few blocks per row)."""
    G, r, rows = system
    A = (G + sparse.diags(np.repeat(alpha * np.maximum(rows, 1.0), k) * weights)).tocsc()
    return splu(A, permc_spec="MMD_AT_PLUS_A").solve(r).reshape(len(rows), k)


def _slopes(system, alpha: float, k: int) -> np.ndarray:
    """Sparse slopes (legs, keys): a ridge, then ADAPTIVE_ROUNDS ridges that penalize each slope by
    the mean slope size over its own (plus a floor). One penalty shrinks a follower's slope on its
    leader as much as the noise slopes of every other (leg, instrument); reweighting (an adaptive
    ridge, close to a lasso) keeps the few slopes the labels support and shrinks the rest toward 0."""
    slopes = _ridge(system, alpha, k, np.ones(len(system[2]) * k))
    for _ in range(ADAPTIVE_ROUNDS):
        size = np.abs(slopes).ravel()
        mean = size.mean()
        if mean == 0:
            break
        slopes = _ridge(system, alpha, k, mean / (size + ADAPTIVE_FLOOR * mean))
    return slopes


def _differences(slopes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(targets, keys): leg A's slopes minus leg B's (zero for a single-leg target)."""
    return slopes[a] - np.where((b >= 0)[:, None], slopes[np.maximum(b, 0)], 0.0)


def _profile(z: np.ndarray, Yc: np.ndarray, ok: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """Window weights given the slopes: y ~ sum_w p_w sum_k (s_A - s_B)_k z_kw, over every target's rows."""
    D = np.einsum("tkw,jk->tjw", z, diff)[ok]  # (labelled rows, windows)
    p = np.linalg.solve(D.T @ D + PROFILE_ALPHA * len(D) * np.eye(D.shape[1]), D.T @ Yc[ok])
    norm = np.linalg.norm(p)
    return p / norm if norm > 0 else np.full(len(p), 1.0 / np.sqrt(len(p)))


def fit_lag(
    z: np.ndarray, Yc: np.ndarray, a: np.ndarray, b: np.ndarray, n_legs: int, alphas: tuple[float, ...]
) -> list[Leaders]:
    """Alternating ridge on standardized key windows z (days, keys, windows) and centred labels Yc
    (days, targets of one lag; NaN unlabelled); a, b: each target's leg codes (b -1: single leg).
    The profile is found at the middle penalty; every penalty's slopes are then fit on it."""
    ok = ~np.isnan(Yc)
    Yc = np.where(ok, Yc, 0.0)
    k = z.shape[1]
    profile = np.full(z.shape[2], 1.0 / np.sqrt(z.shape[2]))
    for _ in range(ITERATIONS):
        slopes = _slopes(_normal_equations(z @ profile, Yc, ok, a, b, n_legs), alphas[len(alphas) // 2], k)
        profile = _profile(z, Yc, ok, _differences(slopes, a, b))
    system = _normal_equations(z @ profile, Yc, ok, a, b, n_legs)
    return [Leaders(_slopes(system, alpha, k), profile) for alpha in alphas]


def target_coefficients(fit: Leaders, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(targets, keys, windows): each target's slope on every standardized key window."""
    return _differences(fit.slopes, a, b)[:, :, None] * fit.profile[None, None, :]


def _block(z, Y, lag_targets, a, b, n_legs, end, alphas):
    """Every lag's fit on days [0, end), per penalty: [(intercepts, (targets, keys, windows) coefficients)]."""
    n_t = Y.shape[1]
    out = [(np.full(n_t, np.nan), np.zeros((n_t, *z.shape[1:]))) for _ in alphas]
    for J in lag_targets:
        J = J[(~np.isnan(Y[:end, J])).sum(axis=0) >= MIN_ROWS]
        if len(J) == 0:
            continue
        y = Y[:end, J]
        c = np.nanmean(y, axis=0)
        for (intercept, coef), fit in zip(
            out, fit_lag(z[:end], y - c, a[J], b[J], n_legs, alphas), strict=True
        ):
            intercept[J], coef[J] = c, target_coefficients(fit, a[J], b[J])
    return out


def _predict(z: np.ndarray, intercept: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return np.einsum("tkw,jkw->tj", z, coef) + intercept


def leaders(
    spec: FeatureSpec,
    X: np.ndarray,
    Yfit: np.ndarray,
    Yscore: np.ndarray,
    idx: list[int],
    folds: list[Fold],
    gap: int,
    alphas: tuple[float, ...] = LEADER_ALPHAS,
    final: bool = True,
) -> CandidateFit:
    """The leaders model out of fold and (final) refit on every day. Each block (fold, then the
    final fit) takes the penalty whose fit up to an inner split scores best on the competition
    metric (on Yscore) over the block's last training days, as the local ridges do."""
    layout = key_layout(spec)
    V = X[:, spec.local_index()[0][layout]]  # the key windows are the same for every target
    n = X.shape[0]
    a, b = (np.asarray(c) for c in spec.leg_codes)
    lags = spec.target_lags
    chosen_idx = np.asarray(idx, dtype=np.intp)
    lag_targets = [chosen_idx[lags[chosen_idx] == lag] for lag in np.unique(lags[chosen_idx])]
    n_legs = len(spec.legs)
    ends = [f.train_end for f in folds] + ([n] if final else [])
    P = np.full(Yfit.shape, np.nan)
    chosen, model = [], None
    for i, end in progress(list(enumerate(ends)), desc="leaders", unit="block"):
        fit_end, start = inner_split(end, gap)
        mean, scale = column_moments(V[:fit_end].reshape(fit_end, -1))
        z = standardize(V.reshape(n, -1), mean, scale, CLIP_Z).reshape(V.shape)
        scores = [
            sharpe_of(_predict(z[start:end], c, w)[:, idx], Yscore[start:end][:, idx])
            for c, w in _block(z, Yfit, lag_targets, a, b, n_legs, fit_end, alphas)
        ]
        alpha = alphas[int(np.argmax(scores))]
        chosen.append(alpha)
        mean, scale = column_moments(V[:end].reshape(end, -1))
        z = standardize(V.reshape(n, -1), mean, scale, CLIP_Z).reshape(V.shape)
        ((c, w),) = _block(z, Yfit, lag_targets, a, b, n_legs, end, (alpha,))
        if i < len(folds):
            f = folds[i]
            P[f.test_start : f.test_end, idx] = _predict(z[f.test_start : f.test_end], c, w)[:, idx]
        else:
            model = _served(spec, layout, mean, scale, c, w, CLIP_Z)
    return CandidateFit("leaders", P, model, {"alphas": chosen})


def _served(spec, layout, mean, scale, intercept, coef, clip) -> LocalLinear:
    """The final fit as a LocalLinear over local_layout: the key windows' moments and slopes, zero elsewhere."""
    n_t, n_f = len(spec.targets), len(spec.local_layout)
    M, S, C = np.zeros((n_t, n_f)), np.ones((n_t, n_f)), np.zeros((n_t, n_f))
    cols = layout.ravel()
    M[:, cols], S[:, cols], C[:, cols] = mean, scale, coef.reshape(n_t, -1)
    return LocalLinear(spec.local_layout, M, S, C, intercept, clip)
