"""The shared structural model: one LightGBM over (day, target) rows of every target's `lsd_*` features.

The planted and the economic effects (reversal net of a benchmark, peer reversal, a producer's lag
behind its metal) act alike on every pair, so one model learns them from 424 x days rows where a
single target's ~1,500 noisy labels cannot. Its output is the starting point (LightGBM init_score)
of each target's own regressor, which then learns what is particular to that target; the final
per-target model file holds both sets of trees, so it is one ordinary LightGBM model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from kaggle_kernel.features import LSD_STATS
from kaggle_kernel.schema import TargetDef
from offline.train.cv import Fold, fit_rows
from offline.train.lgbm import SubsetFit, fit_subsets, lgbm_params

SHARED_PARAMS = {
    "objective": "regression",
    "n_estimators": 100,
    "learning_rate": 0.15,
    "num_leaves": 7,
    "min_child_samples": 500,
    "subsample": 0.5,
    "subsample_freq": 1,
    "reg_lambda": 10.0,
    "max_bin": 63,
    "verbose": -1,
}
DAY_STRIDE = 2  # neighbouring days' rows overlap (multi-day targets): every second day is enough
CLIP = (1.0, 99.0)  # training labels are clipped at these percentiles of the training rows


@dataclass
class SharedFit:
    """margins[i]: (days, targets) predictions of the model fit for fold i; margins[-1]: the final model's."""

    margins: np.ndarray
    model_text: str
    features: list[str]


def design(X: np.ndarray, col: dict[str, int], targets: list[TargetDef]) -> np.ndarray:
    """(targets, days, LSD_STATS) from the global feature matrix."""
    return np.stack([X[:, [col[f"{t.name}_{s}"] for s in LSD_STATS]] for t in targets])


def _clipped(y: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(y, CLIP)
    return np.clip(y, lo, hi)


def fit_shared(
    X: np.ndarray,
    Y: np.ndarray,
    col: dict[str, int],
    targets: list[TargetDef],
    folds: list[Fold],
    seed: int,
    n_jobs: int | None = None,
    params: dict | None = None,
) -> SharedFit:
    """Fit one model per fold (on its training days) and a final one (on all days); predict every day."""
    D = design(X, col, targets)
    Ys = np.stack([Y[:, t.index] for t in targets])
    p = lgbm_params(SHARED_PARAMS, seed, overrides=params)
    n_days, n_targets = X.shape[0], Y.shape[1]
    margins = np.full((len(folds) + 1, n_days, n_targets), np.nan)
    flat = D.reshape(-1, D.shape[2])
    idx = [t.index for t in targets]
    days = np.arange(n_days)[::DAY_STRIDE]  # every fit's rows are among these (its days < train_end)
    x = D[:, days].reshape(-1, D.shape[2])  # target-major, as flat
    y = Ys[:, days].reshape(-1)
    rows = fit_rows(np.tile(days, len(targets)), y, folds, n_days)
    fits = [SubsetFit(r, _clipped(y[r])) for r in rows]
    booster = None
    for i, booster in enumerate(fit_subsets(x, fits, p, list(LSD_STATS))):
        margins[i][:, idx] = booster.predict(flat).reshape(len(targets), n_days).T
    return SharedFit(margins, booster.model_to_string(), list(LSD_STATS))


# ---- one model file per target: its own trees, then the shared trees -----------------------------
_TREE = re.compile(r"^Tree=\d+\n", re.M)


def _split(text: str) -> tuple[str, list[str], str]:
    """(header, tree blocks, rest from 'end of trees') of a LightGBM text model."""
    start = _TREE.search(text).start()
    end = text.index("end of trees")
    blocks = [b for b in re.split(r"(?=^Tree=\d+\n)", text[start:end], flags=re.M) if b]
    return text[:start], blocks, text[end:]


def _remap(block: str, mapping: list[int]) -> str:
    def sub(m: re.Match) -> str:
        return "split_feature=" + " ".join(str(mapping[int(v)]) for v in m.group(1).split())

    return re.sub(r"^split_feature=(.*)$", sub, block, count=1, flags=re.M)


def combine(own_text: str, shared_text: str, shared_features: list[str], own_features: list[str]) -> str:
    """One LightGBM text model whose prediction is own + shared: the shared trees are appended with
    their feature indices mapped onto the target's feature list (`own_features` names them)."""
    header, own_blocks, rest = _split(own_text)
    _, shared_blocks, _ = _split(shared_text)
    mapping = [own_features.index(f) for f in shared_features]
    blocks = own_blocks + [_remap(b, mapping) for b in shared_blocks]
    blocks = [_TREE.sub(f"Tree={i}\n", b, count=1) for i, b in enumerate(blocks)]
    sizes = " ".join(str(len(b.encode())) for b in blocks)
    header = re.sub(r"^tree_sizes=.*$", f"tree_sizes={sizes}", header, count=1, flags=re.M)
    # feature importances describe the own trees only: leave them out rather than mislead
    tail = rest[rest.index("parameters:") :] if "parameters:" in rest else ""
    return header + "".join(blocks) + "end of trees\n\n" + tail
