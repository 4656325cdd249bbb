"""PCA + KMeans market regimes (bull, neutral, bear by cluster mean trailing return), saved as JSON.

Fit on training rows only; `transform` is pure polars expressions so serving can recompute it.
"""

from __future__ import annotations

import functools
import json
import operator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

REGIME_INPUTS = (
    "ret_1d",
    "mom_21",
    "mom_63",
    "rv_21",
    "rv_63",
    "drawdown_252",
    "dist_ma_50",
    "dist_ma_200",
    "rsi_14",
    "rv_ratio_21_63",
)
NAMING_RETURN = "mom_21"  # clusters are named by the mean trailing 21-day return of their training rows


def _ordered_sum(terms) -> pl.Expr:
    """Left-to-right sum: a fixed order gives bit-identical results (sum_horizontal's order may vary)."""
    return functools.reduce(operator.add, terms)


@dataclass
class RegimeModel:
    inputs: list[str]
    mean: list[float]
    scale: list[float]
    components: list[list[float]]  # (k, len(inputs))
    centers: list[list[float]]  # (clusters, k) in component space
    names: list[str]  # one per cluster
    mean_return: list[float]

    @property
    def output_columns(self) -> list[str]:
        pcs = [f"regime_pc{j + 1}" for j in range(len(self.components))]
        return [*pcs, *(f"regime_dist_{n}" for n in self.names), *(f"regime_is_{n}" for n in self.names)]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add component scores, distances to each named centre and a one-hot of the nearest centre."""
        z = [
            ((pl.col(c) - m) / s).fill_null(0.0)
            for c, m, s in zip(self.inputs, self.mean, self.scale, strict=True)
        ]
        pcs = [_ordered_sum(w * zi for w, zi in zip(comp, z, strict=True)) for comp in self.components]
        frame = frame.with_columns(*(p.alias(f"regime_pc{j + 1}") for j, p in enumerate(pcs)))
        dist = [
            _ordered_sum((pl.col(f"regime_pc{j + 1}") - cj) ** 2 for j, cj in enumerate(center)).sqrt()
            for center in self.centers
        ]
        frame = frame.with_columns(
            *(d.alias(f"regime_dist_{n}") for d, n in zip(dist, self.names, strict=True))
        )
        nearest = pl.min_horizontal(*(pl.col(f"regime_dist_{n}") for n in self.names))
        return frame.with_columns(
            *(
                (pl.col(f"regime_dist_{n}") == nearest).cast(pl.Int8).alias(f"regime_is_{n}")
                for n in self.names
            )
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> RegimeModel:
        return cls(**json.loads(path.read_text()))


def _names(order: np.ndarray) -> list[str]:
    n = len(order)
    ranked = ["bear", *(["neutral"] if n == 3 else [f"neutral{i}" for i in range(1, n - 1)]), "bull"][:n]
    names = [""] * n
    for rank, cluster in enumerate(order):
        names[cluster] = ranked[rank]
    return names


def fit_regime(frame: pl.DataFrame, components: int = 3, clusters: int = 3, seed: int = 0) -> RegimeModel:
    """Standardise REGIME_INPUTS on these rows, PCA to `components`, KMeans to `clusters`, name by return."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    inputs = [c for c in REGIME_INPUTS if c in frame.columns]
    x = frame.select(inputs).to_numpy().astype(float)
    mean, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    scale[scale == 0] = 1.0
    z = np.nan_to_num((x - mean) / scale)
    pca = PCA(n_components=components, random_state=seed).fit(z)
    scores = pca.transform(z)
    km = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(scores)
    ret = frame[NAMING_RETURN].to_numpy().astype(float)
    mean_ret = np.array([np.nanmean(ret[km.labels_ == c]) for c in range(clusters)])
    # transform projects z without PCA's centring, so shift the centres by the projected PCA mean
    centers = km.cluster_centers_ + pca.mean_ @ pca.components_.T
    return RegimeModel(
        inputs=inputs,
        mean=mean.tolist(),
        scale=scale.tolist(),
        components=pca.components_.tolist(),
        centers=centers.tolist(),
        names=_names(np.argsort(mean_ret)),
        mean_return=mean_ret.tolist(),
    )
