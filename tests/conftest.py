"""Shared fixtures: the real public window (../shared/mitsui-public) and small data directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT.parent / "shared" / "mitsui-public"


@pytest.fixture(scope="session")
def public_dir() -> Path:
    """The real public window; under CI its absence is a failure, elsewhere a skip."""
    if not (PUBLIC / "test.csv").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PUBLIC} is missing; CI must have ../shared beside the project")
        pytest.skip(f"{PUBLIC} not present")
    return PUBLIC


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic competition directory (600 days), shared by the session."""
    from offline.data.synthetic import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("synth") / "comp"
    write_synthetic(out, SynthConfig(days=600, test_days=60, seed=3))
    return out
