"""Packed forest: exact parity with LightGBM, remapping, reproducible container."""

from __future__ import annotations

import zipfile

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kaggle_kernel.forest import ZERO_THRESHOLD, Forest
from offline.errors import UserError
from offline.release.forest_export import (
    export_forest,
    pack_forest,
    save_forest,
)

N_FEATURES = 10
NAMES = [f"feat_{i}" for i in range(N_FEATURES)]
# Global order differs from every model's own order, and one global feature is used by no model.
GLOBAL = ["unused"] + NAMES[::-1]
ATOL = 1e-10


def _train_data(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Features with NaNs and exact zeros; a target that depends on several of them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[rng.random(X.shape) < 0.15] = 0.0
    X[rng.random(X.shape) < 0.15] = np.nan
    Z = np.nan_to_num(X, nan=-1.5)
    y = Z[:, 0] + np.sin(2 * Z[:, 3]) + 0.5 * Z[:, 5] * Z[:, 8] - (Z[:, 6] == 0) + 0.1 * rng.normal(size=n)
    return X, y


def _train(
    params: dict, features: list[str], rounds: int, seed: int, binary: bool = False, offset: float = 0.0
):
    X, y = _train_data(seed)
    cols = [NAMES.index(f) for f in features]
    label = (y > np.median(y)).astype(float) if binary else y + offset
    base = {"num_leaves": 15, "min_data_in_leaf": 5, "learning_rate": 0.2, "verbose": -1, "seed": seed}
    base["num_threads"] = 1
    ds = lgb.Dataset(X[:, cols], label, feature_name=features, params={"verbose": -1})
    return lgb.train({**base, **params}, ds, rounds)


@pytest.fixture(scope="module")
def models() -> dict:
    sub_a = NAMES[:6]
    sub_b = [NAMES[i] for i in (8, 3, 5, 7, 4, 6)]  # not in global or sorted order
    sub_c = [NAMES[i] for i in (0, 2, 4, 6, 8, 9)]
    est = lgb.LGBMRegressor(n_estimators=20, num_leaves=7, min_child_samples=5, verbose=-1, random_state=3)
    X, y = _train_data(7)
    est.fit(X[:, :4], y, feature_name=NAMES[:4])
    return {
        "reg_nan": _train({"objective": "regression"}, sub_a, 40, seed=1, offset=100.0),
        "bin_zero": _train(
            {"objective": "binary", "sigmoid": 0.7, "zero_as_missing": True}, sub_b, 30, 2, True
        ),
        "reg_none": _train({"objective": "regression", "use_missing": False}, sub_c, 30, seed=3),
        "bin_nan": _train({"objective": "binary"}, NAMES, 25, seed=4, binary=True),
        "huber": _train({"objective": "huber", "num_leaves": 31}, NAMES, 20, seed=5),
        "stump": _train(
            {"objective": "regression", "min_data_in_leaf": 10_000}, sub_a, 10, seed=6, offset=-3.0
        ),
        "sk_est": est,
    }


@pytest.fixture(scope="module")
def forest(models) -> Forest:
    return pack_forest(models, GLOBAL).forest()


def _booster(model) -> lgb.Booster:
    return getattr(model, "booster_", model)


def _nodes(booster: lgb.Booster):
    stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            yield node
            stack += [node["left_child"], node["right_child"]]


EDGE_VALUES = [np.nan, 0.0, -0.0, 1e-36, -1e-36, ZERO_THRESHOLD, -ZERO_THRESHOLD, np.inf, -np.inf, 1e300]


def _thresholds(models: dict) -> np.ndarray:
    """Every split threshold and its float neighbours: where `<=` versus `<` would differ."""
    thr = np.array([n["threshold"] for m in models.values() for n in _nodes(_booster(m))])
    return np.unique(np.concatenate([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf)]))


def _rows(models: dict, n: int, seed: int) -> np.ndarray:
    """Random rows, a third of the cells NaN/zero/tiny/inf and a third exact thresholds."""
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1.5, size=(n, len(GLOBAL)))
    kind = rng.random(X.shape)
    edge, thr = kind < 1 / 3, kind > 2 / 3
    X[edge] = rng.choice(EDGE_VALUES, size=int(edge.sum()), p=[0.4, 0.2, 0.05] + [0.05] * 7)
    X[thr] = rng.choice(_thresholds(models), size=int(thr.sum()))
    return X


def _assert_parity(forest: Forest, models: dict, X: np.ndarray) -> None:
    pred, raw = forest.predict(X), forest.predict_raw(X)
    assert pred.shape == (len(X), len(models))
    for name, model in models.items():
        j = forest.model_index(name)
        cols = [GLOBAL.index(f) for f in forest.model(name).feature_names]
        booster = _booster(model)
        np.testing.assert_allclose(
            raw[:, j], booster.predict(X[:, cols], raw_score=True), rtol=0, atol=ATOL, err_msg=name
        )
        np.testing.assert_allclose(pred[:, j], booster.predict(X[:, cols]), rtol=0, atol=ATOL, err_msg=name)


