"""Packed tree-ensemble evaluator: many exported LightGBM models scored at once with numpy.

The container (.npz written by offline/release/forest_export.py) holds flat node arrays for every tree of
every model; `Forest` walks all trees of all models level by level with a handful of vectorised
gathers, reproducing LightGBM's numerical-split and missing-value rules exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

FORMAT = "mitsui-forest"
FORMAT_VERSION = 1

# LightGBM missing_type codes (tree.h GetMissingType: 0 None, 1 Zero, 2 NaN).
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
MISSING_CODES = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}

# LightGBM's kZeroThreshold is the float literal 1e-35f widened to double.
ZERO_THRESHOLD = float(np.float32(1e-35))

TRANSFORMS = ("identity", "sigmoid")

# Arrays of the container, with their dtypes. Children and roots use LightGBM's convention:
# c >= 0 is an internal node, c < 0 is the leaf ~c (= -c - 1); all indices are global.
NODE_ARRAYS = {
    "split_feature": np.int32,
    "threshold": np.float64,
    "left_child": np.int32,
    "right_child": np.int32,
    "default_left": np.bool_,
    "missing_type": np.uint8,
}
TREE_ARRAYS = {"tree_root": np.int32, "tree_model": np.int32}
ARRAY_DTYPES = {
    **NODE_ARRAYS,
    "leaf_value": np.float64,
    **TREE_ARRAYS,
    "meta": np.uint8,
}

# Rows per evaluation chunk are capped so rows x trees node ids stay around this many elements.
_CHUNK_ELEMENTS = 1 << 21
# Sums over this many columns or more add row by row (one vector add per tree slot): cumsum
# down a grid walks it column by column and costs several times more there.
_WIDE_SUM = 64
# What a missing value reads as, per variant of a feature (a node's missing rule; see _variants):
# None -> 0, NaN -> default side (left -inf, right +inf), Zero -> default side for NaN and 0 too.
_VARIANT_FILL = np.array([0.0, -np.inf, np.inf, -np.inf, np.inf])
_VARIANT_ZERO = np.array([False, False, False, True, True])  # the rule also sends 0 to the default side


def encode_meta(meta: Mapping) -> np.ndarray:
    """Metadata as canonical JSON bytes in a uint8 array, so the container never needs pickle."""
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy()


def decode_meta(arr: np.ndarray) -> dict:
    """Inverse of encode_meta."""
    return json.loads(arr.astype(np.uint8).tobytes().decode("ascii"))


@dataclass(frozen=True)
class ModelInfo:
    """One packed model: its name, output transform and the feature names it was trained on."""

    name: str
    objective: str
    transform: str
    sigmoid: float
    feature_names: tuple[str, ...]
    n_trees: int


class Forest:
    """All trees of all packed models, evaluated together on rows of the global feature vector."""

    def __init__(
        self, arrays: Mapping[str, np.ndarray], source: str = "<arrays>", shared: Sequence[str] = ()
    ):
        self.source = source
        meta = _check_arrays(arrays, source)
        self.meta = meta
        self.feature_names: tuple[str, ...] = tuple(meta["feature_names"])
        self.models: tuple[ModelInfo, ...] = tuple(
            ModelInfo(
                name=m["name"],
                objective=m["objective"],
                transform=m["transform"],
                sigmoid=float(m["sigmoid"]),
                feature_names=tuple(m["feature_names"]),
                n_trees=int(m["n_trees"]),
            )
            for m in meta["models"]
        )
        self._index = {m.name: i for i, m in enumerate(self.models)}
        self._sigmoid_cols = np.array(
            [i for i, m in enumerate(self.models) if m.transform == "sigmoid"], dtype=np.intp
        )
        self._sigmoid_scale = np.array([self.models[i].sigmoid for i in self._sigmoid_cols], dtype=np.float64)
        self._arrays = {k: np.asarray(arrays[k]) for k in ARRAY_DTYPES if k != "meta"}
        wanted = set(shared)
        unknown = sorted(wanted - set(self.feature_names))
        if unknown:
            raise ValueError(f"{source}: shared features {unknown[:3]} are not in the feature vector")
        self.shared: tuple[str, ...] = tuple(f for f in self.feature_names if f in wanted)
        self._compile()

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike) -> Forest:
        """Read a forest .npz written by offline.release.forest_export.save_forest (never unpickles)."""
        with np.load(path, allow_pickle=False) as z:
            missing = sorted(set(ARRAY_DTYPES) - set(z.files))
            if missing:
                raise ValueError(f"{os.fspath(path)}: not a packed forest, missing arrays {missing}")
            arrays = {k: z[k] for k in ARRAY_DTYPES}
        return cls(arrays, source=os.fspath(path))

    def select(self, names: Sequence[str]) -> Forest:
        """A forest holding only the named models (in the given order), e.g. one pipeline stage."""
        idx = [self.model_index(n) for n in names]
        if len(set(idx)) != len(idx):
            raise ValueError(f"{self.source}: duplicate model names in {list(names)}")
        a = self._arrays
        # Trees model by model in the requested order, each model's own tree order kept; nodes of
        # dropped models stay in the arrays but are unreachable, so _compile leaves them out.
        order = np.concatenate([np.flatnonzero(a["tree_model"] == i) for i in idx] or [np.zeros(0, np.intp)])
        new_model = np.full(len(self.models), -1, dtype=np.int32)
        new_model[idx] = np.arange(len(idx), dtype=np.int32)
        arrays = dict(a)
        arrays["tree_root"] = a["tree_root"][order]
        arrays["tree_model"] = new_model[a["tree_model"][order]]
        meta = dict(self.meta)
        meta["models"] = [self.meta["models"][i] for i in idx]
        arrays["meta"] = encode_meta(meta)
        return Forest(arrays, source=f"{self.source}[{len(idx)} models]", shared=self.shared)

    def sharing(self, names: Sequence[str]) -> Forest:
        """This forest for calls whose rows all hold the same values in the named features (one
        day's pooled rows: the market context). Nodes on those features are tested once per call,
        not once per row; predictions are unchanged as long as the rows really agree there."""
        return Forest({**self._arrays, "meta": encode_meta(self.meta)}, source=self.source, shared=names)

    def _compile(self) -> None:
        """Turn the stored arrays into one node table where leaves loop onto themselves."""
        a = self._arrays
        n_int = len(a["threshold"])

        def node_id(child: np.ndarray) -> np.ndarray:
            child = child.astype(np.intp)
            return np.where(child >= 0, child, n_int + ~child)

        n_nodes = n_int + len(a["leaf_value"])
        children = np.empty((n_nodes, 2), dtype=np.intp)
        children[:n_int, 0] = node_id(a["left_child"])
        children[:n_int, 1] = node_id(a["right_child"])
        children[n_int:] = np.arange(n_int, n_nodes)[:, None]
        # A node reads the variant of its feature that already encodes its missing rule, so one
        # comparison `value <= threshold` decides every node (see _variants).
        variant = np.where(
            a["missing_type"] == MISSING_NONE,
            0,
            np.where(a["missing_type"] == MISSING_NAN, 1, 3) + (~a["default_left"]).astype(np.intp),
        )
        feature = np.zeros(n_nodes, dtype=np.intp)
        feature[:n_int] = a["split_feature"]
        threshold = np.zeros(n_nodes, dtype=np.float64)
        threshold[:n_int] = a["threshold"]
        value = np.zeros(n_nodes, dtype=np.float64)
        value[n_int:] = a["leaf_value"]

        roots = node_id(a["tree_root"])
        depth = _tree_depths(roots, children, n_int)
        # Deepest trees first: at level d only the first (#trees deeper than d) entries still move.
        order = np.argsort(-depth, kind="stable")
        roots = roots[order]
        # Renumber nodes level by level so each level's gathers touch one compact block of memory,
        # internal nodes first so that only they need testing: those on per-row features, then those
        # on shared features (tested once per call).
        relabel = _level_order(roots, children, n_int)
        shared = set(self.shared)
        is_shared = np.array([f in shared for f in self.feature_names], dtype=np.bool_)
        inner = relabel[relabel < n_int]
        on_shared = is_shared[feature[inner]]
        relabel = np.concatenate([inner[~on_shared], inner[on_shared], relabel[relabel >= n_int]])
        n_tested, self._n_row_tested = len(inner), int((~on_shared).sum())
        # Only reachable nodes are kept (select() leaves other models' nodes behind).
        new_id = np.full(n_nodes, -1, dtype=np.intp)
        new_id[relabel] = np.arange(len(relabel))
        tested = relabel[:n_tested]
        n_feat = len(self.feature_names)
        self._tests = (
            _NodeTests.of(tested[: self._n_row_tested], feature, variant, threshold, n_feat),
            _NodeTests.of(tested[self._n_row_tested :], feature, variant, threshold, n_feat),
        )
        self._n_tested = n_tested
        # left child of node i at 2i, right at 2i + 1; int32 halves the memory each level gathers
        self._children = new_id[children[relabel]].ravel().astype(np.int32)
        self._value = value[relabel]
        self._roots = new_id[roots].astype(np.int32)
        self._active = [int((depth > d).sum()) for d in range(int(depth.max(initial=0)))]
        # Leaf values are summed in a (1 + most trees of a model, models) grid whose row r + 1 holds
        # each model's r-th tree (LightGBM's order) and row 0 zeros; a sum down the rows (_sum_down)
        # adds each model's trees one by one in that order, from 0.0, as LightGBM does.
        tree_model = a["tree_model"].astype(np.intp)
        n_models = len(self.models)
        by_model = np.argsort(tree_model, kind="stable")
        counts = np.bincount(tree_model, minlength=n_models)
        rank = np.empty(len(tree_model), dtype=np.intp)
        rank[by_model] = np.arange(len(tree_model)) - np.repeat(np.cumsum(counts) - counts, counts)
        self._grid_rows = 1 + int(counts.max(initial=0))
        self._slot = ((rank + 1) * n_models + tree_model)[order]
        self.max_depth = len(self._active)

    # ---- lookup -------------------------------------------------------------------------------

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    @property
    def n_trees(self) -> int:
        return len(self._roots)

    def model_index(self, name: str) -> int:
        """Column of the named model in predict's output."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(
                f"{self.source}: no model named {name!r} (have {len(self.models)} models)"
            ) from None

    def model(self, name: str) -> ModelInfo:
        return self.models[self.model_index(name)]

    # ---- evaluation ---------------------------------------------------------------------------

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (sum of leaf values per model), shape (n_rows, n_models)."""
        X = self._check_input(X)
        n_rows = X.shape[0]
        out = np.empty((n_rows, len(self.models)), dtype=np.float64)
        step = max(1, _CHUNK_ELEMENTS // max(1, self._n_tested, self._grid_rows * len(self.models)))
        for start in range(0, n_rows, step):
            out[start : start + step] = self._raw_chunk(X[start : start + step])
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Model outputs after each model's transform (identity or sigmoid), (n_rows, n_models)."""
        raw = self.predict_raw(X)
        if len(self._sigmoid_cols):
            cols = self._sigmoid_cols
            raw[:, cols] = 1.0 / (1.0 + np.exp(-self._sigmoid_scale * raw[:, cols]))
        return raw

    def _check_input(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"{self.source}: expected rows of {len(self.feature_names)} features, got shape {X.shape}"
            )
        return X

    def _raw_chunk(self, X: np.ndarray) -> np.ndarray:
        n_rows, n_tested, n_models = X.shape[0], self._n_tested, len(self.models)
        # Every internal node's test at once (a gather per block of nodes), then each level only looks
        # up the child taken. A leaf (numbered after the internal nodes) reads a meaningless test,
        # another row's or a clipped one: both its children are itself.
        row_tests, shared_tests = self._tests
        goes_right = np.empty((n_rows, n_tested), dtype=np.bool_)
        if n_rows == 1:  # np.take on a flat array is twice as fast as on a 2-d one
            row_tests.decide(X[0], goes_right[0, : self._n_row_tested])
        else:
            row_tests.decide_rows(X, goes_right[:, : self._n_row_tested])
        if len(shared_tests.threshold):  # the same in every row: decided on the first
            shared_tests.decide(X[0], goes_right[0, self._n_row_tested :])
            goes_right[1:, self._n_row_tested :] = goes_right[0, self._n_row_tested :]
        goes_right = goes_right.ravel()
        # Tree-major (trees, rows): at each level the first k trees, still moving, are one block.
        nodes = np.repeat(self._roots[:, None], n_rows, axis=1)
        offset = np.arange(n_rows, dtype=np.int32)[None, :] * n_tested
        for k in self._active:
            at = nodes[:k]
            go = np.take(goes_right, at if n_rows == 1 else at + offset, mode="clip")
            at *= 2  # left child's slot; the right one is next to it
            at += go
            nodes[:k] = np.take(self._children, at)
        grid = np.zeros((self._grid_rows, n_models * n_rows))
        if n_rows == 1:  # a flat scatter is twice as fast
            grid.reshape(-1)[self._slot] = np.take(self._value, nodes[:, 0])
        else:
            grid.reshape(-1, n_rows)[self._slot] = np.take(self._value, nodes)
        return _sum_down(grid).reshape(n_models, n_rows).T


