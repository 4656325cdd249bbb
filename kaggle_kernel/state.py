"""The kernel's memory across calls: prices by day and labels by label day, bounded in size.

A day sent again fills or corrects what is held for it, a missing cell never erases a held one (the
same day twice is idempotent); days may arrive with gaps or out of order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

# Days kept beyond a feature window: labels arrive up to 5 days late (lag 4 + 1), plus room for
# gaps and repeated days; the serving history, the bootstrap snapshot and its reader all use it.
HISTORY_MARGIN = 16
_NO_DAY = np.iinfo(np.int64).min  # a ring slot that holds no day
# A day is kept while one of the last PRUNE_AFTER served days can read it (keep_days before it to
# ahead_days after it): a run of corrupt date_ids far ahead, shorter than this, cannot wipe the
# days the next normal day needs, and rows dated far from every served day cannot pile up.
PRUNE_AFTER = 20


class DayRows:
    """Rows of one width keyed by day. A dict holds them; a ring of day-indexed slots mirrors them so
    that a window of consecutive days is one gather (the dict answers for a day whose slot another
    day took). Reading a window row by row cost a large part of a served day."""

    def __init__(self, width: int, capacity: int):
        self.rows: dict[int, np.ndarray] = {}
        # held by column (width x slots): a window's per-column series come out contiguous
        self._ring = np.full((width, max(capacity, 1)), np.nan)
        self._day = np.full(self._ring.shape[1], _NO_DAY, dtype=np.int64)

    def get(self, day: int) -> np.ndarray | None:
        return self.rows.get(day)

    def set(self, day: int, row: np.ndarray) -> None:
        """Store `row` for `day` (the dict keeps this array; the ring a copy: call again after a change)."""
        self.rows[day] = row
        slot = day % len(self._day)
        self._ring[:, slot] = row
        self._day[slot] = day

    def prune(self, starts: np.ndarray, ends: np.ndarray) -> None:
        """Forget the days outside every interval [starts[i], ends[i]]."""
        held = np.fromiter(self.rows, dtype=np.int64, count=len(self.rows))
        for d in held[~_inside(held, starts, ends)].tolist():
            del self.rows[d]
        self._day[~_inside(self._day, starts, ends)] = _NO_DAY

    def window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """(date_ids, days x width) for the n_days consecutive days ending at `end`; unknown days NaN.
        The matrix is the transpose of a C-ordered width x days array (`.T` of it is contiguous)."""
        days = np.arange(int(end) - n_days + 1, int(end) + 1, dtype=np.int64)
        slots = days % len(self._day)
        out = self._ring[:, slots]
        for i in np.flatnonzero(self._day[slots] != days):  # days the ring does not hold (mostly absent)
            row = self.rows.get(int(days[i]))
            out[:, i] = np.nan if row is None else row
        return days, out.T


def _inside(days: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    return ((days[:, None] >= starts) & (days[:, None] <= ends)).any(axis=1)


class History:
    """Price rows (the feature columns) keyed by date_id and label rows (all targets) keyed by label day."""

    def __init__(self, price_columns: Sequence[str], n_targets: int, keep_days: int, ahead_days: int = 0):
        self.price_columns = list(price_columns)
        self.n_targets = n_targets
        self.keep_days = keep_days
        self.ahead_days = ahead_days  # days after the served ones kept (a bootstrap the gateway replays)
        # twice the days kept: a bootstrap snapshot (kept days plus a replayed window) fits without clashes
        self._prices = DayRows(len(self.price_columns), 2 * keep_days)
        self._labels = DayRows(n_targets, 2 * keep_days)
        self._served: deque[int] = deque(maxlen=PRUNE_AFTER)

    @property
    def prices(self) -> dict[int, np.ndarray]:
        return self._prices.rows

    @property
    def labels(self) -> dict[int, np.ndarray]:
        return self._labels.rows

    @property
    def last_day(self) -> int | None:
        return max(self.prices) if self.prices else None

    def add_prices(self, date_id: int, row: np.ndarray) -> None:
        """Set the known (non-NaN) price cells of one day; the others keep what is held."""
        row = np.asarray(row, dtype=np.float64)
        held = self._prices.get(int(date_id))
        self._prices.set(int(date_id), row.copy() if held is None else np.where(np.isnan(row), held, row))

    def add_labels(self, label_day: int, targets: np.ndarray, values: np.ndarray) -> None:
        """Set the delivered (non-null) label cells of one label day."""
        row = self._labels.get(int(label_day))
        if row is None:
            row = np.full(self.n_targets, np.nan)
        ok = ~np.isnan(values)
        row[targets[ok]] = values[ok]
        self._labels.set(int(label_day), row)

    def prune(self, day: int) -> None:
        """Forget the days no served day among `day` and the PRUNE_AFTER - 1 served before it can
        read: those more than keep_days before it or more than ahead_days after it."""
        self._served.append(int(day))
        served = np.array(self._served, dtype=np.int64)
        starts, ends = served - self.keep_days, served + self.ahead_days
        self._prices.prune(starts, ends)
        self._labels.prune(starts, ends)

    def price_window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """(date_ids, days x columns) for the n_days consecutive days ending at `end`; unknown days NaN."""
        return self._prices.window(end, n_days)

    def label_window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        return self._labels.window(end, n_days)
