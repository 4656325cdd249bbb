"""kaggle_kernel.manifest: one typed definition, written by package and read by the predictor."""

from __future__ import annotations

import json

import pytest

from kaggle_kernel.manifest import FileEntry, Manifest, Training


def _manifest() -> Manifest:
    return Manifest(
        kit_version="0.1.0",
        git_revision="abc",
        libraries={"polars": "2.1.0"},
        feature_names=["f0"],
        stage1=["regime"],
        models={"regime": {"features": ["f0"], "objective": "binary", "trees": 3}},
        targets={"target_0": "target_0", "target_1": None},
        fallbacks={},
        target_mode="raw",
        training=Training(
            origin="synthetic",
            data={"dir": "/d", "first_date_id": 0, "last_date_id": 9},
            cv={"oof_score": 0.5},
        ),
        snapshot={"prices": "snapshot/prices.parquet"},
        etf_crash=None,
        dataset_id="me/mitsui-kit-artifacts",
        files={"forest.npz": FileEntry(sha256="00", bytes=1)},
    )


def test_round_trip_is_exact_and_sorted(tmp_path):
    m = _manifest()
    assert Manifest.from_json(m.to_json()) == m
    m.write(tmp_path)
    assert Manifest.read(tmp_path) == m and (tmp_path / "manifest.json").read_text() == m.to_json()
    assert list(json.loads(m.to_json())) == sorted(json.loads(m.to_json()))
    assert m.training.last_date_id == 9 and m.training.oof_score == 0.5


def test_from_json_names_what_is_wrong():
    raw = json.loads(_manifest().to_json())
    with pytest.raises(ValueError, match="no 'snapshot'"):
        Manifest.from_json(json.dumps({k: v for k, v in raw.items() if k != "snapshot"}))
    with pytest.raises(ValueError, match="format 'other/1'"):
        Manifest.from_json(json.dumps({**raw, "format": "other/1"}))
    with pytest.raises(ValueError, match="manifest.json:"):
        Manifest.from_json(json.dumps({**raw, "files": {"x": {"sha": "0"}}}))
