"""The competition metric against scipy, its failures, and the `score` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import spearmanr

from offline import metric

ROOT = Path(__file__).resolve().parents[1]

# few distinct values so that ties are common; NaN only in the truth (missing labels)
_values = st.sampled_from([-1.5, -0.25, 0.0, 0.3, 0.3000001, 2.0, 7.0])
_truth_values = st.one_of(_values, st.just(np.nan))


@st.composite
def _days(draw):
    days = draw(st.integers(1, 6))
    n = draw(st.integers(2, 12))
    pred = draw(arrays(np.float64, (days, n), elements=_values))
    truth = draw(arrays(np.float64, (days, n), elements=_truth_values))
    return pred, truth


@settings(max_examples=300, deadline=None)
@given(_days())
def test_daily_correlation_matches_scipy_day_by_day(data):
    pred, truth = data
    good = []
    for i in range(pred.shape[0]):
        mask = ~np.isnan(truth[i])
        p, t = pred[i, mask], truth[i, mask]
        if not mask.any():
            with pytest.raises(ValueError, match="no non-null target"):
                metric.daily_rank_correlations(pred[i : i + 1], truth[i : i + 1])
        elif np.unique(p).size < 2 or np.unique(t).size < 2:
            with pytest.raises(ZeroDivisionError):
                metric.daily_rank_correlations(pred[i : i + 1], truth[i : i + 1])
        else:
            expected = spearmanr(p, t).statistic
            got = metric.daily_rank_correlations(pred[i : i + 1], truth[i : i + 1])[0]
            assert got == pytest.approx(expected, abs=1e-12)
            good.append(i)
    if good:  # the vectorized path over many days gives the same values
        expected = [
            spearmanr(pred[i][~np.isnan(truth[i])], truth[i][~np.isnan(truth[i])]).statistic for i in good
        ]
        np.testing.assert_allclose(
            metric.daily_rank_correlations(pred[good], truth[good]), expected, atol=1e-12
        )


def _frames(pred: np.ndarray, truth: np.ndarray, start: int = 100) -> tuple[pl.DataFrame, pl.DataFrame]:
    names = [f"target_{i}" for i in range(pred.shape[1])]
    date_ids = pl.Series("date_id", np.arange(start, start + pred.shape[0]), dtype=pl.Int64)
    sol = pl.DataFrame(truth, schema=names, orient="row").insert_column(0, date_ids)
    sub = pl.DataFrame(pred, schema=names, orient="row").insert_column(0, date_ids)
    return sol.with_columns(pl.col(names).fill_nan(None)), sub


def test_score_is_mean_over_population_std_of_scipy_daily_values():
    rng = np.random.default_rng(7)
    truth = rng.normal(size=(40, 424))
    truth[rng.random(truth.shape) < 0.2] = np.nan
    pred = np.round(truth * 0.3 + rng.normal(size=truth.shape), 1)  # rounding makes ties
    pred = np.where(np.isnan(pred), rng.normal(size=pred.shape), pred)
    daily = np.array(
        [spearmanr(p[~np.isnan(t)], t[~np.isnan(t)]).statistic for p, t in zip(pred, truth, strict=True)]
    )
    sol, sub = _frames(pred, truth)
    # submission rows in another order and with an extra unscored day: joined on date_id
    extra = sub.head(1).with_columns(pl.lit(999, dtype=pl.Int64).alias("date_id"))
    sub = pl.concat([sub.reverse(), extra])
    assert metric.score(sol, sub) == pytest.approx(daily.mean() / daily.std(ddof=0), rel=1e-10)


def test_constant_prediction_day_fails_like_the_official_metric():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(5, 20))
    pred = rng.normal(size=(5, 20))
    pred[3] = 0.25
    with pytest.raises(ZeroDivisionError):
        metric.score(*_frames(pred, truth))


def test_constant_truth_day_fails():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(5, 20))
    truth[1, :] = np.nan
    truth[1, :3] = 0.01  # the non-null labels of that day are all equal
    with pytest.raises(ZeroDivisionError):
        metric.daily_rank_correlations(rng.normal(size=(5, 20)), truth)


def test_zero_std_across_days_fails():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(4, 30))
    corrs = metric.daily_rank_correlations(truth * 2.0, truth)  # perfect every day: all 1.0
    np.testing.assert_allclose(corrs, 1.0)
    with pytest.raises(ZeroDivisionError):
        metric.score(*_frames(truth * 2.0, truth))


def _run_score(solution: Path, submission: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "offline", "score", str(solution), str(submission)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_score_cli_prints_the_score_last(tmp_path, fmt):
    rng = np.random.default_rng(11)
    truth = rng.normal(size=(12, 424))
    truth[rng.random(truth.shape) < 0.1] = np.nan
    pred = truth + rng.normal(scale=2.0, size=truth.shape)
    pred = np.where(np.isnan(pred), 0.0, pred)
    sol, sub = _frames(pred, truth)
    expected = metric.score(sol, sub)
    sol_path, sub_path = tmp_path / f"solution.{fmt}", tmp_path / f"submission.{fmt}"
    for frame, path in ((sol, sol_path), (sub, sub_path)):
        frame.write_csv(path) if fmt == "csv" else frame.write_parquet(path)
    res = _run_score(sol_path, sub_path)
    assert res.returncode == 0, res.stderr
    assert float(res.stdout.strip().splitlines()[-1]) == pytest.approx(expected, rel=1e-8)


def test_score_cli_reports_metric_failure_and_bad_values(tmp_path):
    rng = np.random.default_rng(12)
    truth = rng.normal(size=(3, 10))
    pred = rng.normal(size=(3, 10))
    pred[0] = 1.0
    sol, sub = _frames(pred, truth)
    sol.write_csv(tmp_path / "sol.csv")
    sub.write_csv(tmp_path / "sub.csv")
    res = _run_score(tmp_path / "sol.csv", tmp_path / "sub.csv")
    assert res.returncode == 2 and "Denominator is zero" in res.stderr
    sub.with_columns(
        pl.col("target_4").cast(pl.String).replace({sub["target_4"].cast(pl.String)[1]: "abc"})
    ).write_csv(tmp_path / "bad.csv")
    res = _run_score(tmp_path / "sol.csv", tmp_path / "bad.csv")
    assert res.returncode == 2
    assert "bad.csv" in res.stderr and "target_4" in res.stderr and "'abc'" in res.stderr
