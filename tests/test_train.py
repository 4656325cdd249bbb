"""Engine: purged folds, regime label, per-target training, checkpoints, executors, tuning, report."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from kaggle_kernel.features import FeatureSpec
from offline.data.competition import load_competition
from offline.train.cv import walk_forward
from offline.train.dataset import build_dataset
from offline.train.engine import TrainConfig, make_tasks, train
from offline.train.executors import run_tasks
from offline.train.regime import regime_label
from offline.train.regressors import fit_target, rank_per_day
from offline.train.run_files import ModelsFile, Scored, TrainReport
from offline.train.shared import fit_shared
from offline.train.tune import mask_url, tune

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(n_folds=2, min_labels=100, analysis_every=4)


def test_walk_forward_is_purged_and_covers_the_tail():
    folds = walk_forward(1000, n_folds=4, gap=5, min_train=0.4)
    assert folds[0].test_start == 400 and folds[-1].test_end == 1000
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.test_end == b.test_start
    for f in folds:
        assert f.test_start - f.train_end == 5
        # a label of a training row looks at most 5 rows ahead: never into the test block
        assert f.train_idx().max() + 5 < f.test_start
    with pytest.raises(ValueError, match="too few"):
        walk_forward(8, n_folds=4, gap=5)


def test_regime_label_definition():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, 600)
    r[400:420] *= 4  # a volatile stretch
    y = regime_label(r, horizon=5, trailing=100, q=0.8)
    rv = np.array([np.std(r[i - 4 : i + 1], ddof=1) if i >= 4 else np.nan for i in range(len(r))])
    for t in (150, 390, 396, 410, 500):
        future = rv[t + 5]
        trailing = rv[t - 99 : t + 1]
        assert (
            y[t] == float(future > np.quantile(trailing, 0.8, method="nearest"))
            or abs(future - np.quantile(trailing, 0.8)) < 1e-3
        )
    assert np.isnan(y[-5:]).all() and np.isnan(y[:50]).all()
    assert y[396] == 1.0 and y[150] in (0.0, 1.0)


def test_rank_per_day_is_centered_uniform():
    Y = np.array([[0.3, -1.0, np.nan, 2.0], [1.0, 1.0, 1.0, np.nan]])
    R = rank_per_day(Y)
    np.testing.assert_allclose(R[0], [0.0, -1 / 3, np.nan, 1 / 3], atol=1e-15)
    np.testing.assert_allclose(R[1, :3], [0.0, 0.0, 0.0])


def test_train_end_to_end_report_and_fallback(synthetic_dir, tmp_path):
    # drop one leg column: its targets fall back to naive with a warning naming the column
    data = tmp_path / "comp"
    shutil.copytree(synthetic_dir, data)
    leg = "US_Stock_CCJ_adj_close"
    for name in ("train.csv", "test.csv"):
        pl.read_csv(data / name, infer_schema_length=None).drop(leg).write_csv(data / name)
    spec = FeatureSpec()
    hit = [t.index for t in spec.targets if leg in (t.leg_a, t.leg_b)]
    targets = sorted({*range(0, 12), *hit[:2]})
    cfg = TrainConfig(**SMALL, targets=targets)
    with pytest.warns(UserWarning, match=leg):
        report = train(data, tmp_path / "out", cfg, n_jobs=2)
    out = tmp_path / "out"
    saved = json.loads((out / "report.json").read_text())
    for key in ("oof_score", "baselines", "oracle_score", "oracle_fraction", "regime", "ablation", "seconds"):
        assert key in saved, key
    assert set(saved["baselines"]) >= {"naive", "mean", "naive_interval", "mean_per_fold"}
    assert set(report.candidates) == {"prior", "pooled", "engine", "ridge", "local", "leaders", "recent"}
    # every score carries its bootstrap interval, and the interval brackets the score
    for c in [*report.candidates.values(), Scored(report.oof_score, report.oof_interval)]:
        lo, hi = c.interval
        assert lo <= c.score <= hi
    weights = report.blend.weights
    assert sum(weights.values()) == pytest.approx(1.0) and min(weights.values()) >= 0
    assert {t["decision"] for t in report.blend.vs_members.values()} <= {"better", "worse", "within noise"}
    assert 0 <= report.regime.base_rate <= 1 and report.ablation.scores["full"] == pytest.approx(
        saved["ablation"]["full"]
    )
    assert np.isfinite(report.oof_score) and np.isfinite(report.oracle.score)
    fallbacks = {f.target: f.reason for f in report.fallbacks}
    for i in hit[:2]:
        assert leg in fallbacks[f"target_{i}"]
    # the files read back, through from_json, to what the run wrote (as JSON text: a NaN is not == itself)
    assert json.dumps(TrainReport.load(out).to_json()) == json.dumps(report.to_json()) == json.dumps(saved)
    assert ModelsFile.load(out).to_json() == json.loads((out / "models.json").read_text())
    models = json.loads((out / "models.json").read_text())
    assert models["cv"]["oof_score"] == report.oof_score and models["data"] == saved["data"]
    assert "file" not in models["targets"][f"target_{hit[0]}"]
    assert (out / models["targets"]["target_0"]["file"]).read_text().startswith("tree")
    assert (out / "models" / "regime.txt").exists()
    oof = pl.read_parquet(out / "oof.parquet")
    assert oof.columns[:2] == ["date_id", "regime_prob"] and oof.height == 600
    for png in ("regime_probability", "ic_histogram", "score_per_fold", "regime_reliability"):
        assert (out / "plots" / f"{png}.png").stat().st_size > 5000
    md = (out / "report.md").read_text()
    assert "Training report" in md and "90% interval" in md and "Paired tests" in md


def test_checkpoint_resume_after_kill(synthetic_dir, tmp_path):
    """Kill a run mid-way, rerun: finished targets are skipped and the result equals an unbroken run."""
    args = [
        sys.executable,
        "-m",
        "offline",
        "train",
        "--data",
        str(synthetic_dir),
        "--folds",
        "2",
        "--min-labels",
        "100",
        "--targets",
        "0-39",
        "--target-mode",
        "raw",
        "--no-ablation",
        "--no-baselines",
        "--jobs",
        "1",
    ]
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*args, "--out", str(out)], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    ckpt = out / "work" / "raw" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(ckpt.glob("*.json"))) < 15:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(ckpt.glob("*.json")))
    assert 10 <= done < 40, done
    for p in ckpt.glob("*.json"):  # atomic writes: whatever the kill left is complete
        json.loads(p.read_text())
    res = subprocess.run([*args, "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    # progress (plain lines off a terminal, no bar escapes) names what was already done and fits the rest
    # the 5 analysis targets (every 8th) were fit out of fold first, so they were never left to do
    assert (
        f"train 35 targets ({done - 5} checkpointed): {40 - done}/{40 - done} target (100%) done"
        in res.stderr
    )
    assert "\r" not in res.stderr and "\x1b[" not in res.stderr
    ref = tmp_path / "ref"
    res2 = subprocess.run([*args, "--out", str(ref)], cwd=ROOT, capture_output=True, text=True)
    assert res2.returncode == 0, res2.stderr[-2000:]
    n_models = 0
    for i in range(40):
        a, b = out / "models" / f"target_{i}.txt", ref / "models" / f"target_{i}.txt"
        assert a.exists() == b.exists()
        if a.exists():
            assert a.read_text() == b.read_text()
            n_models += 1
    assert n_models >= 30
    assert (
        json.loads((out / "report.json").read_text())["oof_score"]
        == json.loads((ref / "report.json").read_text())["oof_score"]
    )
    # a changed config retrains: every checkpoint gets a new fingerprint
    before = {p.name: json.loads(p.read_text())["fingerprint"] for p in ckpt.glob("*.json")}
    subprocess.run(
        [*args[:-2], "--jobs", "2", "--seed", "1", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    after = {p.name: json.loads(p.read_text())["fingerprint"] for p in ckpt.glob("*.json")}
    assert all(before[k] != after[k] for k in before)


def test_dask_local_cluster_gives_identical_models(synthetic_dir):
    distributed = pytest.importorskip("distributed")
    comp = load_competition(synthetic_dir)
    data = build_dataset(comp, FeatureSpec())
    folds = walk_forward(len(data.date_ids), 2, 5, 0.4)
    targets = list(data.spec.targets[:4])
    tasks = make_tasks(data, targets, folds, TrainConfig(**SMALL))
    shared = fit_shared(data.X, data.Y, data.col, targets, folds, seed=0, n_jobs=1)
    local = {r.index: r for r in run_tasks(fit_target, tasks, (data.X, data.Y, shared), "local", n_jobs=2)}
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            remote = {
                r.index: r
                for r in run_tasks(fit_target, tasks, (data.X, data.Y, shared), "dask", scheduler=client)
            }
    assert sorted(local) == sorted(remote) == [0, 1, 2, 3]
    for i in local:
        assert local[i].model_text == remote[i].model_text
        np.testing.assert_array_equal(local[i].oof, remote[i].oof)


def test_tune_continues_sqlite_study_and_writes_best_params(synthetic_dir, tmp_path):
    cfg = TrainConfig(**SMALL, targets=list(range(0, 8)))
    out = tmp_path / "tune"
    first = tune(synthetic_dir, out, cfg, n_trials=2, n_jobs=2)
    second = tune(synthetic_dir, out, cfg, n_trials=2, n_jobs=2)
    assert first["n_trials"] == 2 and second["n_trials"] == 4
    study = optuna.load_study(study_name="regressors", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 4
    saved = json.loads((out / "best_params.json").read_text())
    assert saved["score"] == pytest.approx(study.best_value)
    assert saved["params"]["num_leaves"] == study.best_params["num_leaves"]
    # train picks the tuned parameters up
    from offline.train.cli import _load_params

    loaded = _load_params(str(out / "best_params.json"))
    assert loaded["params"]["learning_rate"] == study.best_params["learning_rate"]
    assert loaded["pooled_params"]["num_leaves"] == study.best_params["pooled_num_leaves"]
    assert loaded["tuned_until"] == saved["tuned_until"] < 599  # the last fold stays unseen


def test_mask_url_hides_password():
    assert (
        mask_url("postgresql://kit:s3cret@db.example:5432/optuna")
        == "postgresql://kit:***@db.example:5432/optuna"
    )
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_cli_rejects_bad_target_range():
    res = subprocess.run(
        [sys.executable, "-m", "offline", "train", "--data", ".", "--targets", "5-abc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "--targets: '5-abc'" in res.stderr


def test_until_keeps_only_what_is_known_that_day(synthetic_dir):
    from offline.train.dataset import training_frames

    comp = load_competition(synthetic_dir)
    prices, labels = training_frames(comp, until=400)
    assert prices["date_id"].max() == 400
    for t in FeatureSpec().targets[::53]:
        known = labels.filter(pl.col(t.name).is_not_null())["date_id"]
        # label day s of lag L is delivered on s + L + 1
        assert known.max() == 400 - t.lag - 1
        assert comp.train_labels.filter(pl.col("date_id") == 400 - t.lag - 1)[t.name].item() is not None


def test_combined_model_file_predicts_own_plus_shared_trees():
    """A target's final file is one LightGBM model: its own trees plus the shared trees, remapped."""
    import lightgbm as lgb

    from offline.train.shared import combine

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 1]) - 0.5 * np.nan_to_num(X[:, 3]) + rng.normal(scale=0.1, size=600)
    params = dict(n_estimators=20, num_leaves=7, min_child_samples=20, verbose=-1, random_state=0)
    shared_cols = [3, 1]  # the shared model sees two of the target's five features, in another order
    shared = lgb.LGBMRegressor(**params).fit(X[:, shared_cols], y, feature_name=["s_a", "s_b"]).booster_
    base = shared.predict(X[:, shared_cols])
    names = [f"t_{i}" for i in range(5)]
    own = lgb.LGBMRegressor(**params).fit(X, y, feature_name=names, init_score=base).booster_
    text = combine(own.model_to_string(), shared.model_to_string(), ["t_3", "t_1"], names)
    merged = lgb.Booster(model_str=text)
    assert merged.num_trees() == own.num_trees() + shared.num_trees()
    assert merged.feature_name() == names
    np.testing.assert_allclose(merged.predict(X), own.predict(X) + base, rtol=0, atol=1e-12)


