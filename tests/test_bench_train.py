"""bench/train.py: the competing busy process really runs during the timed call and is stopped after it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(ROOT))

from bench.train import BUSY_LOOP, with_competitor  # noqa: E402


def _busy_children() -> dict[int, float]:
    """pid -> CPU seconds of this process's children running the bench's busy loop (from /proc)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and stat[0] != "Z" and BUSY_LOOP.splitlines()[0] in cmdline:
            out[int(entry.name)] = (int(stat[11]) + int(stat[12])) / tick
    return out


def test_competitor_spins_during_the_call_and_is_stopped_after() -> None:
    def observe() -> dict[int, float]:
        time.sleep(1.0)
        return _busy_children()

    during = with_competitor(observe)
    assert len(during) == 1
    assert next(iter(during.values())) > 0.2  # it burns CPU, it does not sleep
    assert _busy_children() == {}


def test_timed_train_starts_from_an_empty_out(synthetic_dir, tmp_path) -> None:
    """A timed run never reuses a previous run's per-target checkpoints: its out dir is emptied first."""
    from bench.train import timed_train

    out = tmp_path / "quiet"
    (out / "work").mkdir(parents=True)
    (out / "work" / "stale.json").write_text("{}")
    res = timed_train(synthetic_dir, out, "0-1")
    assert not (out / "work" / "stale.json").exists()
    assert (out / "report.json").exists() and res["wall_s"] > 0 and res["seconds"]["regressors"] > 0
