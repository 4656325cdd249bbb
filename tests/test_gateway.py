"""The local evaluation gateway: batches, Kaggle's validation, limits, transport, scoring, report."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from kaggle_kernel.schema import target_names
from offline.data.competition import load_competition
from offline.data.targets import labels_from_lag_files
from offline.errors import UserError
from offline.gateway.kaggle_evaluation.core import relay
from offline.gateway.runner import KERNEL_LOG, PACKAGE_DIR, run_gateway

ROOT = Path(__file__).resolve().parents[1]
FIRST_DAY = 1827


def _tiny(public_dir: Path, dest: Path, days: int = 6, unscored_tail: int = 0) -> Path:
    """The first `days` days of the public window (exact file text), optionally the last ones unscored."""
    dest.mkdir(parents=True)
    (dest / "lagged_test_labels").mkdir()
    (dest / "target_pairs.csv").write_text((public_dir / "target_pairs.csv").read_text())
    lines = (public_dir / "test.csv").read_text().splitlines()
    rows = lines[1 : days + 1]
    rows = [r if i < days - unscored_tail else r.rsplit(",", 1)[0] + ",false" for i, r in enumerate(rows)]
    (dest / "test.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    for lag in (1, 2, 3, 4):
        name = f"lagged_test_labels/test_labels_lag_{lag}.csv"
        header, *lag_lines = (public_dir / name).read_text().splitlines()
        kept = [x for x in lag_lines if int(x.split(",", 1)[0]) < FIRST_DAY + days]  # rows the window sends
        (dest / name).write_text("\n".join([header, *kept]) + "\n")
    return dest


@pytest.fixture(scope="module")
def tiny_dir(public_dir, tmp_path_factory) -> Path:
    return _tiny(public_dir, tmp_path_factory.mktemp("data") / "tiny", days=6, unscored_tail=2)


KERNEL_TEMPLATE = """
import json, os, sys, time
import numpy as np
import pandas as pd
import polars as pl
import kaggle_evaluation.mitsui_inference_server

CALLS = 0

def names(lags):
    cols = [c for b in lags for c in b.columns if c.startswith("target_")]
    return sorted(cols, key=lambda n: int(n.split("_")[1]))

def good_row(lags):
    cols = names(lags)
    return pl.DataFrame({c: [float(np.sin(i + CALLS))] for i, c in enumerate(cols)})

{body}

inference_server = kaggle_evaluation.mitsui_inference_server.MitsuiInferenceServer(predict)
{before_serve}
if os.getenv("KAGGLE_IS_COMPETITION_RERUN"):
    inference_server.serve()
else:
    inference_server.run_local_gateway((os.environ["KAGGLE_KIT_DATA_DIR"],))