def test_paired_gain_separates_signal_from_noise():
    from offline.train.evaluate import paired_gain

    rng = np.random.default_rng(1)
    Y = rng.normal(size=(300, 40))
    mask = np.ones(300, dtype=bool)
    weak = Y + rng.normal(scale=4.0, size=Y.shape)
    strong = Y + rng.normal(scale=1.0, size=Y.shape)
    better = paired_gain(strong, weak, Y, mask)
    assert better["mean_daily_gain"] > 0.2 and better["t"] > 10 and better["n_days"] == 300
    same = paired_gain(weak + rng.normal(scale=1e-9, size=Y.shape), weak, Y, mask)
    assert abs(same["t"]) < 3 or np.isnan(same["t"])


def test_intervals_of_constant_days_are_missing_without_a_warning():
    """Every resample of a constant series has no score: the interval is None (shown as n/a), the
    point estimates stay, and numpy's 'All-NaN slice' warning does not reach the console."""
    import warnings

    from offline.train.evaluate import interval, paired

    rng = np.random.default_rng(0)
    flat, noisy = np.full(100, 0.25), 0.1 + rng.normal(scale=0.05, size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert interval(flat) is None
        lo, hi = interval(noisy)
        assert lo < 2.0 < hi  # the series' score is mean / std = 0.1 / 0.05
        same = paired(flat, flat)
        assert same["score_difference_interval"] is None and same["n_days"] == 100
        assert paired(noisy, flat)["score_difference_interval"] is None  # flat's score is undefined
        lo, hi = paired(noisy, 0.5 * noisy + 0.05)["score_difference_interval"]
        assert lo <= hi


def test_all_fallback_run_says_so_first(synthetic_dir, tmp_path, capsys):
    """A run in which every target fell back says so in the CLI's first line and report.md's headline,
    even with tuned parameters (their notice is a status line on stderr)."""
    from offline.cli import main

    tune_dir = tmp_path / "tune"
    tune_dir.mkdir()
    (tune_dir / "best_params.json").write_text(json.dumps({"params": {"num_leaves": 3}, "tuned_until": 500}))
    out = tmp_path / "out"
    args = ["train", "--data", str(synthetic_dir), "--out", str(out), "--folds", "2", "--targets", "0-2"]
    args += [
        "--min-labels",
        "10000",
        "--target-mode",
        "raw",
        "--no-ablation",
        "--no-baselines",
        "--jobs",
        "1",
    ]
    assert main(args) == 0
    console = capsys.readouterr()
    first = console.out.splitlines()[0]
    assert first.startswith("EVERY TARGET FELL BACK to the naive baseline (3 of 3)"), first
    assert "using tuned parameters" in console.err
    md = (out / "report.md").read_text().splitlines()
    assert md[0] == "# Training report" and md[2].startswith("**EVERY TARGET FELL BACK")
    report = TrainReport.load(out)
    assert report.all_fell_back and report.tuned_from == str(tune_dir / "best_params.json")
    assert "file" not in json.loads((out / "models.json").read_text())["targets"]["target_0"]


def test_config_rejects_unknown_choices_naming_field_and_values():
    from offline.errors import UserError

    with pytest.raises(
        UserError, match=r"TrainConfig.target_mode: 'ranks' is not one of 'auto', 'raw', 'rank'"
    ):
        TrainConfig(target_mode="ranks")
    with pytest.raises(UserError, match="etf_feature"):
        TrainConfig(etf_feature="yes")
    with pytest.raises(UserError, match="n_folds"):
        TrainConfig(n_folds=1)


def test_thread_budget_honours_affinity_and_omp(monkeypatch):
    import os

    from offline.train import lgbm

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert lgbm.available_cores() == 4 and lgbm.threads_per_worker(2) == 2 and lgbm.threads_per_worker(8) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert lgbm.threads_per_worker(1) == 1
    p = lgbm.lgbm_params({"num_leaves": 7}, seed=3, workers=1, overrides={"num_leaves": 5})
    assert p["num_leaves"] == 5 and p["random_state"] == 3 and p["deterministic"] and p["n_jobs"] == 1


def test_openmp_spin_is_short_unless_the_user_set_it():
    """libgomp reads GOMP_SPINCOUNT when lightgbm loads it: importing the kit must set it first."""
    import os

    import offline

    probe = "import offline, lightgbm, os; print(os.environ['GOMP_SPINCOUNT'])"
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == offline.GOMP_SPINCOUNT
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "GOMP_SPINCOUNT": "7"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "7"


def test_fit_subsets_fits_each_on_its_rows_labels_and_init_score():
    """Boosters on subsets of one binned Dataset learn from their own rows and labels, start from
    their init_score, honour their overrides and are the same on a rerun."""
    from offline.train import lgbm

    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 4))
    first, every = np.arange(1000), np.arange(3000)
    fits = [
        lgbm.SubsetFit(first, X[first, 0]),
        lgbm.SubsetFit(every, -X[:, 0], np.full(3000, 5.0), {"n_estimators": 40}),
    ]
    params = lgbm.lgbm_params({"objective": "regression", "n_estimators": 60, "num_leaves": 7}, seed=0)
    a, b = list(lgbm.fit_subsets(X, fits, params, ["f0", "f1", "f2", "f3"]))
    grid = rng.standard_normal((500, 4))
    assert np.corrcoef(a.predict(grid), grid[:, 0])[0, 1] > 0.9
    assert np.corrcoef(b.predict(grid), grid[:, 0])[0, 1] < -0.9
    assert abs(np.mean(b.predict(grid) + 5.0 + grid[:, 0])) < 0.5  # learnt the labels minus the init score
    assert a.num_trees() == 60 and b.num_trees() == 40
    again = list(lgbm.fit_subsets(X, fits, params, ["f0", "f1", "f2", "f3"]))
    assert [m.model_to_string() for m in again] == [a.model_to_string(), b.model_to_string()]