def _sum_down(grid: np.ndarray) -> np.ndarray:
    """Each column's values added one row after another from 0.0: LightGBM's tree-by-tree sum,
    which numpy's pairwise `sum` would round differently."""
    if grid.shape[1] < _WIDE_SUM:
        return np.cumsum(grid, axis=0)[-1]
    out = grid[0].copy()
    for row in grid[1:]:
        out += row
    return out


@dataclass(frozen=True)
class _NodeTests:
    """A block of internal nodes' tests `value > threshold`, each on the variant of its feature
    that encodes its missing rule (see _variants). Only the (feature, variant) pairs some node reads
    are computed (a stage's few models read a small part of the global vector)."""

    pair_feature: np.ndarray
    pair_fill: np.ndarray
    pair_zero: np.ndarray
    column: np.ndarray  # each node's pair
    threshold: np.ndarray

    @classmethod
    def of(
        cls, nodes: np.ndarray, feature: np.ndarray, variant: np.ndarray, threshold: np.ndarray, n_feat: int
    ) -> _NodeTests:
        pairs, column = np.unique(variant[nodes] * n_feat + feature[nodes], return_inverse=True)
        return cls(
            (pairs % n_feat).astype(np.intp),
            _VARIANT_FILL[pairs // n_feat],
            _VARIANT_ZERO[pairs // n_feat],
            column.astype(np.intp).reshape(-1),
            threshold[nodes],
        )

    def decide(self, x: np.ndarray, out: np.ndarray) -> None:
        """out[i] = whether node i goes right on the one row x."""
        xa = _variants(np.take(x, self.pair_feature), self.pair_fill, self.pair_zero)
        np.greater(np.take(xa, self.column), self.threshold, out=out)

    def decide_rows(self, X: np.ndarray, out: np.ndarray) -> None:
        """out[r, i] = whether node i goes right on row r of X."""
        xa = _variants(np.take(X, self.pair_feature, axis=1), self.pair_fill, self.pair_zero)
        np.greater(np.take(xa, self.column, axis=1), self.threshold, out=out)


def _variants(X: np.ndarray, fill: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """Each column of X (rows, pairs) as its pair's variant, so a node needs only `value <= threshold`.

    LightGBM first turns |x| <= kZeroThreshold into 0. Then: missing_type None treats NaN as 0;
    NaN sends NaN to the default side; Zero sends NaN and 0 there. The default side is
    encoded as -inf (left) or +inf (right), which no finite threshold can change.
    """
    x = np.where(np.abs(X) <= ZERO_THRESHOLD, 0.0, X)
    nan = np.isnan(x)
    return np.where(np.where(zero, nan | (x == 0.0), nan), fill, x)


def _level_order(roots: np.ndarray, children: np.ndarray, n_internal: int) -> np.ndarray:
    """All node ids, breadth first: every tree's root, then every tree's depth-1 nodes, ..."""
    levels = []
    frontier = roots
    while len(frontier):
        levels.append(frontier)
        frontier = children[frontier[frontier < n_internal]].reshape(-1)
    return np.concatenate(levels) if levels else np.zeros(0, dtype=np.intp)


def _tree_depths(roots: np.ndarray, children: np.ndarray, n_internal: int) -> np.ndarray:
    """Depth (number of splits on the longest root-to-leaf path) of every tree."""
    depth = np.zeros(len(roots), dtype=np.intp)
    frontier = roots
    owner = np.arange(len(roots))
    level = 0
    while True:
        inner = frontier < n_internal
        if not inner.any():
            return depth
        frontier, owner = frontier[inner], owner[inner]
        level += 1
        if level > n_internal:
            raise ValueError("invalid packed forest: child links form a cycle")
        depth[owner] = level
        frontier = children[frontier].reshape(-1)
        owner = np.repeat(owner, 2)


def _check_arrays(arrays: Mapping[str, np.ndarray], source: str) -> dict:
    """Validate dtypes, lengths and index ranges; return the decoded metadata."""

    def bad(msg: str) -> ValueError:
        return ValueError(f"{source}: invalid packed forest: {msg}")

    for key, dtype in ARRAY_DTYPES.items():
        if key not in arrays:
            raise bad(f"missing array {key!r}")
        arr = np.asarray(arrays[key])
        if arr.dtype != np.dtype(dtype):
            raise bad(f"array {key!r} has dtype {arr.dtype}, expected {np.dtype(dtype)}")
    meta = decode_meta(np.asarray(arrays["meta"]))
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise bad(
            f"format {meta.get('format')!r} version {meta.get('version')!r}, expected {FORMAT} v{FORMAT_VERSION}"
        )
    n_int = len(arrays["threshold"])
    n_leaf = len(arrays["leaf_value"])
    for key in NODE_ARRAYS:
        if np.asarray(arrays[key]).shape != (n_int,):
            raise bad(f"array {key!r} must have shape ({n_int},)")
    n_trees = len(arrays["tree_root"])
    if np.asarray(arrays["tree_model"]).shape != (n_trees,):
        raise bad("tree_model and tree_root differ in length")
    n_feat, n_models = len(meta["feature_names"]), len(meta["models"])
    if n_int and not (0 <= arrays["split_feature"].min() and arrays["split_feature"].max() < n_feat):
        raise bad("split_feature outside the global feature vector")
    for key in ("left_child", "right_child", "tree_root"):
        c = np.asarray(arrays[key])
        if len(c) and (c.max() >= n_int or c.min() < -n_leaf):
            raise bad(f"{key} points outside the node arrays")
    if not np.isin(arrays["missing_type"], list(MISSING_CODES.values())).all():
        raise bad("unknown missing_type code")
    if n_trees and not (0 <= arrays["tree_model"].min() and arrays["tree_model"].max() < n_models):
        raise bad("tree_model outside the model list")
    counts = np.bincount(np.asarray(arrays["tree_model"], dtype=np.intp), minlength=n_models)
    for m, c in zip(meta["models"], counts, strict=True):
        if m["transform"] not in TRANSFORMS:
            raise bad(f"model {m['name']!r} has unknown transform {m['transform']!r}")
        if int(m["n_trees"]) != int(c):
            raise bad(f"model {m['name']!r} declares {m['n_trees']} trees, arrays hold {c}")
    return meta


@dataclass(frozen=True)
class Linear:
    """A linear model served as a dot product: standardize, clip to +-clip, NaN -> 0, then coef . z + intercept."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    clip: float

    def standardize(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            z = np.clip((np.asarray(X, dtype=np.float64) - self.mean) / self.scale, -self.clip, self.clip)
        return np.where(np.isnan(z), 0.0, z)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.standardize(X) @ self.coef + self.intercept

    def to_json(self) -> dict:
        return {
            "feature_names": list(self.feature_names),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "clip": float(self.clip),
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Linear:
        arrays = [np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        names = tuple(d["feature_names"])
        if any(a.shape != (len(names),) for a in arrays):
            raise ValueError("linear model: mean, scale and coef must each have one value per feature")
        return cls(names, *arrays, float(d["intercept"]), float(d["clip"]))
