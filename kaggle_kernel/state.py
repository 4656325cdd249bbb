"""The kernel's memory across calls: prices by day and labels by label day, bounded in size.

A repeated day replaces itself (idempotent); days may arrive with gaps or out of order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Days kept beyond a feature window: labels arrive up to 5 days late (lag 4 + 1), plus room for
# gaps and repeated days; the serving history, the bootstrap snapshot and its reader all use it.
HISTORY_MARGIN = 16


class History:
    """Price rows (the feature columns) keyed by date_id and label rows (all targets) keyed by label day."""

    def __init__(self, price_columns: Sequence[str], n_targets: int, keep_days: int):
        self.price_columns = list(price_columns)
        self.n_targets = n_targets
        self.keep_days = keep_days
        self.prices: dict[int, np.ndarray] = {}
        self.labels: dict[int, np.ndarray] = {}

    @property
    def last_day(self) -> int | None:
        return max(self.prices) if self.prices else None

    def add_prices(self, date_id: int, row: np.ndarray) -> None:
        self.prices[int(date_id)] = np.asarray(row, dtype=np.float64)

    def add_labels(self, label_day: int, targets: np.ndarray, values: np.ndarray) -> None:
        """Set the delivered (non-null) label cells of one label day."""
        row = self.labels.get(int(label_day))
        if row is None:
            row = np.full(self.n_targets, np.nan)
            self.labels[int(label_day)] = row
        ok = ~np.isnan(values)
        row[targets[ok]] = values[ok]

    def prune(self, day: int) -> None:
        """Forget days older than keep_days before the served `day` (later days are kept)."""
        cutoff = day - self.keep_days
        for store in (self.prices, self.labels):
            for d in [d for d in store if d < cutoff]:
                del store[d]

    def price_window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        """(date_ids, days x columns) for the n_days consecutive days ending at `end`; unknown days NaN."""
        return _window(self.prices, end, n_days, len(self.price_columns))

    def label_window(self, end: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
        return _window(self.labels, end, n_days, self.n_targets)


def _window(store: dict[int, np.ndarray], end: int, n_days: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(date_ids, days x width) of `store` for the n_days days ending at `end`, NaN rows for unknown days:
    one stack of the rows (a row-by-row copy into a preallocated array cost most of a served day's window)."""
    first = int(end) - n_days + 1
    days = np.arange(first, first + n_days, dtype=np.int64)
    missing = np.full(width, np.nan)
    if not n_days:
        return days, np.empty((0, width))
    return days, np.stack([store.get(d, missing) for d in range(first, first + n_days)])
