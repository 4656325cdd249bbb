"""The training matrices: features X and labels Y by day, from what is known at the end of `until`.

X and Y are read-only: a step that adds a column (the regime's or the ETF crash model's OOF
probability) builds a new Dataset with `with_column`, so no later step changes what an earlier saw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from kaggle_kernel.features import FeatureSpec, batch_features, consecutive
from offline.data.competition import Competition
from offline.data.targets import labels_from_lag_files
from offline.errors import UserError


@dataclass(frozen=True)
class Dataset:
    """Features X and labels Y by day. A step that adds a column builds a new Dataset (`with_column`);
    X is read-only, so no later step can change what an earlier one saw."""

    date_ids: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    names: list[str]
    spec: FeatureSpec
    price_columns: set[str]

    @property
    def col(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}


def with_column(data: Dataset, name: str, values: np.ndarray | float) -> Dataset:
    """A new Dataset whose column `name` holds `values`; `data` is left as it was."""
    X = data.X.copy(order="K")
    X[:, data.col[name]] = values
    X.setflags(write=False)
    return replace(data, X=X)


def training_frames(comp: Competition, until: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Prices and labels to train on: train.csv/train_labels.csv, else the test window and lag files.

    With `until`, only what is known at the end of that day: prices up to it, and the label cells
    already delivered (label day s of lag L is known on day s + L + 1).
    """
    prices = comp.prices()
    if comp.train_labels is not None:
        labels = comp.train_labels
    elif comp.lagged:
        labels = labels_from_lag_files(comp.lagged)
    else:
        raise UserError(f"{comp.path}: no train_labels.csv and no lagged label files to train on")
    if until is not None:
        if prices.filter(pl.col("date_id") <= until).height < 100:
            raise UserError(f"--until {until}: fewer than 100 days of prices up to it")
        prices = prices.filter(pl.col("date_id") <= until)
        lag = {t.name: t.lag for t in FeatureSpec().targets}
        labels = labels.filter(pl.col("date_id") <= until).with_columns(
            [
                pl.when(pl.col("date_id") + lag[n] + 1 <= until).then(pl.col(n)).alias(n)
                for n in labels.columns
                if n in lag
            ]
        )
    return prices, labels


def build_dataset(comp: Competition, spec: FeatureSpec, until: int | None = None) -> Dataset:
    prices, labels = training_frames(comp, until)
    days, X = batch_features(spec, prices, labels)
    names = [t.name for t in spec.targets]
    wide = consecutive(labels, int(days[0]), int(days[-1]))
    wide = wide.with_columns(
        [pl.lit(None, dtype=pl.Float64).alias(n) for n in names if n not in wide.columns]
    )
    Y = wide.select(names).cast(pl.Float64).to_numpy()
    X.setflags(write=False)
    Y.setflags(write=False)
    return Dataset(days, X, Y, spec.all_features(), spec, set(prices.columns))
