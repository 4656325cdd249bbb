"""The kernel's memory across calls: prices by day and labels by label day, bounded in size.

A repeated day replaces itself (idempotent); days may arrive with gaps or out of order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

# Days kept beyond a feature window: labels arrive up to 5 days late (lag 4 + 1), plus room for
# gaps and repeated days; the serving history, the bootstrap snapshot and its reader all use it.
HISTORY_MARGIN = 16
_NO_DAY = np.iinfo(np.int64).min  # a ring slot that holds no day
# History is cut relative to the earliest of the last few served days, so a corrupt date_id far
# ahead (or two in a row) cannot wipe the days the next normal day needs.
PRUNE_AFTER = 3


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

    def prune(self, cutoff: int) -> None:
        """Forget the days before `cutoff`."""
        for d in [d for d in self.rows if d < cutoff]:
            del self.rows[d]
        self._day[self._day < cutoff] = _NO_DAY

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


class History:
    """Price rows (the feature columns) keyed by date_id and label rows (all targets) keyed by label day."""

    def __init__(self, price_columns: Sequence[str], n_targets: int, keep_days: int):
        self.price_columns = list(price_columns)
        self.n_targets = n_targets
        self.keep_days = keep_days
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
        self._prices.set(int(date_id), np.asarray(row, dtype=np.float64))

    def add_labels(self, label_day: int, targets: np.ndarray, values: np.ndarray) -> None:
        """Set the delivered (non-null) label cells of one label day."""
        row = self._labels.get(int(label_day))
        if row is None:
            row = np.full(self.n_targets, np.nan)
        ok = ~np.isnan(values)
        row[targets[ok]] = values[ok]
        self._labels.set(int(label_day), row)

    def prune(self, day: int) -> None:
        """Forget days older than keep_days before the served `day` and the PRUNE_AFTER - 1 days
        served before it, whichever is earliest (later days are kept)."""
        self._served.append(int(day))
        cutoff = min(self._served) - self.keep_days
        self._prices.prune(cutoff)
        self._labels.prune(cutoff)

    def price_window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """(date_ids, days x columns) for the n_days consecutive days ending at `end`; unknown days NaN."""
        return self._prices.window(end, n_days)

    def label_window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        return self._labels.window(end, n_days)
