"""Purged walk-forward folds: train on days before the test block minus a gap as long as the label horizon."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """Row positions: train on [0, train_end), test on [test_start, test_end)."""

    train_end: int
    test_start: int
    test_end: int

    def train_idx(self) -> np.ndarray:
        return np.arange(self.train_end)

    def test_idx(self) -> np.ndarray:
        return np.arange(self.test_start, self.test_end)


def walk_forward(n_rows: int, n_folds: int = 4, gap: int = 5, min_train: float = 0.4) -> list[Fold]:
    """Expanding-window folds over the last (1 - min_train) of the rows, each purged by `gap` rows.

    A label of row s looks at rows up to s + horizon; with gap >= horizon no training label sees
    a price of the test block.
    """
    if n_folds < 1:
        raise ValueError("n_folds must be >= 1")
    first = int(round(n_rows * min_train))
    if first <= gap or n_rows - first < n_folds:
        raise ValueError(f"{n_rows} rows are too few for {n_folds} folds with gap {gap}")
    edges = np.linspace(first, n_rows, n_folds + 1).round().astype(int)
    return [Fold(int(s) - gap, int(s), int(e)) for s, e in zip(edges[:-1], edges[1:], strict=True)]


def oof_mask(n_rows: int, folds: list[Fold]) -> np.ndarray:
    """Rows that some fold predicts out of sample."""
    mask = np.zeros(n_rows, dtype=bool)
    for f in folds:
        mask[f.test_start : f.test_end] = True
    return mask


def blend_days(mask: np.ndarray, folds: list[Fold]) -> np.ndarray:
    """The masked rows of folds 1..: the nested blend (weights from earlier folds) has a score there,
    so every model it is compared with is scored on exactly these rows."""
    return mask & (np.arange(len(mask)) >= folds[1].test_start)


def fit_rows(
    day: np.ndarray, y: np.ndarray, folds: list[Fold], n_days: int, final: bool = True
) -> list[np.ndarray]:
    """Positions of the labelled rows (day `day`, label `y`) each fit trains on: every fold's days
    before its train end, then, with `final`, every day."""
    ends = [f.train_end for f in folds] + ([n_days] if final else [])
    return [np.flatnonzero((day < end) & ~np.isnan(y)) for end in ends]
