"""The ETF crash model end to end: chosen for the regressors, exported, packaged and served."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import polars as pl

from kaggle_kernel.crash import CRASH_WINDOW, CrashModel
from kaggle_kernel.features import ETF_CRASH_PROB
from kaggle_kernel.predictor import Predictor
from offline.data.competition import load_competition
from offline.release.package import build
from offline.train.engine import TrainConfig, train


def test_crash_probability_is_trained_packaged_and_served(synthetic_dir, tmp_path):
    cfg = TrainConfig(
        n_folds=2,
        min_labels=100,
        targets=list(range(8)),
        analysis_every=2,
        ablation=False,
        baselines=False,
        target_mode="raw",
        etf_feature="on",
        params={"min_child_samples": 20},
    )  # fmt: skip  (small leaves: 8 targets x 600 days are too few for the default 400 rows per leaf)
    report = train(synthetic_dir, tmp_path / "train", cfg, n_jobs=2)
    etf = report.etf_crash_prob
    assert etf.used and etf.decided_by == "on" and np.isfinite(etf.with_score)
    model = lgb.Booster(model_file=str(tmp_path / "train" / "models" / "target_0.txt"))
    assert ETF_CRASH_PROB in model.feature_name()

    build(tmp_path / "train", tmp_path / "art", data_dir=synthetic_dir)
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["etf_crash"] == {"forest": "crash.npz", "model": "crash.json"}
    assert {"crash.npz", "crash.json", "snapshot/crash_prices.parquet"} <= set(manifest["files"])

    kernel = Predictor.from_artifacts(tmp_path / "art")
    assert kernel.crash is not None and not kernel.problems
    # the served probability is the booster's on the kernel's inputs for that day
    comp = load_competition(synthetic_dir)
    prices = comp.prices()
    crash = CrashModel.from_json(json.loads((tmp_path / "art" / "crash.json").read_text()))
    booster = lgb.Booster(model_file=str(tmp_path / "train" / "models" / "etf_crash.txt"))
    day = int(prices["date_id"].max())
    window = prices.filter(pl.col("date_id") > day - CRASH_WINDOW).select("date_id", *crash.columns)
    x = crash.inputs(window)
    assert not np.isnan(x).all()
    expected = booster.predict(x[None, :])[0]
    served = kernel._crash_probability(day)
    assert abs(served - expected) < 1e-12 and 0.0 < served < 1.0
    # and it reaches the regressors' input vector
    seen = []
    kernel._stage1 = lambda x: seen.append(x)  # capture the vector the regressors get
    out = kernel._forecast(day)
    assert seen[0][kernel.col[ETF_CRASH_PROB]] == served
    assert np.isfinite(out[:8]).all() and kernel.errors["crash"] == 0
    # the bench's naive kernel serves the same days to the same predictions, crash model included
    from bench.naive_kernel import NaiveKernel
    from bench.run import load_days

    kernel, naive = Predictor.from_artifacts(tmp_path / "art"), NaiveKernel(tmp_path / "art")
    for batch, _ in load_days(synthetic_dir)[:5]:
        a, b = kernel.predict(*batch).to_numpy()[0], naive.predict(*batch).to_numpy()[0]
        assert np.max(np.abs(a - b)) <= 1e-9
    assert np.isfinite(kernel.crash_prob) and abs(kernel.crash_prob - naive.crash_prob) <= 1e-12
    assert sum(kernel.errors.values()) == 0


def _one_day(data_dir):
    from bench.run import load_days

    return load_days(data_dir)[0][0]


def test_a_broken_crash_model_degrades_to_a_missing_probability(synthetic_dir, tmp_path):
    cfg = TrainConfig(
        n_folds=2, min_labels=100, targets=[0, 1], analysis_every=1, ablation=False,
        baselines=False, target_mode="raw", etf_feature="on",
    )  # fmt: skip
    train(synthetic_dir, tmp_path / "train", cfg, n_jobs=2)
    build(tmp_path / "train", tmp_path / "art", data_dir=synthetic_dir)
    (tmp_path / "art" / "crash.json").write_text("{not json")
    kernel = Predictor.from_artifacts(tmp_path / "art")
    assert kernel.crash is None and "crash.json" in kernel.problems
    out = kernel.predict(*_one_day(synthetic_dir))
    assert out.shape == (1, 424) and np.isfinite(out.to_numpy()).all()