def test_models_cover_every_missing_type(models):
    kinds = {name: {n["missing_type"] for n in _nodes(_booster(m))} for name, m in models.items()}
    assert "NaN" in kinds["reg_nan"] and "NaN" in kinds["bin_nan"]
    assert kinds["bin_zero"] == {"Zero"}
    assert kinds["reg_none"] == {"None"}
    assert {n["default_left"] for n in _nodes(models["bin_nan"])} == {True, False}
    assert kinds["stump"] == set()  # a single tree with a single leaf


def test_parity_on_thousands_of_rows(forest, models):
    _assert_parity(forest, models, _rows(models, 4000, seed=11))


def test_parity_one_row_at_a_time(forest, models):
    X = _rows(models, 30, seed=12)
    batch = forest.predict(X)
    for i in range(len(X)):
        np.testing.assert_array_equal(forest.predict(X[i]), batch[i : i + 1])


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_parity_hypothesis(forest, models, data):
    elements = st.one_of(
        st.sampled_from(EDGE_VALUES),
        st.sampled_from(list(_thresholds(models))),
        st.floats(-4, 4),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    X = data.draw(arrays(np.float64, st.tuples(st.integers(1, 64), st.just(len(GLOBAL))), elements=elements))
    _assert_parity(forest, models, X)


def test_init_score_is_folded_into_the_first_tree(models, forest):
    """boost_from_average lives in the dumped leaves: the stump predicts the label mean."""
    _, y = _train_data(6)
    stump = models["stump"].dump_model()["tree_info"]
    assert len(stump) == 1 and stump[0]["num_leaves"] == 1
    X = _rows(models, 5, seed=13)
    np.testing.assert_allclose(forest.predict(X)[:, forest.model_index("stump")], np.mean(y - 3.0), atol=1e-9)
    # The +100 offset of reg_nan (whose parity is checked above) sits in its first tree only.
    trees = models["reg_nan"].dump_model()["tree_info"]
    assert abs(trees[0]["tree_structure"]["internal_value"] - 100.0) < 5.0
    assert all(abs(t["tree_structure"]["internal_value"]) < 5.0 for t in trees[1:])


def test_transforms_and_lookup(forest, models):
    assert forest.model("bin_zero").transform == "sigmoid" and forest.model("bin_zero").sigmoid == 0.7
    assert forest.model("reg_nan").transform == "identity" and forest.model("huber").transform == "identity"
    assert forest.model_names == tuple(models)
    assert forest.feature_names == tuple(GLOBAL)
    assert forest.model("bin_zero").feature_names == tuple(NAMES[i] for i in (8, 3, 5, 7, 4, 6))
    with pytest.raises(KeyError, match="no model named 'nope'"):
        forest.model_index("nope")
    with pytest.raises(ValueError, match="expected rows of 11 features"):
        forest.predict(np.zeros((2, 5)))


def test_select_evaluates_a_subset(forest, models):
    X = _rows(models, 200, seed=14)
    full = forest.predict(X)
    part = forest.select(["bin_zero", "stump", "reg_nan"])
    assert part.model_names == ("bin_zero", "stump", "reg_nan")
    cols = [forest.model_index(n) for n in part.model_names]
    np.testing.assert_array_equal(part.predict(X), full[:, cols])


def test_default_feature_list_is_sorted_union(models):
    packed = pack_forest({"reg_none": models["reg_none"], "bin_zero": models["bin_zero"]})
    f = packed.forest()
    assert list(f.feature_names) == sorted(
        set(f.model("reg_none").feature_names) | set(f.model("bin_zero").feature_names)
    )


def test_feature_missing_from_global_list_is_refused(models):
    with pytest.raises(UserError, match=r"model 'bin_nan': features not in the global feature list: feat_0"):
        pack_forest({"bin_nan": models["bin_nan"]}, NAMES[1:])


def test_save_is_byte_identical_and_pickle_free(models, tmp_path):
    export_forest(tmp_path / "a.npz", models, GLOBAL)
    # Second build from freshly dumped text models, through a model file for one of them.
    text_file = tmp_path / "reg_nan.txt"
    models["reg_nan"].save_model(str(text_file))
    again = dict(models, reg_nan=text_file)
    save_forest(tmp_path / "b.npz", pack_forest(again, GLOBAL))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert all(z[k].dtype.kind != "O" for k in z.files)
    loaded = Forest.load(tmp_path / "a.npz")
    X = _rows(models, 300, seed=15)
    np.testing.assert_array_equal(loaded.predict(X), pack_forest(models, GLOBAL).forest().predict(X))


def test_load_rejects_a_foreign_npz(tmp_path):
    np.savez(tmp_path / "x.npz", threshold=np.zeros(3))
    with pytest.raises(ValueError, match="not a packed forest"):
        Forest.load(tmp_path / "x.npz")


def test_refuses_categorical_splits():
    rng = np.random.default_rng(31)
    X = np.column_stack([rng.integers(0, 6, 500), rng.normal(size=500)])
    y = np.where(np.isin(X[:, 0], [1, 4]), 3.0, -2.0) + 0.1 * rng.normal(size=500)
    params = {
        "objective": "regression",
        "verbose": -1,
        "min_data_per_group": 5,
        "cat_smooth": 1,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[0]), 5)
    with pytest.raises(UserError, match=r"model 'cat', tree 0: categorical splits are not supported"):
        pack_forest({"cat": booster})