def test_nested_blend_weights_use_earlier_folds_only():
    """Fold k's weights depend only on folds before k; a member that is pure noise gets no weight."""
    from offline.train.blending import nested_blend

    rng = np.random.default_rng(0)
    n_days, n_t = 400, 40
    Y = rng.standard_normal((n_days, n_t))
    good = Y + 2.0 * rng.standard_normal((n_days, n_t))
    noise = rng.standard_normal((n_days, n_t))
    folds = walk_forward(n_days, 4, 5, 0.4)
    out = nested_blend({"good": good, "noise": noise}, Y, folds)
    assert [f["fold"] for f in out["per_fold"]] == [1, 2, 3] and np.isnan(
        out["oof"][: folds[1].test_start]
    ).all()
    assert out["per_fold"][0]["fit_days"] == folds[0].test_end - folds[0].test_start
    assert out["weights"]["good"] == 1.0
    # changing a later fold's labels cannot change an earlier fold's weights
    Y2 = Y.copy()
    Y2[folds[3].test_start :] = -Y2[folds[3].test_start :]
    out2 = nested_blend({"good": good, "noise": noise}, Y2, folds)
    assert [f["weights"] for f in out2["per_fold"]] == [f["weights"] for f in out["per_fold"]]


def test_blend_weights_maximise_the_sharpe_of_daily_correlations():
    """Two equally informative members with independent errors share the weight about equally and
    their mix scores above either alone; a duplicated member stays solvable (its weight is split);
    a member with no signal gets none."""
    from kaggle_kernel.features import day_ranks
    from offline.train.blending import DailySpearman, fit_weights

    rng = np.random.default_rng(4)
    n_days, n_t = 300, 60
    Y = rng.standard_normal((n_days, n_t))
    a, b = (Y + 3.0 * rng.standard_normal((n_days, n_t)) for _ in range(2))
    noise = rng.standard_normal((n_days, n_t))
    ranked = [np.nan_to_num(day_ranks(m), nan=0.0) for m in (a, b, noise, a)]
    scorer = DailySpearman(Y)
    rows = np.arange(n_days)
    w, score = fit_weights(ranked, scorer, rows)
    assert w[2] == 0.0 and w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(w[3]) and abs((w[0] + w[3]) - w[1]) < 0.25
    singles = []
    for r in ranked[:2]:
        c = scorer(r, rows)
        singles.append(c.mean() / c.std())
    assert score > max(singles) + 0.1


