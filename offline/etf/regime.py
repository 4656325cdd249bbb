"""PCA + KMeans market regimes (bull, neutral, bear by cluster mean trailing return), saved as JSON.

Fit on training rows only (sklearn); the model and its pure-polars `transform` live in
kaggle_kernel/crash.py so serving recomputes it, and are re-exported here.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from kaggle_kernel.crash import RegimeModel

__all__ = ["NAMING_RETURN", "REGIME_INPUTS", "RegimeModel", "fit_regime"]

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
