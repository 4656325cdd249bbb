"""Export trained LightGBM models into the packed forest the kernel evaluates.

Reads each model through `Booster.dump_model()`, refuses anything kaggle_kernel.forest cannot
reproduce exactly, remaps split features onto one global feature vector and writes a
byte-reproducible .npz (fixed zip timestamps, no pickle).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaggle_kernel.forest import (
    ARRAY_DTYPES,
    FORMAT,
    FORMAT_VERSION,
    MISSING_CODES,
    Forest,
    encode_meta,
)
from offline.errors import UserError
from offline.progress import progress

# Objectives whose prediction is the raw score; binary applies LightGBM's sigmoid(sigmoid * raw).
IDENTITY_OBJECTIVES = frozenset({"regression", "regression_l1", "huber", "fair", "quantile", "mape"})

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

ModelLike = Any  # lightgbm.Booster, a fitted sklearn LGBM estimator, a dump_model() dict or a model file


@dataclass(frozen=True)
class PackedForest:
    """The container's arrays (meta included as JSON bytes), ready for save_forest or Forest()."""

    arrays: dict[str, np.ndarray]

    def forest(self) -> Forest:
        return Forest(self.arrays, source="<packed>")


def _resolve(model: ModelLike) -> Any:
    """A Booster (model files are loaded, estimators unwrapped) or an already dumped dict."""
    if isinstance(model, dict):
        return model
    if isinstance(model, str | os.PathLike):
        import lightgbm as lgb

        path = Path(model)
        if not path.is_file():
            raise UserError(f"{path}: LightGBM model file not found")
        return lgb.Booster(model_file=str(path))
    booster = getattr(model, "booster_", model)
    if not (hasattr(booster, "dump_model") and hasattr(booster, "feature_name")):
        raise UserError(f"cannot export object of type {type(model).__name__}; expected a LightGBM model")
    return booster


def _feature_names_of(resolved: Any) -> list[str]:
    names = resolved["feature_names"] if isinstance(resolved, dict) else resolved.feature_name()
    return [str(f) for f in names]


def pack_forest(
    models: Mapping[str, ModelLike] | Sequence[tuple[str, ModelLike]],
    feature_names: Sequence[str] | None = None,
) -> PackedForest:
    """Pack models (name -> model, in output-column order) over one global feature vector.

    feature_names defaults to the sorted union of the models' features. Models are dumped one at a
    time, so hundreds of boosters never need all their JSON dumps in memory at once.
    """
    pairs = list(models.items()) if isinstance(models, Mapping) else list(models)
    names = [str(n) for n, _ in pairs]
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise UserError(f"duplicate model names: {', '.join(dup[:10])}")
    resolved = [_resolve(m) for _, m in pairs]
    if feature_names is None:
        feature_names = sorted({f for r in resolved for f in _feature_names_of(r)})
    feature_names = [str(f) for f in feature_names]
    dup = sorted(f for f, c in Counter(feature_names).items() if c > 1)
    if dup:
        raise UserError(f"duplicate global feature names: {', '.join(dup[:10])}")
    position = {f: i for i, f in enumerate(feature_names)}

    cols: dict[str, list] = {
        k: []
        for k in ("split_feature", "threshold", "left_child", "right_child", "default_left", "missing_type")
    }
    leaf_values: list[float] = []
    tree_root: list[int] = []
    tree_model: list[int] = []
    models_meta = []
    shown = progress(
        zip(names, resolved, strict=True),
        total=len(names),
        desc="pack forest",
        unit="model",
        disable=len(names) < 20,
    )
    for m_idx, (name, model) in enumerate(shown):
        dump = model if isinstance(model, dict) else model.dump_model()
        transform, sigmoid = _output_transform(name, dump)
        model_features = [str(f) for f in dump["feature_names"]]
        absent = [f for f in model_features if f not in position]
        if absent:
            raise UserError(
                f"model {name!r}: features not in the global feature list: {', '.join(absent[:10])}"
            )
        remap = np.array([position[f] for f in model_features], dtype=np.int64)
        for t_idx, tree in enumerate(dump["tree_info"]):
            root = _pack_tree(name, t_idx, tree, remap, cols, leaf_values)
            tree_root.append(root)
            tree_model.append(m_idx)
        models_meta.append(
            {
                "name": name,
                "objective": str(dump["objective"]),
                "transform": transform,
                "sigmoid": sigmoid,
                "feature_names": model_features,
                "n_trees": len(dump["tree_info"]),
            }
        )

    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "feature_names": feature_names,
        "models": models_meta,
    }
    arrays = {k: np.asarray(v, dtype=ARRAY_DTYPES[k]) for k, v in cols.items()}
    arrays["leaf_value"] = np.asarray(leaf_values, dtype=np.float64)
    arrays["tree_root"] = np.asarray(tree_root, dtype=np.int32)
    arrays["tree_model"] = np.asarray(tree_model, dtype=np.int32)
    arrays["meta"] = encode_meta(meta)
    packed = PackedForest(arrays={k: arrays[k] for k in ARRAY_DTYPES})
    packed.forest()  # validates the container the kernel will read
    return packed