def test_blend_leaves_a_label_factor_it_cannot_forecast_and_keeps_one_it_can():
    """Labels = a common factor (loading x a random daily sign) + each target's own move. A member
    that forecasts the own moves but also leans on the loadings is made neutral to that factor
    (nested and served), which scores far better; a member whose edge is the factor's daily sign
    keeps it (no factor removed). Each fold's factors come from labels before its training end only."""
    from kaggle_kernel.blend import blend, neutral_mix
    from offline.train.blending import nested_blend
    from offline.train.evaluate import score_block

    rng = np.random.default_rng(3)
    n_days, n_t = 500, 50
    loading = rng.standard_normal(n_t)
    sign = rng.standard_normal(n_days)
    own = rng.standard_normal((n_days, n_t))
    Y = 3.0 * np.outer(sign, loading) + own
    leaning = own + 2.0 * rng.standard_normal((n_days, n_t)) + 4.0 * loading
    folds = walk_forward(n_days, 4, 5, 0.4)
    out = nested_blend({"member": leaning}, Y, folds)
    assert all(0 not in f["factors"] for f in out["per_fold"]) and out["factors"].shape[1] >= 1
    first = out["factors"][:, 0]
    assert abs(np.dot(first, loading)) / np.linalg.norm(loading) > 0.9  # the planted factor (in rank space)
    mask = np.zeros(n_days, dtype=bool)
    mask[folds[1].test_start :] = True
    plain = blend([leaning], [1.0])
    assert score_block(out["oof"], Y, mask)["score"] > score_block(plain, Y, mask)["score"] + 1.0
    # served: the same function on every day gives exposure-free rows
    served = neutral_mix(plain[-5:], out["factors"], out["counts"])
    assert np.abs(served - served.mean(axis=1, keepdims=True)).max() > 0
    timing = 3.0 * np.outer(sign, loading) + 2.0 * rng.standard_normal((n_days, n_t))
    kept = nested_blend({"member": timing}, Y, folds)
    assert [f["factors"] for f in kept["per_fold"]] == [[0]] * 3 and kept["factors"].shape[1] == 0


