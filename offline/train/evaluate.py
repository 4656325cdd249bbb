"""Out-of-fold evaluation: the competition score over walk-forward test days, per fold and per target."""

from __future__ import annotations

import numpy as np

from offline.metric import rank_correlations
from offline.train.cv import Fold


def daily_scores(P: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Daily rank correlations on masked days that have labels.

    Unlike the official metric this never raises: a missing prediction counts as 0.0 and a
    constant day as correlation 0 (counted and reported), so a report shows every variant.
    """
    rows = np.flatnonzero(mask & (~np.isnan(Y)).any(axis=1))
    preds = np.nan_to_num(P[rows], nan=0.0, posinf=0.0, neginf=0.0)
    corr = rank_correlations(preds, Y[rows])
    constant = int(np.isnan(corr).sum())
    return rows, np.nan_to_num(corr, nan=0.0), constant


def _sharpe(corr: np.ndarray) -> float:
    std = float(np.std(corr))
    return float(np.mean(corr) / std) if std > 0 else float("nan")


BOOT_BLOCK = 20  # trading days per bootstrap block: longer than any label horizon and most effects
BOOT_REPS = 1000
BOOT_SEED = 0
LEVEL = 0.90


def block_resamples(
    n: int, block: int = BOOT_BLOCK, reps: int = BOOT_REPS, seed: int = BOOT_SEED
) -> np.ndarray:
    """(reps, n) day positions of a circular block bootstrap: runs of `block` consecutive days from
    uniform random starts, wrapped around, cut to n. Seeded, so every interval is reproducible."""
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(reps, n_blocks))
    pos = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(reps, -1)[:, :n]
    return pos % n


def central_interval(stats: np.ndarray) -> list[float] | None:
    """The central 90% of the finite bootstrap statistics (None when none is finite: every
    resample was constant, as in a run where every target fell back)."""
    finite = stats[np.isfinite(stats)]
    if not finite.size:
        return None
    lo, hi = np.quantile(finite, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return [float(lo), float(hi)]


def interval(values: np.ndarray, statistic=_sharpe, seed: int = BOOT_SEED) -> list[float] | None:
    """The 90% block-bootstrap interval of statistic(values) over days (None for under 2 days)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    samples = values[block_resamples(len(values), seed=seed)]
    if statistic is _sharpe:
        sd = samples.std(axis=1)
        stats = np.where(sd > 0, samples.mean(axis=1) / np.where(sd > 0, sd, 1.0), np.nan)
    else:
        stats = np.array([statistic(s) for s in samples], dtype=np.float64)
    return central_interval(stats)


def score_block(P: np.ndarray, Y: np.ndarray, mask: np.ndarray, folds: list[Fold] | None = None) -> dict:
    """Competition score (mean / population std of daily Spearman) over the masked days."""
    rows, corr, constant = daily_scores(P, Y, mask)
    out = {
        "score": _sharpe(corr),
        "interval": interval(corr),
        "mean": float(np.mean(corr)),
        "n_days": int(len(rows)),
        "constant_days": constant,
    }
    if folds is not None:
        out["per_fold"] = []
        for i, f in enumerate(folds):
            sel = (rows >= f.test_start) & (rows < f.test_end)
            out["per_fold"].append(
                {"fold": i, "score": _sharpe(corr[sel]), "mean": float(np.mean(corr[sel]))}
            )
    return out


def paired_gain(P_new: np.ndarray, P_old: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> dict:
    """Day-by-day gain in rank correlation of P_new over P_old on the same days, with its t statistic
    (mean / standard error): a feature "helps" only if the gain stands clear of day-to-day noise."""
    _, new, _ = daily_scores(P_new, Y, mask)
    _, old, _ = daily_scores(P_old, Y, mask)
    return paired(new, old)


def paired(new: np.ndarray, old: np.ndarray) -> dict:
    """Paired comparison of two daily-correlation series on the same days: mean daily gain, its t
    statistic (mean / standard error), the score difference and its 90% block-bootstrap interval."""
    d = new - old
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    mean = float(np.mean(d)) if len(d) else float("nan")
    out = {"mean_daily_gain": mean, "t": mean / se if se > 0 else float("nan"), "n_days": len(d)}
    if len(d) > 1:
        pos = block_resamples(len(d))
        a, b = new[pos], old[pos]
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample of constant days: NaN, skipped
            diff = a.mean(1) / a.std(1) - b.mean(1) / b.std(1)
        out["score_difference"] = _sharpe(new) - _sharpe(old)
        out["score_difference_interval"] = central_interval(diff)
    return out


def target_ics(P: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> dict:
    """Per-target rank IC over time (OOF days), with a summary."""
    ic = rank_correlations(P[mask].T, Y[mask].T)
    finite = ic[~np.isnan(ic)]
    return {
        "values": [None if np.isnan(v) else float(v) for v in ic],
        "mean": float(finite.mean()) if finite.size else None,
        "median": float(np.median(finite)) if finite.size else None,
        "frac_positive": float((finite > 0).mean()) if finite.size else None,
    }


T_DECISIVE = 2.0  # |t| of a paired (or one-sample) test on daily correlations that decides a choice


def decide(test: dict, threshold: float = T_DECISIVE) -> dict:
    """The paired test with its decision: the new side wins only at t >= threshold, loses at <= -threshold."""
    t = test["t"]
    verdict = "better" if t >= threshold else ("worse" if t <= -threshold else "within noise")
    return {**test, "decision": verdict}


def decide_score(test: dict) -> dict:
    """The paired test decided on the score itself: better (worse) when the 90% interval of the
    score difference lies above (below) 0. For a blend that trades some mean daily correlation for
    a much smaller spread (a factor-neutral blend), the mean's t statistic would call a higher
    score worse."""
    lo, hi = test.get("score_difference_interval") or (float("nan"), float("nan"))
    verdict = "better" if lo > 0 else ("worse" if hi < 0 else "within noise")
    return {**test, "decision": verdict}
