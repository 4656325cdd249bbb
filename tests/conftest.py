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