def test_tie_middle_ties_the_share_nearest_the_median():
    """The share of a row's values nearest its median become the median (one tie); the rest and
    their order are kept; share 0 changes nothing; rows are independent."""
    from kaggle_kernel.blend import tie_middle

    rng = np.random.default_rng(5)
    rows = rng.standard_normal((3, 424))
    assert tie_middle(rows, 0.0) is rows
    for share in (0.25, 0.5, 0.9, 0.95):
        out = tie_middle(rows, share)
        mid = np.median(rows, axis=1, keepdims=True)
        tied = out == mid
        assert np.all(np.abs(tied.sum(axis=1) - share * 424) <= 1)
        dist = np.abs(rows - mid)
        assert all(dist[r][tied[r]].max() <= dist[r][~tied[r]].min() for r in range(3))
        np.testing.assert_array_equal(out[~tied], rows[~tied])
        assert len(np.unique(out[0])) > 1  # never a constant row
    np.testing.assert_array_equal(tie_middle(rows, 0.5)[1], tie_middle(rows[1:2], 0.5)[0])


def test_ties_never_make_a_day_constant_on_the_targets_it_labels(public_dir):
    """Days of the public window label only some exchanges' targets (one labels only the FX-JPX ones):
    a forecast confident only on other targets, tied at 95%, still varies on every day's labelled
    targets, because each (exchanges, lag) group keeps its farthest values untied. Without the
    groups some day would be constant there, which fails a Kaggle submission."""
    import polars as pl

    from kaggle_kernel.blend import KEEP_PER_GROUP, tie_groups, tie_middle
    from kaggle_kernel.schema import target_defs

    defs = target_defs()
    groups = tie_groups(defs)
    exchanges = [frozenset(leg.split("_")[0] for leg in (t.leg_a, t.leg_b) if leg) for t in defs]
    assert len(np.unique(groups)) == len(set(zip(exchanges, [t.lag for t in defs], strict=True))) == 28
    rng = np.random.default_rng(7)
    row = rng.standard_normal(len(defs))
    lme_us = np.array(["US" in t.pair and "LME" in t.pair for t in defs])
    row[lme_us] *= 50.0  # the confident targets: every LME-US pair
    labelled = []
    for lag in (1, 2, 3, 4):
        frame = pl.read_csv(public_dir / "lagged_test_labels" / f"test_labels_lag_{lag}.csv")
        labelled.append(frame.select(pl.col([t.name for t in defs if t.lag == lag]).is_not_null()).to_numpy())
    by_lag = {lag: np.array([t.index for t in defs if t.lag == lag]) for lag in (1, 2, 3, 4)}
    days = np.zeros((labelled[0].shape[0], len(defs)), dtype=bool)
    for lag, mask in zip((1, 2, 3, 4), labelled, strict=True):
        days[:, by_lag[lag]] = mask
    guarded, bare = tie_middle(row, 0.95, groups), tie_middle(row, 0.95)
    assert all(np.ptp(guarded[d]) > 0 for d in days if d.sum() > 1)
    assert any(np.ptp(bare[d]) == 0 for d in days if d.sum() > 1)
    for g in np.unique(groups):
        assert (guarded[groups == g] != np.median(row)).sum() >= min(KEEP_PER_GROUP, (groups == g).sum())


