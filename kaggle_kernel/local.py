"""One ridge regression per target on that target's `FeatureSpec.local_layout`, served as numpy.

Training fits it (offline/train/candidates.py `local`); the kernel evaluates every target's model
on one day's global feature vector at once: gather, standardize, clip, NaN -> 0, then a row-wise
dot product. Stored as local.npz (plain arrays, loaded without pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_kernel.features import FeatureSpec

ARRAYS = ("mean", "scale", "coef", "intercept")


def standardize(V: np.ndarray, mean: np.ndarray, scale: np.ndarray, clip: float) -> np.ndarray:
    """(V - mean) / scale clipped to +-clip, NaN -> 0 (the training mean): the fit and the kernel's rule."""
    with np.errstate(invalid="ignore"):
        z = np.clip((V - mean) / scale, -clip, clip)
    return np.where(np.isnan(z), 0.0, z)


@dataclass(frozen=True)
class LocalLinear:
    """mean, scale, coef: (targets, features); intercept: (targets,), NaN for a target without a model."""

    layout: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    clip: float

    def __post_init__(self):
        n_t, n_f = np.shape(self.coef)
        if n_f != len(self.layout) or any(np.shape(getattr(self, a)) != (n_t, n_f) for a in ARRAYS[:2]):
            raise ValueError(f"local model: mean/scale/coef must be (targets, {len(self.layout)} features)")
        if np.shape(self.intercept) != (n_t,):
            raise ValueError(f"local model: intercept must have one value per target ({n_t})")

    def standardize(self, V: np.ndarray) -> np.ndarray:
        """Gathered feature values (..., targets, features) -> clipped z-scores, NaN -> 0."""
        return standardize(V, self.mean, self.scale, self.clip)

    def predict_values(self, V: np.ndarray) -> np.ndarray:
        """(..., targets, features) gathered values -> (..., targets) predictions."""
        return np.einsum("...tf,tf->...t", self.standardize(V), self.coef) + self.intercept

    def predict(self, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        """One day's global feature vector and `FeatureSpec.local_index()` -> one prediction per target."""
        return self.predict_values(np.asarray(x, dtype=np.float64)[index])

    def arrays(self) -> dict[str, np.ndarray]:
        """What local.npz holds (written by offline/release/forest_export.write_npz)."""
        return {
            "layout": np.array(self.layout),
            "clip": np.array(self.clip),
            **{a: getattr(self, a) for a in ARRAYS},
        }

    @classmethod
    def load(cls, path: str | Path, spec: FeatureSpec | None = None) -> LocalLinear:
        """Read local.npz; with `spec`, its layout and target count must be this kernel's."""
        with np.load(path, allow_pickle=False) as z:
            model = cls(
                tuple(str(v) for v in z["layout"]),
                *(np.asarray(z[a], dtype=np.float64) for a in ARRAYS),
                float(z["clip"]),
            )
        if spec is not None:
            if model.layout != spec.local_layout:
                raise ValueError(f"{path}: its feature layout differs from this kernel's local_layout")
            if model.coef.shape[0] != len(spec.targets):
                raise ValueError(f"{path}: {model.coef.shape[0]} targets, the kernel has {len(spec.targets)}")
        return model
