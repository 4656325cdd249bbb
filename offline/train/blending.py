"""The blend of the candidates, chosen by the competition metric and scored out of sample (nested):
fold k >= 1 is blended with weights fit on the out-of-fold days of folds 0..k-1 only, so the blend
is scored on folds 1.. (the "blend days"; fold 0 has nothing before it and no blend), and so are
the candidates it is compared with. The served weights are fit on every OOF day. The weights
maximise the Sharpe ratio of the blend's daily correlations (long-only mean-variance on the
members' daily correlation series), a closed form rather than a search: a greedy forward search
from the best single member chased each fold's noise (README: the rules compared). With them, the
number of the labels' leading factors the blend is made neutral to (`kaggle_kernel.blend.neutralize`)
is chosen on the same days, and the counts that score about as well are averaged with it
(`neutral_mix`): each fold's factors come from the labels before its training end only.
Then, on those days again, the share of each day's targets the blend ties at its median
(`kaggle_kernel.blend.tie_middle`: where the information sits in a few targets, not ranking the
rest scores better). All of this is done twice, with the members as day ranks and as day z-scores
(`kaggle_kernel.blend.day_scores`); the z-scores are taken only where they score SCALE_MARGIN
better on those days (a sparse signal), the ranks otherwise.
"""

from __future__ import annotations

import numpy as np

from kaggle_kernel.blend import SCALES, blend, exposure_free, neutral_mix, on_scale, tie_middle
from kaggle_kernel.features import day_ranks
from offline.train.cv import Fold
from offline.train.evaluate import T_DECISIVE

RIDGE = 1e-9  # of the mean variance, added to the covariance's diagonal: identical members stay solvable
MIN_FIT_DAYS = 60  # fewer labelled days to fit weights on (three 20-day blocks): the engine alone
FALLBACK = "engine"  # the kit's main model, served when the days cannot choose among the members
FACTOR_CHOICES = (0, 1, 2, 3, 5, 10, 20, 40)  # how many leading label factors the blend may leave
TIE_CHOICES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95)  # shares of a day's targets the blend may tie
COUNT_TOLERANCE = 0.02  # factor counts scoring within this share of the best are averaged (README)
SCALE_MARGIN = 0.05  # z-scored members replace ranked ones only scoring this share better (README)


def _sharpe(corr: np.ndarray) -> float:
    sd = float(np.std(corr))
    return float(np.mean(corr) / sd) if sd > 0 else float("-inf")


GRID_BITS = 40  # a blend is ranked on a grid of 2^-40: values closer than 1e-12 tie