"""


def _kernel(tmp_path: Path, body: str, before_serve: str = "", name: str = "kernel.py") -> Path:
    path = tmp_path / name
    path.write_text(
        KERNEL_TEMPLATE.replace("{body}", textwrap.dedent(body)).replace("{before_serve}", before_serve)
    )
    return path


def _predict(lines: str) -> str:
    """A predict function: count the call, then run `lines` (which return the answer)."""
    return (
        "def predict(test, l1, l2, l3, l4):\n    global CALLS\n    CALLS += 1\n    lags = (l1, l2, l3, l4)\n"
        + (textwrap.indent(textwrap.dedent(lines), "    "))
    )


def _run(data: Path, kernel, tmp_path: Path, **kw) -> dict:
    report = run_gateway(data, kernel, tmp_path / "out" / "report.json", echo=False, **kw)
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    return report


# ---------------------------------------------------------------- the real public window


def test_naive_kernel_on_the_real_public_window(public_dir, tmp_path):
    report_path = tmp_path / "r.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "offline",
            "gateway",
            "--data",
            str(public_dir),
            "--kernel",
            "naive",
            "--report",
            str(report_path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["errors"] == [] and report["warnings"] == []
    assert report["n_days"] == 134 and report["n_test_days"] == 134 and report["n_is_scored"] == 90
    assert report["n_scored_days"] == 90 - report["n_days_unknown_labels"]
    assert math.isfinite(report["score"])
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert 0 < report["startup_s"] < 900 and report["kernel_exit_code"] == 0
    assert f"score {report['score']:.6f}" in res.stdout and "p95" in res.stdout
    sub = pl.read_parquet(tmp_path / "submission.parquet")
    assert sub.columns == ["date_id", *target_names()]
    assert sub["date_id"].to_list() == list(range(1827, 1961))
    assert sub.schema["date_id"] == pl.Int64 and all(sub.schema[c] == pl.Float64 for c in target_names())
    # naive: the row of day d holds the latest delivered labels (d's lag-1 file carries label d - 2)
    lag1 = pl.read_csv(public_dir / "lagged_test_labels" / "test_labels_lag_1.csv")
    day = sub.filter(pl.col("date_id") == 1900)
    delivered = lag1.filter(pl.col("date_id") == 1900)
    for col in ("target_0", "target_5"):
        if delivered[col][0] is not None:
            assert day[col][0] == pytest.approx(delivered[col][0], abs=1e-8)
    values = sub.drop("date_id").to_numpy()
    assert np.isfinite(values).all() and (np.ptp(values, axis=1) > 0).all()


# ---------------------------------------------------------------- batches


def test_batches_reach_the_kernel_as_kaggle_sends_them(tiny_dir, tmp_path):
    body = _predict("""
        rec = {"test_date_ids": test["date_id"].to_list(), "test_width": test.width,
               "gold_dtype": str(test.schema["US_Stock_GOLD_adj_close"]), "is_scored": test["is_scored"].to_list(),
               "lags": [{"date_ids": b["date_id"].to_list(), "label_date_ids": b["label_date_id"].to_list(),
                         "width": b.width, "first": b.columns[1], "type": type(b).__name__} for b in lags]}
        with open("calls.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\\n")
        return good_row(lags)
    """)
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    assert report["ok"], report["errors"]
    calls = [json.loads(x) for x in (tmp_path / "out" / "calls.jsonl").read_text().splitlines()]
    days = list(range(FIRST_DAY, FIRST_DAY + 6))
    assert [c["test_date_ids"] for c in calls] == [[d] for d in days]
    for call, d in zip(calls, days, strict=True):
        assert call["test_width"] == 1 + 557 + 1
        assert call["gold_dtype"] == "String"  # all-null column, Kaggle's plain read_csv inference
        for lag, b in enumerate(call["lags"], start=1):
            assert b["type"] == "DataFrame" and b["width"] == 1 + 106 + 1
            assert b["first"] == f"target_{(lag - 1) * 106}"
            # the lag files of the public window start at label_date_id 1827, so early batches are empty
            delivered = d - lag - 1 >= FIRST_DAY
            assert b["date_ids"] == ([d] if delivered else [])
            assert b["label_date_ids"] == ([d - lag - 1] if delivered else [])
    assert [c["is_scored"] for c in calls] == [[True]] * 4 + [[False]] * 2


def test_local_gateway_in_process_matches_the_served_run(tiny_dir, tmp_path):
    served = _run(tiny_dir, "naive", tmp_path)
    assert served["ok"]
    path_dir = tmp_path / "p"
    path_dir.mkdir()
    (path_dir / "kaggle_evaluation").symlink_to(PACKAGE_DIR)
    local = tmp_path / "local"
    local.mkdir()
    env = {**os.environ, "PYTHONPATH": str(path_dir), "KAGGLE_KIT_DATA_DIR": str(tiny_dir)}
    env.pop("KAGGLE_IS_COMPETITION_RERUN", None)
    script = ROOT / "offline" / "gateway" / "kernels" / "naive.py"
    subprocess.run(
        [sys.executable, str(script)], cwd=local, env=env, check=True, timeout=60, capture_output=True
    )
    assert pl.read_parquet(local / "submission.parquet").equals(pl.read_parquet(served["submission"]))


# ---------------------------------------------------------------- scoring and labels


def test_scores_only_scored_days_and_counts_unknown_labels(tiny_dir, tmp_path):
    report = _run(tiny_dir, "naive", tmp_path)
    # 4 is_scored days 1827..1830, all with labels in the lag files or prices of the window
    assert (
        report["n_is_scored"] == 4 and report["n_scored_days"] == 4 and report["n_days_unknown_labels"] == 0
    )
    assert report["n_days"] == 6 and math.isfinite(report["score"])
    assert (tmp_path / "out" / KERNEL_LOG).exists()


def test_days_without_any_label_are_left_out_and_counted(public_dir, tmp_path):
    data = _tiny(public_dir, tmp_path / "d", days=7)  # 1832 and 1833 need prices after the window
    report = _run(data, "naive", tmp_path)
    assert report["ok"], report["errors"]
    assert report["n_is_scored"] == 7 and report["n_days_unknown_labels"] == 2
    assert report["unknown_label_date_ids"] == [1832, 1833] and report["n_scored_days"] == 5
    assert report["label_cells_by_source"]["lag_files"] > 0


def test_oracle_kernel_and_its_missing_file(tiny_dir, tmp_path, public_dir):
    data = _tiny(public_dir, tmp_path / "d", days=6)
    missing = _run(data, "oracle", tmp_path)
    assert not missing["ok"] and missing["failure"]["kind"] == "SERVER_NEVER_STARTED"
    assert "oracle.parquet" in missing["failure"]["message"] and "code 1" in missing["failure"]["message"]
    labels = labels_from_lag_files(load_competition(data).lagged)
    rng = np.random.default_rng(0)
    noisy = labels.with_columns(
        pl.col(c) + rng.normal(scale=0.01, size=labels.height) for c in labels.columns[1:]
    )
    days = pl.DataFrame({"date_id": pl.int_range(FIRST_DAY, FIRST_DAY + 6, eager=True, dtype=pl.Int64)})
    cols = [pl.col(c) if c in noisy.columns else pl.lit(None, pl.Float64).alias(c) for c in target_names()]
    days.join(noisy, on="date_id", how="left").select("date_id", *cols).write_parquet(data / "oracle.parquet")
    naive = _run(data, "naive", tmp_path)
    oracle = _run(data, "oracle", tmp_path)
    assert oracle["ok"] and oracle["score"] > naive["score"] and oracle["score"] > 1.0


# ---------------------------------------------------------------- Kaggle's validation and the kit's warnings


@pytest.mark.parametrize(
    ("answer", "kind", "message"),
    [
        (
            "pl.concat([good_row(lags), good_row(lags)])",
            "INVALID_SUBMISSION",
            "expected 1 rows but received 2",
        ),
        (
            "good_row(lags).with_columns(date_id=pl.lit(1))",
            "GATEWAY_RAISED_EXCEPTION",
            "assert 'date_id' not in prediction.columns",
        ),
        (
            "good_row(lags).drop('target_423')",
            "GATEWAY_RAISED_EXCEPTION",
            "assert len(prediction.columns) == len(provided_label_lags.columns)",
        ),
        ("good_row(lags).to_numpy()", "INVALID_SUBMISSION", "Invalid prediction data type"),
    ],
    ids=["two-rows", "date-id-column", "wrong-column-count", "numpy-array"],
)
def test_invalid_predictions_fail_the_run_with_kaggles_message(tiny_dir, tmp_path, answer, kind, message):
    report = _run(tiny_dir, _kernel(tmp_path, _predict(f"return {answer}")), tmp_path)
    assert not report["ok"]
    assert report["failure"]["kind"] == kind and message in report["failure"]["message"]
    assert str(FIRST_DAY) in report["failure"]["message"]
    # the day was answered (Kaggle's client got it) and refused by the validation
    assert report["score"] is None and report["submission"] is None and report["n_days"] == 1
    assert report["failure"]["date_id"] == FIRST_DAY


def test_constant_and_nan_rows_on_unscored_days_only_warn(tiny_dir, tmp_path):
    body = _predict("""
        row = good_row(lags)
        if CALLS == 5:
            return row.with_columns(pl.all() * 0 + 0.5)
        if CALLS == 6:
            return row.with_columns(pl.lit(float("nan")).alias("target_7"))
        return row
    """)
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    assert report["ok"], report["errors"]
    assert report["warning_counts"] == {"constant": 1, "not_finite": 1}
    assert any("constant" in w and "1831" in w for w in report["warnings"])
    assert math.isfinite(report["score"])


def test_constant_row_on_a_scored_day_fails_the_metric(tiny_dir, tmp_path):
    body = _predict(
        "return good_row(lags).with_columns(pl.all() * 0 + 1.0) if CALLS == 2 else good_row(lags)"
    )
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    assert not report["ok"] and report["failure"]["kind"] == "metric_failed"
    assert report["warning_counts"] == {"constant": 1} and report["score"] is None


def test_pandas_answers_and_renamed_columns(tiny_dir, tmp_path):
    body = _predict("""
        row = good_row(lags).to_pandas()
        if CALLS == 3:
            row = row.rename(columns={"target_0": "zzz"})
        return row
    """)
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    # Kaggle accepts the renamed day; the kit warns, and the metric cannot find target_0
    assert report["warning_counts"] == {"names": 1}
    assert not report["ok"] and report["failure"]["kind"] == "metric_failed"


# ---------------------------------------------------------------- limits, crashes, transport


def test_startup_limit_breach(tiny_dir, tmp_path):
    kernel = _kernel(tmp_path, _predict("return good_row(lags)"), before_serve="time.sleep(30)")
    report = _run(tiny_dir, kernel, tmp_path, startup_limit=2)
    assert not report["ok"] and report["failure"]["kind"] == "SERVER_NEVER_STARTED"
    assert "--startup-limit 2" in report["failure"]["message"] and "2 s" in report["failure"]["message"]
    assert report["wall_s"] < 10 and report["kernel_exit_code"] is not None and report["kernel_exit_code"] < 0


def test_call_limit_breach(tiny_dir, tmp_path):
    kernel = _kernel(tmp_path, _predict("if CALLS == 2:\n    time.sleep(30)\nreturn good_row(lags)"))
    report = _run(tiny_dir, kernel, tmp_path, call_limit=1)
    assert not report["ok"] and report["failure"]["kind"] == "GRPC_DEADLINE_EXCEEDED"
    assert (
        "--call-limit 1" in report["failure"]["message"]
        and str(FIRST_DAY + 1) in report["failure"]["message"]
    )
    assert report["n_days"] == 1 and report["wall_s"] < 10 and report["failure"]["date_id"] == FIRST_DAY + 1


def test_cli_exit_code_and_message_on_a_limit_breach(tiny_dir, tmp_path):
    kernel = _kernel(tmp_path, _predict("if CALLS == 2:\n    time.sleep(30)\nreturn good_row(lags)"))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "offline",
            "gateway",
            "--data",
            str(tiny_dir),
            "--kernel",
            str(kernel),
            "--report",
            str(tmp_path / "r.json"),
            "--call-limit",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert (
        res.returncode == 1
        and "FAILED (GRPC_DEADLINE_EXCEEDED)" in res.stdout
        and "--call-limit 1" in res.stdout
    )
    assert f"1 of 6 days answered before the failure at date_id {FIRST_DAY + 1}" in res.stdout


def test_kernel_error_in_predict_is_visible(tiny_dir, tmp_path):
    kernel = _kernel(
        tmp_path,
        _predict("if CALLS == 3:\n    raise ValueError('exploded on purpose')\nreturn good_row(lags)"),
    )
    report = _run(tiny_dir, kernel, tmp_path)
    assert not report["ok"] and report["failure"]["kind"] == "SERVER_RAISED_EXCEPTION"
    # Kaggle's detail: the message only, with the day it happened on
    assert report["failure"]["message"] == f"date_id {FIRST_DAY + 2}: exploded on purpose"
    assert "exploded on purpose" in report["kernel_traceback"] and report["n_days"] == 2
    assert "exploded on purpose" in (tmp_path / "out" / KERNEL_LOG).read_text()


def test_kernel_process_dying_names_exit_code_and_stderr(tiny_dir, tmp_path):
    body = _predict(
        "if CALLS == 2:\n    print('about to die', file=sys.stderr, flush=True)\n    os._exit(3)\n"
        "return good_row(lags)"
    )
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    assert not report["ok"] and report["failure"]["kind"] == "SERVER_CONNECTION_FAILED"
    assert report["failure"]["date_id"] == FIRST_DAY + 1
    assert (
        "exited with code 3" in report["failure"]["message"]
        and "about to die" in report["failure"]["message"]
    )


def test_unserializable_answer_fails_the_run(tiny_dir, tmp_path):
    body = _predict("""
        row = good_row(lags).to_pandas()
        row["target_0"] = pd.Series([object()], dtype=object)
        return row
    """)
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    assert not report["ok"] and report["failure"]["kind"] == "SERVER_RAISED_EXCEPTION"
    assert "Arrow" in report["failure"]["message"] and "target_0" in report["failure"]["message"]


def test_enum_answer_is_refused_by_the_relay(tiny_dir, tmp_path):
    body = _predict("return good_row(lags).with_columns(pl.lit('a').cast(pl.Enum(['a'])).alias('target_0'))")
    report = _run(tiny_dir, _kernel(tmp_path, body), tmp_path)
    assert report["failure"]["kind"] == "SERVER_RAISED_EXCEPTION" and "Enum" in report["failure"]["message"]


def test_first_call_has_no_deadline_of_its_own(tiny_dir, tmp_path):
    kernel = _kernel(tmp_path, _predict("if CALLS == 1:\n    time.sleep(3)\nreturn good_row(lags)"))
    report = _run(tiny_dir, kernel, tmp_path, startup_limit=2, call_limit=2)
    assert report["ok"], report["errors"]
    assert report["latency_ms"]["first"] > 2500


def test_lambda_endpoint_is_refused_at_construction():
    from offline.gateway.kaggle_evaluation.core.templates import InferenceServer

    with pytest.raises(ValueError, match="must be named"):
        InferenceServer(lambda *a: None)


def test_relay_roundtrip_and_rejections():
    frame = pl.DataFrame({"a": [1.5, None], "b": ["x", None], "c": [True, False]})
    assert relay.roundtrip(frame).equals(frame)
    pdf = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]})
    pd.testing.assert_frame_equal(relay.roundtrip(pdf), pdf)
    assert relay.roundtrip(pl.Series("s", [1, 2])).to_list() == [1, 2]
    assert relay.roundtrip((1, float("nan"), "x"))[2] == "x" and math.isnan(relay.roundtrip(float("nan")))
    np.testing.assert_array_equal(relay.roundtrip(np.arange(6.0).reshape(2, 3)), np.arange(6.0).reshape(2, 3))
    scalar = relay.roundtrip(np.float32(1.5))  # numpy scalars stay numpy scalars, as in Kaggle's relay
    assert type(scalar) is np.float32 and scalar == 1.5
    with pytest.raises(relay.SerializationError, match="Object"):
        relay.encode_value(pl.DataFrame({"o": [object()]}, schema={"o": pl.Object}))
    with pytest.raises(relay.SerializationError, match="Arrow"):
        relay.encode_value(pd.DataFrame({"o": [object()]}))
    with pytest.raises(relay.SerializationError, match="cannot be serialized"):
        relay.encode_value({1, 2})


# ---------------------------------------------------------------- --official and input errors


def test_input_errors_are_user_errors(tiny_dir, tmp_path):
    with pytest.raises(UserError, match="neither a built-in"):
        _run(tiny_dir, tmp_path / "nope.py", tmp_path)
    with pytest.raises(UserError, match="is not a directory"):
        _run(tmp_path / "missing", "naive", tmp_path)
