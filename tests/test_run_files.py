"""models.json and report.json: dataclasses that round-trip through JSON, and name a bad key and file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from offline.errors import UserError
from offline.train.config import TrainConfig
from offline.train.run_files import (
    Ablation,
    BaselineScore,
    BlendFiles,
    BlendReport,
    CandidateScores,
    CvScores,
    DataInfo,
    EtfCrashFiles,
    EtfDecision,
    Fallback,
    FoldScore,
    ModelsFile,
    OracleScore,
    RegimeFile,
    RegimeScores,
    Scored,
    TargetFile,
    TargetIcs,
    TargetModeReport,
    TrainReport,
    Tuning,
)


def small_report(data_dir: Path | str = "/data", **changes) -> TrainReport:
    """A report with every optional part filled (tuning, baselines, ablation, oracle, the ETF test)."""
    folds = [FoldScore(0, 0.1, 0.01), FoldScore(1, 0.2, 0.02)]
    fields = dict(
        engine_oof_score=0.25,
        engine_interval=[0.1, 0.4],
        engine_per_fold=folds,
        n_targets=3,
        n_days=600,
        n_oof_days=300,
        target_mode=TargetModeReport(
            "rank", {"raw": 0.1, "rank": 0.2}, {"raw": [0.0, 0.2], "rank": None}, None, 1
        ),
        shared_only=0.05,
        shared_only_interval=[-0.1, 0.2],
        etf_crash_prob=EtfDecision(True, "on", with_score=0.3, without_score=0.2, gain={"t": 1.0}, targets=1),
        regime=RegimeScores(300, 0.2, 0.6, 0.3, 0.15, [{"fold": 0, "n": 150}]),
        fallbacks=[Fallback("target_2", "fold 0 has 10 training labels (< 100)")],
        ic=TargetIcs([0.1, None, 0.2], 0.15, 0.15, 1.0),
        fit_seconds=1.5,
        oof_score=0.3,
        oof_interval=[0.2, 0.4],
        oof_mean_daily_corr=0.03,
        per_fold=folds[1:],
        n_blend_days=150,
        candidates={"prior": CandidateScores(0.1, [0.0, 0.2], [0.1], Scored(0.12, [0.0, 0.3]))},
        blend=BlendReport(
            {"prior": 1.0}, [{"fold": 1, "weights": {"prior": 1.0}, "factors": 0, "fit_days": 150}], {}, 3
        ),
        train_seconds=12.0,
        config=TrainConfig(n_folds=2, targets=[0, 1, 2], params={"num_leaves": 3}),
        data=DataInfo(str(data_dir), None, "abc", 0, 599),
        seconds={"features_and_regime": 1.0},
        tuning=Tuning("runs/tune/best_params.json", 400, {"num_leaves": 3}, {}, 0.1, {"score": 0.2}),
        baselines={
            "naive": BaselineScore(-0.1, None, [-0.1, -0.1]),
            "mean": BaselineScore(0.1, [0, 1], [0.1]),
        },
        ablation=Ablation(
            1, {"full": 0.2, "no_regime": 0.1, "without_etf_crash_prob": 0.2}, {"no_regime": None}
        ),
        oracle=OracleScore(0.5, 0.6, [0.4, 0.6]),
    )
    return TrainReport(**{**fields, **changes})


def small_models(**changes) -> ModelsFile:
    fields = dict(
        regime=RegimeFile("models/regime.txt", ["px_ret1"], "classifier"),
        targets={
            "target_0": TargetFile(0, 1, "A - B", None, "models/target_0.txt"),
            "target_1": TargetFile(1, 1, "A", "leg column(s) missing from the data: A"),
        },
        blend=BlendFiles(
            "models/blend.json",
            "models/pooled.txt",
            "models/ridge.json",
            "models/local.npz",
            "models/leaders.npz",
        ),
        target_mode="raw",
        data=DataInfo("/data", 400, "abc", 0, 400),
        cv=CvScores(0.3, 0.6),
        etf_crash=EtfCrashFiles("models/etf_crash.txt", "models/etf_crash.json"),
    )
    return ModelsFile(**{**fields, **changes})


@pytest.mark.parametrize(
    "report",
    [
        small_report(),
        small_report(tuning=None, baselines=None, ablation=None, oracle=None),
        small_report(etf_crash_prob=EtfDecision(False, "auto", unavailable="no market ETF"), oracle=None),
    ],
)
def test_report_round_trips_through_json_text(report, tmp_path):
    assert TrainReport.from_json(report.to_json()) == report
    report.write(tmp_path)
    assert TrainReport.load(tmp_path) == report
    saved = json.loads((tmp_path / "report.json").read_text())
    # the keys the tests, the README and the packaged manifest rely on stay as they were
    assert ("tuned_from" in saved) == ("tuning" in saved) == (report.tuning is not None)
    assert ("oracle_fraction" in saved) == (report.oracle is not None)
    if report.baselines:
        assert saved["baselines"]["naive_per_fold"] == [-0.1, -0.1] and saved["baselines"]["mean"] == 0.1
    if report.ablation:
        assert saved["ablation"] == {
            "targets": 1,
            "full": 0.2,
            "no_regime": 0.1,
            "without_etf_crash_prob": 0.2,
            "intervals": {"no_regime": None},
        }
    etf = saved["etf_crash_prob"]
    assert set(etf) == ({"used", "decided_by", "unavailable"} if "unavailable" in etf else {
        "used", "decided_by", "with", "without", "gain", "targets"
    })  # fmt: skip
    assert saved["target_mode"]["rank"] == 0.2 and saved["config"]["targets"] == [0, 1, 2]


def test_a_report_from_before_the_factor_neutral_blend_reads_as_zero_factors():
    """`compare` and packaging read older runs: a report.json without blend.factors had none, one
    without blend.scale mixed ranks; a scale the kit does not know is named."""
    saved = small_report().to_json()
    del saved["blend"]["factors"], saved["blend"]["scale"]
    old = TrainReport.from_json(saved)
    assert old.blend.factors == 0 and old.blend.weights == small_report().blend.weights
    assert old.blend.scale == "rank"
    with pytest.raises(UserError, match="blend.scale.*'ranks'"):
        TrainReport.from_json({**saved, "blend": {**saved["blend"], "scale": "ranks"}})


def test_models_file_round_trips_and_omits_a_fallback_target_file(tmp_path):
    models = small_models()
    models.write(tmp_path)
    assert ModelsFile.load(tmp_path) == models
    saved = json.loads((tmp_path / "models.json").read_text())
    assert list(saved) == ["regime", "targets", "etf_crash", "blend", "target_mode", "data", "cv"]
    assert "file" not in saved["targets"]["target_1"] and saved["cv"] == {
        "oof_score": 0.3,
        "regime_roc_auc": 0.6,
    }
    assert "etf_crash" not in small_models(etf_crash=None).to_json()


def _edited(obj: dict, path: str, value=KeyError) -> dict:
    """obj with the dotted key removed (value KeyError) or set to value."""
    *parents, last = path.split(".")
    inner = obj
    for k in parents:
        inner = inner[k]
    if value is KeyError:
        del inner[last]
    else:
        inner[last] = value
    return obj


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("blend.weights", KeyError, "missing key 'blend.weights'"),
        ("oof_score", KeyError, "missing key 'oof_score'"),
        ("etf_crash_prob.verdict", "yes", "unknown key 'etf_crash_prob.verdict'"),
        ("candidates.prior.all_oof_days.days", 3, "unknown key 'candidates.prior.all_oof_days.days'"),
        ("config.n_trees", 3, "unknown key 'config.n_trees'"),
        ("tuned_from", KeyError, "missing key 'tuned_from'"),
        ("surprise", 1, "unknown key 'surprise'"),
        ("baselines.naive_interval", KeyError, "missing key 'baselines.naive_interval'"),
        ("config.target_mode", "ranks", "TrainConfig.target_mode: 'ranks' is not one of"),
    ],
)
def test_a_bad_report_names_the_file_and_the_key(tmp_path, path, value, message):
    obj = _edited(small_report().to_json(), path, value)
    (tmp_path / "report.json").write_text(json.dumps(obj))
    with pytest.raises(UserError, match="^" + re.escape(f"{tmp_path / 'report.json'}: {message}")):
        TrainReport.load(tmp_path)


def test_packaging_a_bad_models_file_names_it_and_the_key(tmp_path):
    from offline.release.package import build

    run = tmp_path / "run"
    small_models().write(run)
    (run / "models.json").write_text(json.dumps(_edited(small_models().to_json(), "targets.target_0.lag")))
    with pytest.raises(
        UserError, match="^" + re.escape(f"{run / 'models.json'}: missing key 'targets.target_0.lag'")
    ):
        build(run, tmp_path / "art")
    (run / "models.json").write_text(json.dumps(_edited(small_models().to_json(), "cv.oof", 0.2)))
    with pytest.raises(UserError, match="models.json: unknown key 'cv.oof'"):
        build(run, tmp_path / "art")
    (run / "models.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="models.json: the top level is not a JSON object but a list"):
        build(run, tmp_path / "art")


def test_demo_table_and_cli_summary_read_the_report(capsys):
    """The readers of report.json render from the dataclass: the demo's table and the CLI summary."""
    from offline.demo import format_table
    from offline.train.cli import print_summary

    gateway = {"score": 0.2, "latency_ms": {"p50": 1.0, "p95": 2.0, "max": 3.0}, "startup_s": 0.5, "ok": True}
    table = format_table([("naive", gateway)], small_report())
    assert (
        "| blend | 0.300 | [0.200, 0.400] |" in table and "| naive (all OOF days) | -0.100 | n/a |" in table
    )
    assert "| oracle | 0.500 | [0.400, 0.600] |" in table and "Blend / oracle: 60%." in table
    bare = format_table([("naive", gateway)], small_report(baselines=None, oracle=None))
    assert "| oracle | n/a | n/a |" in bare and "Blend / oracle: n/a." in bare
    print_summary(
        small_report(fallbacks=[Fallback(f"target_{i}", "too few labels") for i in range(3)]), "out"
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("EVERY TARGET FELL BACK to the naive baseline (3 of 3)")
    assert lines[1] == "candidates: prior 0.1000; baselines: naive -0.1000, mean 0.1000"
    assert lines[2] == (
        "blend weights: prior 1.00; neutral to 3 label factors, 0% of targets tied, members as day ranks"
    ) and lines[3].startswith("regime ROC AUC 0.600")
