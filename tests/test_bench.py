"""Benchmarks: the naive pandas + LightGBM kernel agrees with the packed kernel; bench.run measures all keys.

No timing assertions here: speed goals live in `make bench`, measured side by side in one run.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not an installed package; `python -m pytest` has it via the cwd
    sys.path.insert(0, str(ROOT))

from bench.naive_kernel import NaiveKernel  # noqa: E402
from bench.run import load_days, main, measure, resolve_inputs  # noqa: E402
from kaggle_kernel.predictor import Predictor  # noqa: E402
from offline.errors import UserError  # noqa: E402
from offline.release.package import artifact_size, build  # noqa: E402
from offline.train.engine import TrainConfig, train  # noqa: E402

TARGETS = list(range(0, 14))  # targets 0 and 1 have the market proxy VT as a leg
REQUIRED = (
    "kernel_ms_p50",
    "kernel_ms_p99",
    "naive_ms_p50",
    "speedup",
    "cold_start_s",
    "peak_rss_mb",
    "artifact_mb",
)


def _package(data_dir, out, min_labels):
    cfg = TrainConfig(
        n_folds=2, min_labels=min_labels, targets=TARGETS, ablation=False, baselines=False, target_mode="raw"
    )
    train(data_dir, out / "train", cfg, n_jobs=2)
    build(out / "train", out / "artifacts", data_dir=data_dir)
    return out / "artifacts"


@pytest.fixture(scope="module")
def synthetic_artifacts(synthetic_dir, tmp_path_factory):
    return _package(synthetic_dir, tmp_path_factory.mktemp("bench_synth"), min_labels=100)


@pytest.fixture(scope="module")
def public_artifacts(public_dir, tmp_path_factory):
    return _package(public_dir, tmp_path_factory.mktemp("bench_public"), min_labels=20)


def _serve_and_compare(artifacts, data_dir, days):
    """Serve the same batches to both kernels; return (max prediction diff, feature vectors of both)."""
    kernel, naive = Predictor.from_artifacts(artifacts), NaiveKernel(artifacts)
    names = kernel.spec.all_features()
    worst, xs = 0.0, []
    for batch, day in days:
        a = kernel.predict(*batch).to_numpy()[0]
        b = naive.predict(*batch)
        assert list(b.columns) == [f"target_{i}" for i in range(424)] and b.shape == (1, 424)
        worst = max(worst, float(np.max(np.abs(a - b.to_numpy()[0]))))
        fn = naive.features(day)
        xs.append((kernel._features(day), np.array([fn[n] for n in names])))
    assert sum(kernel.errors.values()) == 0
    return worst, xs


def _assert_same_features(xs):
    for xk, xn in xs:
        np.testing.assert_array_equal(np.isnan(xk), np.isnan(xn))
        np.testing.assert_allclose(xk, xn, rtol=1e-9, atol=1e-12, equal_nan=True)
        assert np.isfinite(xk).mean() > 0.5  # days with real history, not an all-NaN window


def test_naive_kernel_equals_packed_kernel_on_synthetic(synthetic_artifacts, synthetic_dir):
    manifest = json.loads((synthetic_artifacts / "manifest.json").read_text())
    assert sum(m["trees"] for m in manifest["models"].values()) > 2 * len(manifest["models"])  # real trees
    days = load_days(synthetic_dir)[-8:]  # the last days: full windows from the bootstrap snapshot
    worst, xs = _serve_and_compare(synthetic_artifacts, synthetic_dir, days)
    assert worst <= 1e-6
    _assert_same_features(xs)


def test_naive_kernel_equals_packed_kernel_on_public_window(public_artifacts, public_dir):
    days = load_days(public_dir)[-6:]
    worst, xs = _serve_and_compare(public_artifacts, public_dir, days)
    assert worst <= 1e-6
    _assert_same_features(xs)


def _edit_blend(art: Path, edit: str) -> None:
    """Rewrite the artifacts' blend spec (and its manifest hash): `counts` averages every factor
    count 0..all (or, where training chose that, takes all factors alone); `scale` mixes equally weighted members on the other scale."""
    from kaggle_kernel.artifacts import sha256_file

    manifest = json.loads((art / "manifest.json").read_text())
    path = art / manifest["blend"]["spec"]
    spec = json.loads(path.read_text())
    assert len(spec["factors"]) >= 1
    if edit == "counts":  # every count 0..all, or all alone where training chose every count
        every = list(range(len(spec["factors"]) + 1))
        spec["counts"] = every if spec.get("counts") != every else every[-1:]
    else:
        spec["scale"] = "z" if spec.get("scale", "rank") == "rank" else "rank"
        spec["weights"] = [round(1 / len(spec["members"]), 6)] * len(spec["members"])
    path.write_text(json.dumps(spec))
    manifest["files"][path.name].update(sha256=sha256_file(path), bytes=path.stat().st_size)
    (art / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("edit", ["counts", "scale"])
def test_naive_kernel_equals_packed_kernel_on_other_blend_specs(
    edit, synthetic_artifacts, synthetic_dir, tmp_path
):
    """A blend that averages several factor counts, or mixes its members as day z-scores (or ranks),
    is served alike by both kernels; the edit changes the output, so the comparison sees it."""
    art = tmp_path / "art"
    shutil.copytree(synthetic_artifacts, art)
    _edit_blend(art, edit)
    days = load_days(synthetic_dir)[-3:]
    worst, _ = _serve_and_compare(art, synthetic_dir, days)
    assert worst <= 1e-6
    batch, _ = days[-1]
    edited = Predictor.from_artifacts(art).predict(*batch).to_numpy()[0]
    single = Predictor.from_artifacts(synthetic_artifacts).predict(*batch).to_numpy()[0]
    assert np.max(np.abs(edited - single)) > 1e-3


def test_naive_kernel_sees_a_changed_model(synthetic_artifacts, synthetic_dir, tmp_path):
    """The comparison can fail: one target's leaf values shifted in the naive kernel's copy only."""
    art = tmp_path / "art"
    shutil.copytree(synthetic_artifacts, art)
    targets = json.loads((art / "manifest.json").read_text())["targets"]
    name = next(t for t, m in targets.items() if m)
    path = art / "models" / f"{name}.txt.gz"
    lines = [
        "leaf_value=" + " ".join(str(float(v) + 0.1) for v in line.removeprefix("leaf_value=").split())
        if line.startswith("leaf_value=")
        else line
        for line in gzip.decompress(path.read_bytes()).decode().splitlines()
        if not line.startswith("tree_sizes=")  # byte sizes no longer hold; LightGBM then parses sequentially
    ]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    batch, _ = load_days(synthetic_dir)[-1]
    a = Predictor.from_artifacts(synthetic_artifacts).predict(*batch).to_numpy()[0]
    b = NaiveKernel(art).predict(*batch).to_numpy()[0]
    i = int(name.removeprefix("target_"))
    manifest = json.loads((art / "manifest.json").read_text())
    blended = []
    if manifest.get("blend"):
        spec = json.loads((art / manifest["blend"]["spec"]).read_text())
        if dict(zip(spec["members"], spec["weights"], strict=True)).get("engine"):
            blended = list(spec["targets"])
    if i in blended:  # the engine's prediction enters through its rank among the blend's targets
        assert np.max(np.abs(a[blended] - b[blended])) > 1e-3
        np.testing.assert_allclose(np.delete(a, blended), np.delete(b, blended), atol=1e-6)
    else:
        assert abs(a[i] - b[i]) > 0.05
        np.testing.assert_allclose(np.delete(a, i), np.delete(b, i), atol=1e-6)


def test_proxy_residual_returns_are_undefined(synthetic_artifacts, synthetic_dir):
    """A return net of the market is undefined for the market itself (not rounding noise models split on)."""
    kernel = Predictor.from_artifacts(synthetic_artifacts)
    names = kernel.spec.all_features()
    cols = [
        names.index(f"leg_US_Stock_VT_adj_close_{s}")
        for s in ("rz5", "rz21")
        if f"leg_US_Stock_VT_adj_close_{s}" in names
    ]
    if not cols:
        pytest.skip("no market-residual features in this kernel")
    values = []
    for batch, day in load_days(synthetic_dir)[-5:]:
        kernel.predict(*batch)
        values.append(kernel._features(day)[cols])
    values = np.concatenate(values)
    assert np.isnan(values).all()


def test_measure_returns_every_key(synthetic_artifacts, synthetic_dir, tmp_path):
    out = tmp_path / "results.json"
    args = f"--artifacts {synthetic_artifacts} --data {synthetic_dir} --days 5 --cold-repeats 1 --out {out}"
    assert main(args.split()) == 0
    r = json.loads(out.read_text())
    for key in REQUIRED:
        assert isinstance(r[key], float) and r[key] > 0, key
    assert r["n_days"] == 5 and r["n_target_models"] == len(TARGETS) and r["n_models"] == len(TARGETS) + 1
    assert r["speedup"] == pytest.approx(r["naive_ms_p50"] / r["kernel_ms_p50"])
    assert r["kernel_ms_p99"] >= r["kernel_ms_p50"]
    assert r["max_abs_diff"] <= 1e-6 and r["kernel_errors"] == 0
    assert r["cold_start_s"] > r["cold_start_in_process_s"] > 0
    assert r["peak_rss_mb"] >= r["rss_after_load_mb"] > 20
    assert r["artifact_mb"] == pytest.approx(artifact_size(synthetic_artifacts) / 1e6)
    assert set(r["goals_met"]) == {"speedup", "kernel_ms_p50", "cold_start_s", "artifact_mb", "max_abs_diff"}
    assert r["goals_met"]["max_abs_diff"] is True
    assert r["machine"]["nproc"] >= 1 and len(r["machine"]["load_avg_end"]) == 3


def test_measure_without_cli(public_artifacts, public_dir):
    r = measure(public_artifacts, public_dir, n_days=2, cold_repeats=1)
    assert r["n_days"] == 2 and r["first_date_id"] + 1 == r["last_date_id"]
    assert all(key in r for key in REQUIRED)


def test_inputs_are_checked(synthetic_artifacts, synthetic_dir, tmp_path, capsys):
    assert main(["--artifacts", str(tmp_path / "nowhere")]) == 2
    assert "manifest.json not found" in capsys.readouterr().err
    assert main(["--artifacts", str(synthetic_artifacts), "--data", str(tmp_path), "--days", "1"]) == 2
    assert "test.csv not found" in capsys.readouterr().err
    assert main(["--artifacts", str(synthetic_artifacts), "--days", "0"]) == 2
    with pytest.raises(UserError, match="needs --artifacts"):
        resolve_inputs(None, synthetic_dir)
    # the data directory defaults to the one the artifacts were trained on
    assert resolve_inputs(synthetic_artifacts, None)[1].resolve() == synthetic_dir.resolve()


def test_naive_features_equal_batch_features_on_synthetic(synthetic_dir, tmp_path):
    """Without any model: the naive kernel's pandas features, bootstrapped from a snapshot, equal
    kaggle_kernel.features' batch features on the last 20 days, structural leg spreads (lsd) included."""
    import polars as pl

    from bench.naive_kernel import BOOTSTRAP_DAYS
    from kaggle_kernel.features import STRUCT_STATS, WINDOW, FeatureSpec, batch_features
    from offline.data.competition import load_competition

    comp = load_competition(synthetic_dir)
    prices = comp.prices().tail(BOOTSTRAP_DAYS)
    labels = comp.train_labels.filter(pl.col("date_id") >= prices["date_id"].min())
    (tmp_path / "snapshot").mkdir()
    prices.write_parquet(tmp_path / "snapshot" / "prices.parquet")
    labels.write_parquet(tmp_path / "snapshot" / "labels.parquet")
    snapshot = {"prices": "snapshot/prices.parquet", "labels": "snapshot/labels.parquet"}
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {}, "snapshot": snapshot}))
    naive = NaiveKernel(tmp_path)
    spec = FeatureSpec()
    names = spec.all_features()
    days, X = batch_features(spec, prices, labels)
    assert len(days) >= WINDOW + 20
    xs = []
    for day, xk in zip(days[-20:], X[-20:], strict=True):
        fn = naive.features(int(day))
        assert set(names) <= set(fn)
        xs.append((xk, np.array([fn[n] for n in names])))
    _assert_same_features(xs)
    # the structural spreads are really exercised: every kind is non-zero for some targets
    lsd = np.array([xk for xk, _ in xs])
    for stat in STRUCT_STATS:
        cols = [i for i, n in enumerate(names) if n.endswith(f"_lsd_{stat}")]
        assert len(cols) == len(spec.targets) and (lsd[:, cols] != 0).any(), stat