def test_blend_ties_where_the_information_is_in_a_few_targets_only():
    """A member that forecasts 5 of 60 targets well and the rest by noise: the nested blend ties
    most of each day (share chosen on earlier folds) and scores far above the untied blend. A
    member with the same information spread over every target keeps every target ranked."""
    from kaggle_kernel.blend import blend, neutral_mix, tie_middle
    from offline.train.blending import nested_blend
    from offline.train.evaluate import score_block

    rng = np.random.default_rng(6)
    n_days, n_t = 500, 60
    signal = np.zeros((n_days, n_t))
    signal[:, :5] = 2.0 * rng.standard_normal((n_days, 5))
    Y = signal + rng.standard_normal((n_days, n_t))
    sparse = signal + 0.3 * rng.standard_normal((n_days, n_t))
    folds = walk_forward(n_days, 4, 5, 0.4)
    out = nested_blend({"member": sparse}, Y, folds)
    assert all(f["ties"] >= 0.75 for f in out["per_fold"]) and out["ties"] >= 0.75
    mask = np.zeros(n_days, dtype=bool)
    mask[folds[1].test_start :] = True
    untied = neutral_mix(blend([sparse], [1.0]), out["factors"], out["counts"])
    assert score_block(out["oof"], Y, mask)["score"] > score_block(untied, Y, mask)["score"] + 0.3
    served = tie_middle(untied[-1:], out["ties"])
    assert (served == np.median(served)).sum() >= 0.75 * n_t
    dense = Y + 1.0 * rng.standard_normal((n_days, n_t))
    assert nested_blend({"member": dense}, Y, folds)["ties"] == 0.0


def _served_formula(members, Y, folds, groups, out):
    """Each fold's OOF blend against the kernel's formula with that fold's weights, counts, share, scale."""
    from kaggle_kernel.blend import blend, neutral_mix, tie_middle
    from offline.train.blending import label_factors

    for j, f in enumerate(out["per_fold"], start=1):
        te = folds[j].test_idx()
        w = [f["weights"][m] for m in members]
        counts = f["factors"]
        mixed = neutral_mix(
            blend([members[m][te] for m in members], w, f["scale"]),
            label_factors(Y, folds[j].train_end, counts[-1]),
            counts,
        )
        np.testing.assert_array_equal(out["oof"][te], tie_middle(mixed, f["ties"], groups))
        yield mixed, f


def test_the_nested_blend_scores_the_ties_the_kernel_serves():
    """With tie groups, each fold's OOF blend is the kernel's formula with those groups: the score
    training reports is the score of what is served, group guard included."""
    from kaggle_kernel.blend import tie_middle
    from offline.train.blending import nested_blend

    rng = np.random.default_rng(8)
    n_days, n_t = 500, 60
    signal = np.zeros((n_days, n_t))
    signal[:, :6] = 2.0 * rng.standard_normal((n_days, 6))
    Y = signal + rng.standard_normal((n_days, n_t))
    members = {
        "a": signal + 0.3 * rng.standard_normal((n_days, n_t)),
        "b": signal + rng.standard_normal((n_days, n_t)),
    }
    groups = np.arange(n_t) % 6  # every group holds one informed target and nine noisy ones
    folds = walk_forward(n_days, 4, 5, 0.4)
    out = nested_blend(members, Y, folds, groups)
    assert all(f["ties"] >= 0.75 for f in out["per_fold"])
    for mixed, f in _served_formula(members, Y, folds, groups, out):
        assert not np.array_equal(
            out["oof"][folds[f["fold"]].test_idx()], tie_middle(mixed, f["ties"])
        )  # the groups matter here


def test_factor_counts_that_score_alike_are_averaged_as_the_kernel_serves():
    """Labels with one common factor that a member leans on a little: removing 1, 2 or 3 factors
    scores about alike, so the blend averages those counts (each fold's and the served), and each
    fold's OOF is the kernel's `neutral_mix` of them; the served factors are as many as the
    largest count. `near_best` keeps the counts within COUNT_TOLERANCE of the best score."""
    from offline.train.blending import near_best, nested_blend

    rng = np.random.default_rng(0)
    n_days, n_t = 500, 60
    loading = rng.standard_normal(n_t)
    own = rng.standard_normal((n_days, n_t))
    Y = 2.0 * np.outer(rng.standard_normal(n_days), loading) + own
    members = {
        "a": own + 2.0 * rng.standard_normal((n_days, n_t)) + 1.0 * loading,
        "b": own + 3.0 * rng.standard_normal((n_days, n_t)),
    }
    groups = np.arange(n_t) % 6
    folds = walk_forward(n_days, 4, 5, 0.4)
    out = nested_blend(members, Y, folds, groups)
    assert all(len(f["factors"]) > 1 for f in out["per_fold"]) and len(out["counts"]) > 1
    assert out["factors"].shape[1] == max(out["counts"]) and 0 not in out["counts"]
    assert len(list(_served_formula(members, Y, folds, groups, out))) == 3
    assert near_best({0: 1.0, 1: 0.99, 2: 0.97, 5: 0.985}) == (0, 1, 5)
    assert near_best({0: -0.5, 1: -0.505, 3: -0.6}) == (0, 1)
    assert near_best({10: 2.0}) == (10,)