def test_refuses_linear_trees():
    X, y = _train_data(32)
    params = {
        "objective": "regression",
        "linear_tree": True,
        "verbose": -1,
        "num_leaves": 4,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), 3)
    with pytest.raises(
        UserError, match=r"model 'lin', tree 0: linear trees \(linear_tree\) are not supported"
    ):
        pack_forest({"lin": booster})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objective": "multiclass", "num_class": 3}, "multiclass"),
        ({"objective": "lambdarank"}, "objective 'lambdarank' is not supported"),
        ({"objective": "poisson"}, "objective 'poisson' is not supported"),
    ],
)
def test_refuses_other_objectives(params, message):
    X, y = _train_data(33, n=200)
    label = np.clip(np.round(np.abs(y)), 0, 2)
    ds = lgb.Dataset(X, label, group=[100, 100] if params["objective"] == "lambdarank" else None)
    booster = lgb.train({**params, "verbose": -1, "num_leaves": 4, "num_threads": 1}, ds, 2)
    with pytest.raises(UserError, match=message):
        pack_forest({"m": booster})


def test_a_forest_of_stumps_and_one_row_per_call(forest, models):
    """Edge cases of the evaluator: only single-leaf trees (nothing to test), and a model subset
    whose trees touch few features, one row at a time and in a batch, bit for bit."""
    X = _rows(models, 12, seed=13)
    stump = forest.select(["stump"])
    assert stump.max_depth == 0
    np.testing.assert_array_equal(stump.predict(X), forest.predict(X)[:, [forest.model_index("stump")]])
    part = forest.select(["reg_none", "stump"])
    batch = part.predict(X)
    for i in range(len(X)):
        np.testing.assert_array_equal(part.predict(X[i]), batch[i : i + 1])
    np.testing.assert_array_equal(
        batch, forest.predict(X)[:, [forest.model_index(m) for m in part.model_names]]
    )


def _walk(arrays: dict, x: np.ndarray, n_models: int) -> np.ndarray:
    """LightGBM's NumericalDecision, one tree at a time, each model's leaves added in tree order from 0.0
    (its row reader has already made |x| <= kZeroThreshold a zero)."""
    x = np.where(np.abs(x) <= ZERO_THRESHOLD, 0.0, x)
    out = np.zeros(n_models)
    for root, model in zip(arrays["tree_root"], arrays["tree_model"], strict=True):
        node = int(root)
        while node >= 0:
            v, kind = x[arrays["split_feature"][node]], arrays["missing_type"][node]
            if np.isnan(v) and kind != 2:
                v = 0.0
            if (kind == 1 and abs(v) <= ZERO_THRESHOLD) or (kind == 2 and np.isnan(v)):
                left = bool(arrays["default_left"][node])
            else:
                left = v <= arrays["threshold"][node]
            node = int(arrays["left_child"][node] if left else arrays["right_child"][node])
        out[model] += arrays["leaf_value"][~node]
    return out


def test_sums_are_lightgbms_tree_by_tree_sums_bit_for_bit(forest, models):
    """The vectorised evaluation equals a plain walk of every tree whose leaves are added in
    LightGBM's order: the same bits, not only within ATOL."""
    X = _rows(models, 40, seed=14)
    raw = forest.predict_raw(X)
    for i, x in enumerate(X):
        np.testing.assert_array_equal(raw[i], _walk(forest._arrays, x, len(forest.models)))
        np.testing.assert_array_equal(forest.predict_raw(x)[0], raw[i])  # one row: a narrow sum


def test_shared_features_are_tested_once_per_call(forest, models):
    """A forest told that some features are equal in every row of a call (one day's pooled rows)
    tests their nodes on the first row only, and predicts the same bits."""
    X = _rows(models, 50, seed=15)
    shared = [GLOBAL[i] for i in (1, 4, 7)]
    cols = [GLOBAL.index(f) for f in shared]
    X[:, cols] = X[0, cols]
    sharing = forest.sharing(shared)
    assert 0 < sharing._n_row_tested < sharing._n_tested == forest._n_tested
    np.testing.assert_array_equal(sharing.predict_raw(X), forest.predict_raw(X))
    np.testing.assert_array_equal(sharing.predict(X[3]), forest.predict(X[3]))
    part = sharing.select(["reg_nan", "huber"])
    assert part.shared == tuple(f for f in GLOBAL if f in shared)
    np.testing.assert_array_equal(part.predict(X), forest.select(["reg_nan", "huber"]).predict(X))
    with pytest.raises(ValueError, match="not_a_feature"):
        forest.sharing(["not_a_feature"])