class DailySpearman:
    """Daily Spearman correlations of many candidate blends against fixed labels, fast: the labels'
    ranks are computed once; each blend (a mix of day ranks or z-scores, brought into [-0.5, 0.5])
    is ranked on the labelled cells only, as the metric does, by a row sort of int64 keys (value on the grid, column)
    instead of an argsort, which is what dominates the weight search. Values closer than the grid
    tie, as mixes of ranks that differ only by rounding should."""

    def __init__(self, Y: np.ndarray):
        self.valid = ~np.isnan(Y)
        self.count = self.valid.sum(axis=1)
        ry = np.where(self.valid, day_ranks(Y), 0.0)
        mean = ry.sum(axis=1, keepdims=True) / np.maximum(self.count, 1)[:, None]  # a day without labels: 0
        self.ry = np.where(self.valid, ry - mean, 0.0)
        self.ry_norm = np.sqrt(np.sum(self.ry**2, axis=1))
        self.col_bits = max(int(Y.shape[1] - 1).bit_length(), 1)

    def __call__(self, B: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Daily correlations of the blend B (rows x targets, finite) on the label rows `rows`."""
        n_rows, n_cols = B.shape
        cb = self.col_bits
        top = np.max(np.abs(B), axis=1, keepdims=True)
        B = B * np.where(top > 0.5, 0.5 / np.where(top > 0.5, top, 1.0), 1.0)  # on the grid, same ranks
        q = np.floor((B + 0.5) * 2.0**GRID_BITS).astype(np.int64)
        q = np.where(self.valid[rows], q, 1 << (GRID_BITS + 1))  # unlabelled cells sort last
        key = (q << cb) | np.arange(n_cols)
        key.sort(axis=1)  # row by row: far faster than one sort of every cell
        value = (key >> cb).ravel()
        new = np.empty(value.size, dtype=bool)
        np.not_equal(value[1:], value[:-1], out=new[1:])
        new[::n_cols] = True  # a day's first cell starts a group
        starts = np.flatnonzero(new)
        sizes = np.diff(np.append(starts, value.size))
        pos = np.repeat(starts % n_cols + (sizes - 1) / 2.0, sizes)  # average rank - 1
        pos = pos.reshape(n_rows, n_cols)
        n = self.count[rows][:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            rb = np.where(np.arange(n_cols) < n, (pos + 0.5) / n - 0.5, 0.0)  # day_ranks' scale
            ry = np.take_along_axis(self.ry[rows], (key & ((1 << cb) - 1)).reshape(n_rows, n_cols), axis=1)
            num = np.sum(rb * ry, axis=1)
            return np.nan_to_num(num / (np.sqrt(np.sum(rb**2, axis=1)) * self.ry_norm[rows]), nan=0.0)


def fit_weights(
    ranked: list[np.ndarray], scorer: DailySpearman, rows: np.ndarray
) -> tuple[np.ndarray, float]:
    """The long-only weights that maximise the Sharpe ratio of the blend's daily correlations on
    `rows`, and that score. A mix of day ranks correlates with a day's labels in proportion to
    the mix of the members' correlations (the mix's norm is the same on every day), so the weights
    are the mean-variance solution C^-1 m over the members' daily correlation series (mean m,
    covariance C). Only members whose own mean daily correlation is positive at t >= T_DECISIVE
    enter (a noise member stays out); one with a non-positive weight leaves and the rest are solved again."""
    corr = np.stack([scorer(r[rows], rows) for r in ranked], axis=1)  # days x members
    mean, cov = corr.mean(axis=0), np.atleast_2d(np.cov(corr, rowvar=False))
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = mean / (sd / np.sqrt(len(rows)))
    active = np.flatnonzero((sd > 0) & (t >= T_DECISIVE))
    cov = cov + np.eye(len(ranked)) * (RIDGE * np.trace(cov) / len(ranked))
    weights = np.zeros(len(ranked))
    while active.size:
        sub = np.linalg.solve(cov[np.ix_(active, active)], mean[active])
        if (sub > 0).all():
            weights[active] = sub / sub.sum()
            break
        active = active[sub > 0]
    weights = np.round(weights, 6)
    if not weights.any():  # no member correlates positively on average: the best of them alone
        weights[int(np.argmax(mean))] = 1.0
    return weights, _sharpe(scorer(sum(w * r[rows] for w, r in zip(weights, ranked, strict=True) if w), rows))


def choose_weights(
    names: list[str], ranked: list[np.ndarray], scorer: DailySpearman, rows: np.ndarray
) -> np.ndarray:
    """fit_weights on `rows`; on fewer than MIN_FIT_DAYS of them (a short public window's first
    folds) FALLBACK alone (equal weights without it): a few weeks cannot rank the members."""
    if len(rows) >= MIN_FIT_DAYS:
        return fit_weights(ranked, scorer, rows)[0]
    if FALLBACK in names:
        return np.array([float(n == FALLBACK) for n in names])
    return np.full(len(names), round(1 / len(names), 6))


def label_factors(Y: np.ndarray, end: int, k: int) -> np.ndarray:
    """(targets, k): the k leading principal directions of the labels' daily ranks over the labelled
    days before `end` (orthonormal columns; fewer when the days or targets cannot give k)."""
    R = day_ranks(Y[:end])
    R = np.nan_to_num(R[~np.isnan(R).all(axis=1)])
    k = min(k, max(R.shape[0] - 1, 0), max(Y.shape[1] - 2, 0))
    if k == 0:
        return np.zeros((Y.shape[1], 0))
    _, _, vt = np.linalg.svd(R - R.mean(axis=0), full_matrices=False)
    return vt[:k].T.copy()


def _exposure_free(ranked: np.ndarray, factors: list[np.ndarray], folds: list[Fold], k: int) -> np.ndarray:
    """A member's day ranks or z-scores on each fold's days, centred and without their exposure to
    the first k of that fold's factors (the linear part of `neutralize`: the scorer ranks the mix)."""
    out = np.zeros_like(ranked)
    for f, L in zip(folds, factors, strict=True):
        out[f.test_idx()] = exposure_free(ranked[f.test_idx()], L[:, :k])
    return out


def _fold_mix(
    ranked: list[np.ndarray],
    weights: np.ndarray,
    factors: list[np.ndarray],
    folds: list[Fold],
    counts: tuple[int, ...],
    rows: np.ndarray,
) -> np.ndarray:
    """The served `neutral_mix` of the weighted members on `rows`, each day with its own fold's factors."""
    mixed = sum(weights[i] * ranked[i][rows] for i in np.flatnonzero(weights))
    out = np.zeros_like(mixed)
    for f, L in zip(folds, factors, strict=True):
        inside = (rows >= f.test_start) & (rows < f.test_end)
        if inside.any():
            out[inside] = neutral_mix(mixed[inside], L, counts)
    return out


def _choose_ties(
    mix: np.ndarray, scorer: DailySpearman, rows: np.ndarray, groups: np.ndarray | None
) -> float:
    """The TIE_CHOICES share whose tied `mix` (the blend on `rows`) scores best there; the smallest on
    equal scores."""
    scores = [_sharpe(scorer(tie_middle(mix, share, groups), rows)) for share in TIE_CHOICES]
    return TIE_CHOICES[int(np.argmax(scores))]


def near_best(scores: dict[int, float]) -> tuple[int, ...]:
    """The factor counts (keys) whose score is within COUNT_TOLERANCE of the best one's, in order."""
    best = max(scores.values())
    return tuple(k for k in sorted(scores) if scores[k] >= best - COUNT_TOLERANCE * abs(best))