def test_a_sparse_signal_is_mixed_as_z_scores_as_the_kernel_serves(monkeypatch):
    """A member that knows 6 of 60 targets (a lead-lag's followers) and predicts ~0 elsewhere, beside
    a weak member on every target: as day ranks its 54 idle targets are spread as widely as the
    6, as z-scores they stay near 0, so the blend takes z (each fold's and the served) and scores
    above the blend kept on ranks. Each fold's OOF is the kernel's formula on z. Two dense members
    stay on ranks."""
    import offline.train.blending as blending
    from offline.train.evaluate import score_block

    rng = np.random.default_rng(11)
    n_days, n_t = 500, 60
    signal = np.zeros((n_days, n_t))
    signal[:, :6] = rng.standard_normal((n_days, 6))
    common = 0.3 * rng.standard_normal((n_days, n_t))
    Y = signal + common + rng.standard_normal((n_days, n_t))
    members = {
        "leader": signal + 0.05 * rng.standard_normal((n_days, n_t)),
        "broad": common + 0.5 * rng.standard_normal((n_days, n_t)),
    }
    groups = np.arange(n_t) % 6
    folds = walk_forward(n_days, 4, 5, 0.4)
    out = blending.nested_blend(members, Y, folds, groups)
    assert [f["scale"] for f in out["per_fold"]] == ["z"] * 3 and out["scale"] == "z"
    assert len(list(_served_formula(members, Y, folds, groups, out))) == 3
    monkeypatch.setattr(blending, "SCALE_MARGIN", np.inf)
    ranks = blending.nested_blend(members, Y, folds, groups)
    assert ranks["scale"] == "rank" and all(f["scale"] == "rank" for f in ranks["per_fold"])
    mask = np.zeros(n_days, dtype=bool)
    mask[folds[1].test_start :] = True
    assert score_block(out["oof"], Y, mask)["score"] > score_block(ranks["oof"], Y, mask)["score"] + 0.1
    monkeypatch.undo()
    dense = {
        "a": Y + 2.0 * rng.standard_normal((n_days, n_t)),
        "b": Y + 3.0 * rng.standard_normal((n_days, n_t)),
    }
    assert blending.nested_blend(dense, Y, folds, groups)["scale"] == "rank"


def test_day_scores_are_clipped_z_scores_on_the_ranks_scale():
    """`day_scores`: per row, (x - mean) / population sd over finite cells, clipped at Z_CLIP, times
    RANK_SD; inf and NaN cells NaN, a row with fewer than two finite values NaN, a flat row 0; a
    mix of them ranks as the metric would rank the z-scores."""
    from kaggle_kernel.blend import RANK_SD, Z_CLIP, day_scores

    row = np.array([1.0, 2.0, 3.0, 4.0, np.nan, np.inf, 100.0])
    finite = row[np.isfinite(row)]
    want = np.clip((finite - finite.mean()) / finite.std(), -Z_CLIP, Z_CLIP) * RANK_SD
    got = day_scores(row)
    np.testing.assert_allclose(got[np.isfinite(row)], want, rtol=1e-12)
    assert np.isnan(got[4]) and np.isnan(got[5]) and got[6] < Z_CLIP * RANK_SD + 1e-12
    rows = np.array([[5.0, 5.0, 5.0], [1.0, np.nan, np.nan], [np.nan] * 3])
    out = day_scores(rows)
    assert (out[0] == 0).all() and np.isnan(out[1:]).all()
    assert abs(RANK_SD - np.std(np.arange(1000) / 1000)) < 1e-3  # the spread of a day's ranks


def test_blend_scorer_matches_the_metric():
    """The weight search's fast daily Spearman equals the metric's on blends of day ranks, on exact
    ties (values on a coarse grid), with unlabelled cells and on a day with one label (0). A mix of
    ranks ties where its values are equal but for rounding (0.3 x 0.7 + 0.7 x 0 == 0.3 x 0 + 0.7 x 0.3),
    so the metric is given the mix rounded to 12 decimals."""
    from kaggle_kernel.features import day_ranks
    from offline.metric import rank_correlations
    from offline.train.blending import DailySpearman

    rng = np.random.default_rng(2)
    Y = rng.standard_normal((60, 50))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    Y[7, 1:] = np.nan
    Y[8] = np.nan  # a day without labels: every correlation 0, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer = DailySpearman(Y)
    rows = np.arange(10, 60)
    members = [np.nan_to_num(day_ranks(rng.standard_normal(Y.shape)), nan=0.0) for _ in range(2)]
    tied = np.round(rng.uniform(-0.5, 0.5, Y.shape) * 8) / 8  # few distinct values: many exact ties
    for B in (members[0], 0.3 * members[0] + 0.7 * members[1], tied):
        got = scorer(B[rows], rows)
        want = np.nan_to_num(rank_correlations(np.round(B[rows], 12), Y[rows]), nan=0.0)
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert scorer(tied[:8], np.arange(8))[7] == 0.0
    assert scorer(tied[8:9], np.array([8]))[0] == 0.0


