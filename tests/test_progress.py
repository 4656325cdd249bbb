"""offline.progress: a bar on a terminal, a few plain lines without escape sequences elsewhere."""

from __future__ import annotations

import io

from offline.progress import PLAIN_LINES, progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_few_plain_lines():
    out = io.StringIO()
    assert list(progress(range(424), desc="train 424 targets", unit="target", stream=out)) == list(range(424))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) <= PLAIN_LINES + 1
    assert lines[0].startswith("train 424 targets: 42/424 target (10%)")
    assert lines[-1].startswith("train 424 targets: 424/424 target (100%) done in")


def test_on_a_terminal_a_tqdm_bar_and_disable_is_silent():
    tty = _Terminal()
    assert sum(progress(range(50), desc="bar", stream=tty)) == sum(range(50))
    assert "\r" in tty.getvalue() and "50/50" in tty.getvalue()
    quiet = io.StringIO()
    assert list(progress([1, 2], stream=quiet, disable=True)) == [1, 2] and quiet.getvalue() == ""