def _fit_counts(
    scaled: list[np.ndarray],
    scorer: DailySpearman,
    factors: list[np.ndarray],
    folds: list[Fold],
    blocks: list,
) -> list[dict[int, tuple[np.ndarray, float]]]:
    """Per block, for each factor count in FACTOR_CHOICES: the weights fit on the scaled members
    neutral to that many factors, and their score (blocks shorter than MIN_FIT_DAYS: none)."""
    fitted: list[dict[int, tuple[np.ndarray, float]]] = [{} for _ in blocks]
    for k in FACTOR_CHOICES:
        if k > min(L.shape[1] for L in factors):
            break
        free = [_exposure_free(r, factors, folds, k) for r in scaled] if k else scaled
        for i, rows in enumerate(blocks):
            if len(rows) >= MIN_FIT_DAYS:
                fitted[i][k] = fit_weights(free, scorer, rows)
    return fitted


def _choose_block(
    scaled: list[np.ndarray],
    fits: dict[int, tuple[np.ndarray, float]],
    factors: list[np.ndarray],
    folds: list[Fold],
    rows: np.ndarray,
    scorer: DailySpearman,
    groups: np.ndarray | None,
) -> tuple[float, np.ndarray, tuple[int, ...], float]:
    """One block's blend on one scale: the best count's weights, the counts near it, the tie share
    that scores best with them, and that tied blend's score on `rows`."""
    scores = {k: score for k, (_, score) in fits.items()}
    top = max(scores, key=lambda k: (scores[k], -k))  # the fewest factors on equal scores
    w, counts = fits[top][0], near_best(scores)
    mix = _fold_mix(scaled, w, factors, folds, counts, rows)
    share = _choose_ties(mix, scorer, rows, groups)
    return _sharpe(scorer(tie_middle(mix, share, groups), rows)), w, counts, share


def nested_blend(
    preds: dict[str, np.ndarray], Y: np.ndarray, folds: list[Fold], groups: np.ndarray | None = None
) -> dict:
    """preds: member -> (days, targets) OOF predictions on the blended targets; Y the labels there;
    groups: the targets' `tie_groups` (None: no group keeps values untied).

    Each block (fold k >= 1: the OOF days of folds 0..k-1; the served blend: every OOF day), on each
    of the SCALES, fits weights for each factor count in FACTOR_CHOICES on the members neutral to
    that many factors; it takes the best count's weights and averages the counts that score near it
    (`near_best`, `neutral_mix`), then the TIE_CHOICES share that scores best with them. The z scale
    is taken where its tied blend scores SCALE_MARGIN better than the ranks'. Returns the nested OOF
    blend, each fold's weights, factor counts, share and scale, and the served weights, factors (the
    leading factors of every labelled day), counts, share and scale."""
    names = list(preds)
    scaled = {s: [np.nan_to_num(on_scale(preds[n], s), nan=0.0) for n in names] for s in SCALES}
    labelled = (~np.isnan(Y)).any(axis=1)
    scorer = DailySpearman(Y)
    factors = [label_factors(Y, f.train_end, max(FACTOR_CHOICES)) for f in folds]
    blocks = [np.concatenate([g.test_idx() for g in folds[:k]]) for k in range(1, len(folds) + 1)]
    blocks = [b[labelled[b]] for b in blocks]  # folds 1.. fit on the folds before; served: every fold
    fitted = {s: _fit_counts(scaled[s], scorer, factors, folds, blocks) for s in SCALES}
    chosen = []  # per block: (weights, counts, share, scale)
    for i, rows in enumerate(blocks):
        if not fitted["rank"][i]:  # too short to fit: choose_weights' fallback, as it is
            chosen.append((choose_weights(names, scaled["rank"], scorer, rows), (0,), 0.0, "rank"))
            continue
        options = {
            s: _choose_block(scaled[s], fitted[s][i], factors, folds, rows, scorer, groups) for s in SCALES
        }
        rank_score = options["rank"][0]
        scale = "z" if options["z"][0] > rank_score + SCALE_MARGIN * abs(rank_score) else "rank"
        chosen.append((*options[scale][1:], scale))
    oof = np.full(Y.shape, np.nan)
    per_fold = []
    for j, f in enumerate(folds[1:], start=1):
        w, counts, share, scale = chosen[j - 1]
        te = f.test_idx()
        oof[te] = tie_middle(
            neutral_mix(blend([preds[n][te] for n in names], w, scale), factors[j], counts), share, groups
        )
        per_fold.append(
            {
                "fold": j,
                "weights": dict(zip(names, map(float, w), strict=True)),
                "factors": list(counts),
                "ties": share,
                "scale": scale,
                "fit_days": len(blocks[j - 1]),
            }
        )
    final, counts, share, scale = chosen[-1]
    return {
        "members": names,
        "oof": oof,
        "per_fold": per_fold,
        "weights": dict(zip(names, map(float, final), strict=True)),
        "factors": label_factors(Y, len(Y), counts[-1]),
        "counts": counts,
        "ties": share,
        "scale": scale,
    }
