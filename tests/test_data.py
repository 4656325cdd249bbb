"""Data layer: loading and validation errors, the exact target formula, label verification."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaggle_kernel.schema import TargetDef, feature_columns, target_defs
from offline.data.competition import load_competition, read_prices
from offline.data.targets import compute_targets, labels_from_lag_files, lagged_label_frames
from offline.data.verify import load_verified, verify
from offline.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_schema_matches_public_files(public_dir):
    header = pl.read_csv(public_dir / "test.csv", n_rows=0).columns
    assert header[1:-1] == feature_columns()
    pairs = pl.read_csv(public_dir / "target_pairs.csv")
    assert [(t.name, t.lag, t.pair) for t in target_defs()] == list(pairs.iter_rows())


def test_public_window_loads_with_numeric_types(public_dir):
    comp = load_competition(public_dir)
    assert comp.train is None and comp.test.height == 134
    assert comp.test.schema["US_Stock_GOLD_adj_close"] == pl.Float64  # all-null column, not String
    assert comp.test["is_scored"].sum() == 90
    assert sorted(comp.lagged) == [1, 2, 3, 4]
    assert all(f.width == 108 for f in comp.lagged.values())


def test_verify_public_window_reproduces_every_label(public_dir):
    result = verify(load_competition(public_dir))
    assert result["compared"] >= 49_000
    assert result["mismatched"] == 0
    assert result["max_abs_error"] < 1e-5


def test_verify_cli_json_and_exit_code(public_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "offline", "data", "verify", str(public_dir), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    payload = json.loads(out.stdout)
    assert payload["compared"] == 49_679 and payload["mismatched"] == 0
    # corrupt one published label: verify must exit 1 and name it
    bad = tmp_path / "bad"
    shutil.copytree(public_dir, bad)
    (bad / "lagged_test_labels").chmod(0o755)
    lag1 = bad / "lagged_test_labels" / "test_labels_lag_1.csv"
    lag1.chmod(0o644)
    frame = pl.read_csv(lag1)
    frame = frame.with_columns(
        pl.when(pl.col("date_id") == 1850)
        .then(pl.col("target_0") + 0.01)
        .otherwise(pl.col("target_0"))
        .alias("target_0")
    )
    frame.write_csv(lag1)
    res = subprocess.run(
        [sys.executable, "-m", "offline", "data", "verify", str(bad), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 1
    payload = json.loads(res.stdout)
    assert payload["mismatched"] == 1
    assert payload["worst"][0]["target"] == "target_0" and payload["worst"][0]["date_id"] == 1850 - 2


def _copy_public(public_dir: Path, dest: Path) -> Path:
    shutil.copytree(public_dir, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: (d / "target_pairs.csv").unlink(), r"target_pairs.csv: required file is missing"),
        (
            lambda d: _replace_cell(d / "test.csv", 5, "LME_CA_Close", "abc"),
            r"test.csv, column 'LME_CA_Close', row 7: value 'abc' is not a number",
        ),
        (
            lambda d: _replace_cell(d / "test.csv", 3, "date_id", "1828"),
            r"test.csv, column 'date_id', row 5: date_id 1828 follows 1829",
        ),
        (
            lambda d: _replace_text(
                d / "target_pairs.csv",
                "LME_PB_Close - US_Stock_VT_adj_close",
                "LME_PB_Close - US_Stock_NOPE_adj_close",
            ),
            r"target_pairs.csv, column 'pair', row 3: leg 'US_Stock_NOPE_adj_close' is not a column of test.csv",
        ),
        (
            lambda d: _drop_column(d / "lagged_test_labels" / "test_labels_lag_2.csv", "target_107"),
            r"test_labels_lag_2.csv: target columns disagree with target_pairs.csv: missing \['target_107'\]",
        ),
        (
            lambda d: _replace_cell(
                d / "lagged_test_labels" / "test_labels_lag_3.csv", 0, "label_date_id", "1"
            ),
            r"test_labels_lag_3.csv, column 'label_date_id', row 2: label_date_id 1 != date_id 1831 - 3 - 1",
        ),
        (
            lambda d: _replace_cell(d / "test.csv", 2, "is_scored", "maybe"),
            r"test.csv, column 'is_scored', row 4: is_scored 'maybe' is not true/false",
        ),
        (
            lambda d: _cut_last_line(d / "test.csv"),
            r"test.csv, row 135: has 3 fields, the header has 559 \(a cut or damaged line\)",
        ),
        (
            lambda d: _train_without(d, "LME_CA_Close"),
            r"^train.csv: lacks column\(s\) LME_CA_Close that test.csv has",
        ),
    ],
)
def test_bad_input_names_file_column_row(public_dir, tmp_path, mutate, expected):
    d = _copy_public(public_dir, tmp_path / "comp")
    mutate(d)
    with pytest.raises(DataError, match=expected):
        load_competition(d)


def _replace_cell(path: Path, row: int, column: str, value: str) -> None:
    frame = pl.read_csv(path, infer_schema_length=0)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    frame.write_csv(path)


def _replace_text(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _cut_last_line(path: Path) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:-1], ",".join(lines[-1].split(",")[:3])]) + "\n")


def _train_without(d: Path, column: str) -> None:
    pl.read_csv(d / "test.csv", infer_schema_length=0).drop("is_scored", column).write_csv(d / "train.csv")


def test_verify_with_nothing_to_compare_fails(public_dir, tmp_path):
    d = _copy_public(public_dir, tmp_path / "comp")
    shutil.rmtree(d / "lagged_test_labels")
    res = subprocess.run(
        [sys.executable, "-m", "offline", "data", "verify", str(d)], capture_output=True, text=True, cwd=ROOT
    )
    assert res.returncode == 1 and "NOTHING VERIFIED" in res.stdout and "OK" not in res.stdout
    with pytest.raises(DataError, match="nothing verified"):
        load_verified(d)


def test_training_rejects_what_verify_rejects(public_dir, tmp_path):
    d = _copy_public(public_dir, tmp_path / "comp")
    lag1 = d / "lagged_test_labels" / "test_labels_lag_1.csv"
    frame = pl.read_csv(lag1)
    frame.with_columns(pl.col("target_0") + 0.01).write_csv(lag1)
    with pytest.raises(DataError, match=r"test_labels_lag_1.csv: \d+ label\(s\) disagree with the prices"):
        load_verified(d)
    with pytest.raises(DataError, match="disagree with the prices"):
        from offline.train.engine import TrainConfig, prepare

        prepare(d, TrainConfig())


def _drop_column(path: Path, column: str) -> None:
    pl.read_csv(path, infer_schema_length=0).drop(column).write_csv(path)


def test_cli_prints_one_line_error(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "offline", "data", "verify", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 2
    assert res.stderr.strip() == f"error: {tmp_path / 'nowhere'}: is not a directory"


def test_read_prices_all_null_column_is_float(tmp_path):
    p = tmp_path / "train.csv"
    p.write_text("date_id,A,B\n0,1.5,\n1,,\n")
    frame = read_prices(p)
    assert frame.schema == pl.Schema({"date_id": pl.Int64, "A": pl.Float64, "B": pl.Float64})


prices_st = st.lists(
    st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e4, allow_nan=False)), min_size=3, max_size=25
)


@settings(max_examples=150, deadline=None)
@given(a=prices_st, b_seed=st.integers(0, 10_000), lag=st.integers(1, 4), gap=st.integers(0, 24))
def test_target_formula_matches_definition(a, b_seed, lag, gap):
    """Per cell: log(A[s+L+1]/A[s+1]) - log(B[s+L+1]/B[s+1]), null if any price is null; date gaps count."""
    n = len(a)
    rng = np.random.default_rng(b_seed)
    b = [None if rng.random() < 0.2 else float(rng.uniform(1, 100)) for _ in range(n)]
    ids = list(range(n))
    if 0 < gap < n:  # a missing date_id: rows after it move one day later
        ids = ids[:gap] + [i + 1 for i in ids[gap:]]
    prices = pl.DataFrame(
        {"date_id": ids, "A": a, "B": b}, schema={"date_id": pl.Int64, "A": pl.Float64, "B": pl.Float64}
    )
    defs = [TargetDef("target_0", lag, "A - B", "A", "B"), TargetDef("target_1", lag, "A", "A", None)]
    out = compute_targets(prices, defs)
    by_day = dict(zip(ids, zip(a, b, strict=True), strict=True))
    assert out["date_id"].to_list() == ids
    for s, spread, single in out.iter_rows():

        def px(day, leg):
            return by_day.get(day, (None, None))[leg]

        a0, a1, b0, b1 = px(s + 1, 0), px(s + lag + 1, 0), px(s + 1, 1), px(s + lag + 1, 1)
        exp_single = None if a0 is None or a1 is None else math.log(a1 / a0)
        exp_spread = None if None in (a0, a1, b0, b1) else math.log(a1 / a0) - math.log(b1 / b0)
        for got, exp in ((single, exp_single), (spread, exp_spread)):
            if exp is None:
                assert got is None
            else:
                assert got == pytest.approx(exp, abs=1e-12)


def test_lagged_layout_round_trips(public_dir):
    comp = load_competition(public_dir)
    labels = compute_targets(comp.prices())
    date_ids = comp.test["date_id"].to_list()
    frames = lagged_label_frames(labels, date_ids)
    for lag, frame in frames.items():
        assert frame.columns == comp.lagged[lag].columns
        assert (frame["label_date_id"] == frame["date_id"] - lag - 1).all()
    rebuilt = labels_from_lag_files(comp.lagged)
    # rebuilt labels for a day equal the recomputed ones where prices determine them
    day = 1850
    r = rebuilt.filter(pl.col("date_id") == day)
    c = labels.filter(pl.col("date_id") == day).select(r.columns)
    np.testing.assert_allclose(r.drop("date_id").to_numpy(), c.drop("date_id").to_numpy(), atol=1e-5)