def test_blend_weights_need_enough_days():
    """Fit on fewer than MIN_FIT_DAYS days (a short window's first folds), the weights are the engine
    alone, however the members score there; with enough days the better member wins."""
    from offline.train.blending import MIN_FIT_DAYS, nested_blend

    rng = np.random.default_rng(1)
    n_days, n_t = 200, 40
    Y = rng.standard_normal((n_days, n_t))
    members = {"engine": rng.standard_normal((n_days, n_t)), "good": Y + rng.standard_normal((n_days, n_t))}
    folds = walk_forward(n_days, 4, 5, 0.4)  # 30 OOF days per fold: fold 1 sees 30, fold 2 60
    assert folds[0].test_end - folds[0].test_start < MIN_FIT_DAYS
    out = nested_blend(members, Y, folds)
    assert out["per_fold"][0]["weights"] == {"engine": 1.0, "good": 0.0}
    assert out["per_fold"][1]["weights"]["good"] == 1.0 and out["weights"]["good"] == 1.0


def test_compare_pairs_two_runs_on_common_days(synthetic_dir, tmp_path, capsys):
    """Two runs on the same data: the better one (less noise on the labels) wins, on common days only."""
    from test_run_files import small_report

    from offline.cli import main
    from offline.train.compare import compare

    labels = load_competition(synthetic_dir).train_labels
    names = [c for c in labels.columns if c.startswith("target_")]
    Y = labels.select(names).to_numpy()
    rng = np.random.default_rng(0)
    for run, noise, first in (("a", 3.0, 300), ("b", 0.5, 350)):
        out = tmp_path / run
        out.mkdir()
        P = np.where(
            np.arange(len(Y))[:, None] >= first,
            np.nan_to_num(Y) + noise * 0.02 * rng.standard_normal(Y.shape),
            np.nan,
        )
        P[-10:] = np.nan  # the last labels are not delivered: no OOF day there
        pl.DataFrame({"date_id": labels["date_id"], **dict(zip(names, P.T, strict=True))}).write_parquet(
            out / "oof.parquet"
        )
        small_report(synthetic_dir).write(out)
    c = compare(tmp_path / "a", tmp_path / "b")
    assert c["days"] == len(Y) - 10 - 350
    assert c["b"]["score"] > c["a"]["score"] and c["b_minus_a"]["t"] > 2
    lo, hi = c["b_minus_a"]["score_difference_interval"]
    assert 0 < lo <= c["b_minus_a"]["score_difference"] <= hi
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "B - A on" in capsys.readouterr().out


def test_with_column_builds_a_new_dataset_and_leaves_the_old_one():
    """A step that adds a probability column returns a new Dataset; no step can write into another's X."""
    from offline.train.dataset import Dataset, with_column

    X = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    X.setflags(write=False)
    data = Dataset(np.arange(3), X, np.zeros((3, 1)), ["px", "regime_prob"], FeatureSpec(), set())
    new = with_column(data, "regime_prob", np.array([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(new.X[:, 1], [0.1, 0.2, 0.3])
    assert np.isnan(data.X[:, 1]).all() and new.X[:, 0].tolist() == [1.0, 2.0, 3.0]
    assert new.Y is data.Y and new.names == data.names
    with pytest.raises(ValueError, match="read-only"):
        new.X[0, 0] = 9.0


def test_column_moments_match_numpy_and_never_warn():
    """The ridges' standardization: nanmean/nanstd where a column has values, mean 0 / scale 1
    for an all-NaN or constant column, and no warning (from a thread, one would reach the console)."""
    from offline.train.candidates import column_moments

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(500, 4))
    x[rng.random((500, 4)) < 0.2] = np.nan
    x[:, 2] = np.nan
    x[:, 3] = 7.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, scale = column_moments(x.astype(np.float32))
    x64 = x[:, :2].astype(np.float32).astype(np.float64)  # moments of float32 rows, taken in float64
    np.testing.assert_allclose(mean[:2], np.nanmean(x64, axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale[:2], np.nanstd(x64, axis=0), rtol=1e-12)
    assert (mean[2], scale[2]) == (0.0, 1.0)
    assert mean[3] == pytest.approx(7.0) and scale[3] == 1.0


def test_per_target_mean_baseline_is_each_folds_training_mean_and_nan_without_labels() -> None:
    """The mean baseline: each fold's test days get the mean of the labels before its train end; a
    target without any training label gets NaN, silently (no empty-slice warning)."""
    import warnings
    from types import SimpleNamespace

    from offline.train.baselines import per_target_mean
    from offline.train.cv import walk_forward

    rng = np.random.default_rng(0)
    Y = rng.normal(size=(60, 3))
    Y[:45, 2] = np.nan  # target 2: labels only late
    Y[rng.random(Y.shape) < 0.2] = np.nan
    folds = walk_forward(60, n_folds=2, gap=2, min_train=0.5)
    targets = [SimpleNamespace(index=i) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P = per_target_mean(SimpleNamespace(Y=Y), Y, targets, folds)
    for f in folds:
        expected = [
            np.nanmean(Y[: f.train_end, j]) if (~np.isnan(Y[: f.train_end, j])).any() else np.nan
            for j in range(3)
        ]
        np.testing.assert_array_equal(
            P[f.test_start : f.test_end], np.tile(expected, (f.test_end - f.test_start, 1))
        )
    assert np.isnan(P[folds[0].test_start, 2]) and np.isnan(P[: folds[0].test_start]).all()