def _output_transform(name: str, dump: dict) -> tuple[str, float]:
    """identity or sigmoid (with LightGBM's sigmoid parameter); anything else is refused."""
    objective = str(dump.get("objective", ""))
    if int(dump.get("num_tree_per_iteration", 1)) != 1 or int(dump.get("num_class", 1)) != 1:
        raise UserError(
            f"model {name!r}: objective {objective!r} has several trees per iteration (multiclass); not supported"
        )
    if dump.get("average_output"):
        raise UserError(f"model {name!r}: average_output (random forest mode) is not supported")
    tokens = objective.split()
    head = tokens[0] if tokens else ""
    if head in IDENTITY_OBJECTIVES and len(tokens) == 1:
        return "identity", 1.0
    if head == "binary":
        params = dict(t.split(":", 1) for t in tokens[1:] if ":" in t)
        return "sigmoid", float(params.get("sigmoid", 1.0))
    raise UserError(
        f"model {name!r}: objective {objective!r} is not supported (only regression family without sqrt, and binary)"
    )


def _pack_tree(
    name: str, t_idx: int, tree: dict, remap: np.ndarray, cols: dict[str, list], leaf_values: list[float]
) -> int:
    """Append one dumped tree to the flat arrays; return its root in LightGBM's child encoding."""
    where = f"model {name!r}, tree {t_idx}"
    if tree.get("is_linear") or tree.get("linear_tree"):
        raise UserError(f"{where}: linear trees (linear_tree) are not supported")
    if int(tree.get("num_cat", 0)) > 0:
        raise UserError(f"{where}: categorical splits are not supported")
    node_base = len(cols["threshold"])
    leaf_base = len(leaf_values)
    n_leaves = int(tree["num_leaves"])
    n_internal = n_leaves - 1
    for key in cols:
        cols[key].extend([0] * n_internal)
    leaf_values.extend([0.0] * n_leaves)
    seen_nodes = np.zeros(n_internal, dtype=bool)
    seen_leaves = np.zeros(n_leaves, dtype=bool)

    def ref(node: dict) -> int:
        """Global child reference: internal index, or ~leaf index."""
        if "split_index" in node:
            return node_base + int(node["split_index"])
        return ~(leaf_base + int(node.get("leaf_index", 0)))

    stack = [tree["tree_structure"]]
    while stack:
        node = stack.pop()
        if "split_index" not in node:
            if "leaf_coeff" in node or "leaf_const" in node:
                raise UserError(f"{where}: linear trees (linear_tree) are not supported")
            leaf = int(node.get("leaf_index", 0))
            value = float(node["leaf_value"])
            if not (0 <= leaf < n_leaves) or seen_leaves[leaf] or not np.isfinite(value):
                raise UserError(f"{where}: malformed leaf {leaf}")
            seen_leaves[leaf] = True
            leaf_values[leaf_base + leaf] = value
            continue
        i = int(node["split_index"])
        if not (0 <= i < n_internal) or seen_nodes[i]:
            raise UserError(f"{where}: malformed split index {i}")
        seen_nodes[i] = True
        if node.get("decision_type") != "<=":
            raise UserError(
                f"{where}: categorical splits are not supported (decision_type {node.get('decision_type')!r})"
            )
        missing = node.get("missing_type")
        if missing not in MISSING_CODES:
            raise UserError(f"{where}: unknown missing_type {missing!r}")
        threshold = float(node["threshold"])
        if np.isnan(threshold):
            raise UserError(f"{where}: NaN threshold at split {i}")
        feature = int(node["split_feature"])
        if not (0 <= feature < len(remap)):
            raise UserError(f"{where}: split feature {feature} outside the model's {len(remap)} features")
        g = node_base + i
        cols["split_feature"][g] = int(remap[feature])
        cols["threshold"][g] = threshold
        cols["left_child"][g] = ref(node["left_child"])
        cols["right_child"][g] = ref(node["right_child"])
        cols["default_left"][g] = bool(node["default_left"])
        cols["missing_type"][g] = MISSING_CODES[missing]
        stack.extend((node["right_child"], node["left_child"]))
    if not (seen_nodes.all() and seen_leaves.all()):
        raise UserError(
            f"{where}: dump has {int(seen_nodes.sum())} splits and {int(seen_leaves.sum())} leaves, expected {n_internal} and {n_leaves}"
        )
    return ref(tree["tree_structure"])


def save_forest(path: str | os.PathLike, packed: PackedForest) -> Path:
    """Write the packed forest as one .npz, byte-identical for identical input (fixed zip metadata)."""
    return write_npz(path, {key: packed.arrays[key] for key in ARRAY_DTYPES})


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Arrays as one .npz (no pickle), byte-identical for identical input: fixed zip metadata, atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            for key, value in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(value, order="C"), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def export_forest(
    path: str | os.PathLike,
    models: Mapping[str, ModelLike] | Sequence[tuple[str, ModelLike]],
    feature_names: Sequence[str] | None = None,
) -> PackedForest:
    """pack_forest + save_forest in one call."""
    packed = pack_forest(models, feature_names)
    save_forest(path, packed)
    return packed
