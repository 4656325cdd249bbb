"""One progress helper for every long stage: a tqdm bar on a terminal, plain lines elsewhere.

Off a terminal (CI, `| tee`, a log file) a bar's carriage returns turn into hundreds of lines;
`progress` then prints at most about ten plain lines (`desc: 120/424 (28%), 41 s`) and a last one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")
PLAIN_LINES = 10  # lines per stage off a terminal, besides the last
PLAIN_SECONDS = 30.0  # ... or one line at least this often


def progress(
    items: Iterable[T],
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    stream: IO[str] | None = None,
    disable: bool = False,
) -> Iterator[T]:
    """Iterate `items` showing progress on `stream` (default stderr)."""
    stream = stream or sys.stderr
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if disable:
        yield from items
        return
    if stream.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit=unit, file=stream)
        return
    yield from _plain(items, total, desc, unit, stream)


def _plain(items: Iterable[T], total: int | None, desc: str, unit: str, stream: IO[str]) -> Iterator[T]:
    start = last = time.monotonic()
    step = max(1, (total or 0) // PLAIN_LINES) if total else None
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if (step and done % step == 0 and done != total) or now - last >= PLAIN_SECONDS:
            stream.write(f"{desc}: {_count(done, total, unit)}, {now - start:.0f} s\n")
            stream.flush()
            last = now
    stream.write(f"{desc}: {_count(done, total, unit)} done in {time.monotonic() - start:.0f} s\n")
    stream.flush()


def _count(done: int, total: int | None, unit: str) -> str:
    if total:
        return f"{done}/{total} {unit} ({100 * done / total:.0f}%)"
    return f"{done} {unit}"
