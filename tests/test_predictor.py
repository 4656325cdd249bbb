"""Predictor: exact against offline features + LightGBM, lean imports, and never failing on bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from kaggle_kernel import batches
from kaggle_kernel.blend import Blend, BlendSpec, blend, neutral_mix, tie_groups, tie_middle
from kaggle_kernel.features import HISTORY_DAYS, REGIME_PROB, REPLAY_DAYS, FeatureSpec, pooled_rows
from kaggle_kernel.predictor import Predictor
from kaggle_kernel.schema import target_defs
from kaggle_kernel.state import PRUNE_AFTER, History
from offline.data.competition import load_competition
from offline.release.package import build
from offline.train.engine import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
TARGETS = list(range(0, 24))


@pytest.fixture(scope="module")
def trained(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred")
    cfg = TrainConfig(
        n_folds=2, min_labels=100, targets=TARGETS, ablation=False, baselines=False, target_mode="raw"
    )
    train(synthetic_dir, out / "train", cfg, n_jobs=2)
    build(out / "train", out / "artifacts", data_dir=synthetic_dir)
    return out


def _day(comp, d):
    test = comp.test.filter(pl.col("date_id") == d).drop("is_scored")
    lags = [comp.lagged[L].filter(pl.col("date_id") == d) for L in (1, 2, 3, 4)]
    return test, lags


def _check_row(out: pl.DataFrame) -> np.ndarray:
    assert isinstance(out, pl.DataFrame) and out.shape == (1, 424)
    assert out.columns == [f"target_{i}" for i in range(424)]
    assert all(dt == pl.Float64 for dt in out.dtypes)
    v = out.to_numpy()[0]
    assert np.isfinite(v).all() and np.ptp(v) > 0
    return v


def test_predictions_equal_offline_lightgbm(trained, synthetic_dir):
    """The kernel's output for a day equals LightGBM on the offline feature matrix for that day."""
    comp = load_competition(synthetic_dir)
    p = Predictor.from_artifacts(trained / "artifacts")
    assert not p.problems and p.stage1 is not None and len(p.stage2_targets) == len(TARGETS)
    models = trained / "train" / "models"
    spec_json = json.loads((models / "blend.json").read_text())
    report = json.loads((trained / "train" / "report.json").read_text())
    assert spec_json["weights"] == [
        report["blend"]["weights"][m] for m in spec_json["members"]
    ]  # served = scored
    assert p.blend is not None
    # the served weights, and equal weights on both scales so that every member's serving path is checked
    offline = _offline(comp, trained)
    for kernel, weights in (
        (p, spec_json["weights"]),
        (_equal_weights(Predictor.from_artifacts(trained / "artifacts"), "rank"), [1 / 7] * 7),
        (_equal_weights(Predictor.from_artifacts(trained / "artifacts"), "z"), [1 / 7] * 7),
    ):
        _check_blend(kernel, comp, offline, spec_json["members"], weights, range(5))


def test_the_blends_ties_reach_the_output_and_no_group_is_constant(trained, synthetic_dir):
    """A served tied share survives the output step exactly (no tie-breaking ramp on a blend that
    ties on purpose), every (exchanges, lag) group keeps two or more distinct values, and a group
    that a degraded blend left constant is spread by the ramp, alone."""
    comp = load_competition(synthetic_dir)
    p = _equal_weights(Predictor.from_artifacts(trained / "artifacts"), "rank")  # ties 0.5 on its 24 targets
    assert p.blend.blend_spec.ties == 0.5
    for d in comp.test["date_id"].to_list()[:3]:
        test, lags = _day(comp, d)
        v = _check_row(p.predict(test, *lags))
        assert p.tied_by_blend and p.errors["predict"] == 0
        blended = v[TARGETS]
        assert (blended == np.median(blended)).sum() >= 2  # ties kept exactly, not broken by 1e-9
        for g in np.unique(p.groups):
            members = v[p.groups == g]
            assert len(members) < 2 or len(np.unique(members)) >= 2
    flat = np.linspace(0.0, 1.0, 424)
    one = p.groups == p.groups[TARGETS[0]]
    flat[one] = 0.25
    p.tied_by_blend = True
    out = p._output(flat).to_numpy()[0]
    assert len(np.unique(out[one])) == one.sum() and np.array_equal(out[~one], flat[~one])


@pytest.fixture(scope="module")
def long_phase(tmp_path_factory) -> Path:
    """Trained on the first 550 days of a 1,000-day market (`until`), so the kernel then forecasts
    450 days beyond its snapshot, more than twice the history it keeps."""
    from offline.data.synthetic import SynthConfig, write_synthetic

    root = tmp_path_factory.mktemp("long")
    write_synthetic(root / "comp", SynthConfig(days=1000, test_days=450, seed=5))
    cfg = TrainConfig(
        n_folds=2,
        min_labels=100,
        targets=TARGETS,
        ablation=False,
        baselines=False,
        target_mode="raw",
        until=549,
    )
    train(root / "comp", root / "train", cfg, n_jobs=2)
    build(root / "train", root / "artifacts", data_dir=root / "comp")
    return root


def test_a_long_forecasting_phase_stays_exact(long_phase):
    """Served day by day for 450 days, the kernel's rows on late days still equal the blend computed
    offline from the whole history: nothing drifts or is lost as its bounded history rolls on."""
    comp = load_competition(long_phase / "comp")
    assert comp.test["date_id"].min() == 550
    p = _equal_weights(Predictor.from_artifacts(long_phase / "artifacts"), "z")
    _check_blend(p, comp, _offline(comp, long_phase), p.blend.blend_spec.members, [1 / 7] * 7, (0, 250, 449))
    assert p.errors["predict"] == 0 and not p.problems


def _equal_weights(p: Predictor, scale: str = "z") -> Predictor:
    """Every member weighted alike, on `scale` (default z: the hostile days reach the z-scores),
    with ties and averaged counts."""
    b = p.blend
    assert b.blend_spec.members == ("prior", "pooled", "engine", "ridge", "local", "leaders", "recent")
    n = len(b.blend_spec.factors)
    assert n >= 1  # so at least two counts are averaged
    p.blend = Blend(
        b.spec,
        BlendSpec(  # half of each day tied and three factor counts averaged: every serving step checked
            b.blend_spec.members,
            (1 / 7,) * 7,
            b.blend_spec.targets,
            b.blend_spec.prior,
            b.blend_spec.factors,
            0.5,
            tuple(sorted({0, n // 2, n})),
            scale,
        ),
        b.pooled,
        b.ridge,
        b.per_target,
    )
    return p


def _offline(comp, trained) -> dict:
    """Features over train + test prices with labels as delivered (train_labels), and the models."""
    from kaggle_kernel.features import batch_features

    spec = FeatureSpec()
    days, X = batch_features(spec, comp.prices(), comp.train_labels)
    return {
        "spec": spec,
        "days": list(days),
        "X": X,
        "col": {n: i for i, n in enumerate(spec.all_features())},
        "regime": lgb.Booster(model_file=str(trained / "train" / "models" / "regime.txt")),
        "models": trained / "train" / "models",
    }


def _check_blend(p, comp, offline, members, weights, check):
    """The kernel serves the test days in order; its rows on the days at positions `check` equal the
    blend computed offline with LightGBM itself."""
    spec, days, X, col = offline["spec"], offline["days"], offline["X"], offline["col"]
    regime, models = offline["regime"], offline["models"]
    ridge = {
        k: np.asarray(v) if isinstance(v, list) else v
        for k, v in json.loads((models / "ridge.json").read_text()).items()
    }
    blend_json = json.loads((models / "blend.json").read_text())
    prior = np.array([np.nan if v is None else v for v in blend_json["prior"]])
    factors = np.array(blend_json["factors"], dtype=np.float64).reshape(-1, len(TARGETS)).T
    ties, counts, scale = (
        p.blend.blend_spec.ties,
        p.blend.blend_spec.factor_counts(),
        p.blend.blend_spec.scale,
    )
    pooled_model = lgb.Booster(model_file=str(models / "pooled.txt"))
    linear = {}
    for member in ("local", "leaders"):
        with np.load(models / f"{member}.npz") as z:
            linear[member] = {k: z[k] for k in z.files}
    local_cols = np.array(
        [[col[f.format(target=f"target_{i}")] for f in linear["local"]["layout"]] for i in range(424)]
    )

    def per_target(m: dict, x: np.ndarray) -> np.ndarray:
        z = np.nan_to_num(np.clip((x[local_cols] - m["mean"]) / m["scale"], -m["clip"], m["clip"]))
        return (z * m["coef"]).sum(axis=1) + m["intercept"]

    check = set(check)
    for k, d in enumerate(comp.test["date_id"].to_list()[: max(check) + 1]):
        v = _check_row(p.predict(*_day(comp, d)[0:1], *_day(comp, d)[1]))
        if k not in check:
            continue
        x = X[days.index(d)].copy()
        x[col[REGIME_PROB]] = regime.predict(x[None, [col[f] for f in regime.feature_name()]])[0]
        engine = x[[col[f"target_{i}_lab1"] for i in range(424)]].copy()
        for i in TARGETS:
            b = lgb.Booster(model_file=str(models / f"target_{i}.txt"))
            engine[i] = b.predict(x[None, [col[f] for f in b.feature_name()]])[0]
        rows = pooled_rows(spec, x[None, :], spec.pooled_index())
        pooled = pooled_model.predict(rows)
        srows = pooled_rows(spec, x[None, :], spec.pooled_index(structural=True))
        z = np.nan_to_num(np.clip((srows - ridge["mean"]) / ridge["scale"], -ridge["clip"], ridge["clip"]))
        preds = {
            "prior": prior,
            "pooled": pooled,
            "engine": engine,
            "ridge": z @ ridge["coef"] + ridge["intercept"],
            "local": per_target(linear["local"], x),
            "leaders": per_target(linear["leaders"], x),
            "recent": x[[col[f"target_{i}_lrank"] for i in range(424)]],
        }
        mixed = neutral_mix(blend([preds[m][TARGETS] for m in members], weights, scale), factors, counts)
        expected = tie_middle(mixed, ties, tie_groups([target_defs()[i] for i in TARGETS]))
        np.testing.assert_allclose(v[TARGETS], expected, rtol=0, atol=1e-9)
        # a target without a model serves its naive baseline (latest delivered label)
        assert v[100] == pytest.approx(x[col["target_100_lab1"]], abs=1e-6) or np.isnan(
            x[col["target_100_lab1"]]
        )


def test_kernel_imports_stay_lean(trained, synthetic_dir):
    """Load and predict in a fresh interpreter: no pandas, lightgbm, sklearn, optuna, scipy or offline."""
    code = (
        "import sys, polars as pl\n"
        "from kaggle_kernel.predictor import Predictor\n"
        f"p = Predictor.from_artifacts({str(trained / 'artifacts')!r})\n"
        f"t = pl.read_csv({str(synthetic_dir / 'test.csv')!r}, infer_schema_length=0).head(1)\n"
        "assert p.predict(t, None, None, None, None).shape == (1, 424)\n"
        "print('LOADED', sorted(m for m in ('pandas', 'lightgbm', 'sklearn', 'optuna', 'scipy', 'offline') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=trained)
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout


@pytest.fixture()
def warm(trained, synthetic_dir):
    """A predictor that has served the first 30 test days normally, every blend member weighted (so
    the malformed days reach each member's serving code, whatever weights training chose)."""
    comp = load_competition(synthetic_dir)
    p = _equal_weights(Predictor.from_artifacts(trained / "artifacts"))
    days = comp.test["date_id"].to_list()
    for d in days[:30]:
        test, lags = _day(comp, d)
        _check_row(p.predict(test, *lags))
    return p, comp, days


MALFORMED = {
    "all-null row": lambda t, lags: (
        t.select(pl.col("date_id"), pl.all().exclude("date_id").cast(pl.Float64) * None),
        lags,
    ),
    "missing columns": lambda t, lags: (t.select(t.columns[:50]), lags),
    "extra columns": lambda t, lags: (
        t.with_columns(pl.lit("x").alias("surprise"), pl.lit(1.0).alias("target_9999")),
        lags,
    ),
    "strings for numbers": lambda t, lags: (
        t.with_columns(pl.lit("n/a").alias("LME_CA_Close"), pl.col("FX_USDJPY").cast(pl.String)),
        lags,
    ),
    "empty lag batches": lambda t, lags: (t, [lb.head(0) for lb in lags]),
    "all-null lag targets": lambda t, lags: (
        t,
        [
            lb.select(
                "date_id",
                "label_date_id",
                pl.all().exclude("date_id", "label_date_id").cast(pl.Float64) * None,
            )
            for lb in lags
        ],
    ),
    "no lag batches": lambda t, lags: (t, [None, None, None, None]),
    "two rows for one day": lambda t, lags: (
        pl.concat([t, t.with_columns(pl.lit(None, dtype=pl.Float64).alias("LME_CA_Close"))]),
        lags,
    ),
    "no date_id": lambda t, lags: (t.drop("date_id"), lags),
    "empty test frame": lambda t, lags: (t.head(0), lags),
    "pandas frames": lambda t, lags: (t.to_pandas(), [lb.to_pandas() for lb in lags]),
    "not a frame": lambda t, lags: ("garbage", [17, None, "x", object()]),
    "infinite and huge prices": lambda t, lags: (
        t.with_columns(
            pl.lit(float("inf")).alias("LME_CA_Close"),
            pl.lit(-float("inf")).alias("FX_USDJPY"),
            pl.lit(1e308).alias("US_Stock_VT_adj_close"),
        ),
        lags,
    ),
    "zero and negative prices": lambda t, lags: (
        t.with_columns(
            pl.lit(0.0).alias("LME_CA_Close"), pl.lit(-5.0).alias("JPX_Gold_Standard_Futures_Close")
        ),
        lags,
    ),
    "date, duration and nested cells": lambda t, lags: (
        t.with_columns(
            pl.date(2020, 1, 1).alias("LME_CA_Close"),
            pl.lit([1.0, 2.0]).alias("FX_USDJPY"),
            pl.col("date_id").cast(pl.Duration),
        ),
        [lb.with_columns(pl.date(2020, 1, 1).alias(lb.columns[1])) for lb in lags],
    ),
    "integer and boolean columns": lambda t, lags: (
        t.with_columns(pl.col("LME_CA_Close").round().cast(pl.Int64), pl.lit(True).alias("FX_EURUSD")),
        lags,
    ),
    "infinite labels": lambda t, lags: (
        t,
        [
            lb.with_columns(pl.all().exclude("date_id", "label_date_id").cast(pl.Float64) * float("inf"))
            for lb in lags
        ],
    ),
    "a date_id far ahead": lambda t, lags: (t.with_columns(pl.col("date_id") + 10_000), lags),
    "a date_id at the end of int64": lambda t, lags: (
        t.with_columns(pl.lit(2**63 - 1).alias("date_id")),
        lags,
    ),
    "NaN, not null, in prices and labels": lambda t, lags: (
        t.with_columns(pl.lit(float("nan")).alias(c) for c in t.columns[1:80]),
        [lb.with_columns(pl.lit(float("nan")).alias(c) for c in lb.columns[2:20]) for lb in lags],
    ),
    "decimal, unsigned and float32 columns": lambda t, lags: (
        t.with_columns(
            pl.col("LME_CA_Close").round(2).cast(pl.Decimal(20, 2)),
            pl.col("FX_USDJPY").round().cast(pl.UInt64),
            pl.col("FX_EURUSD").cast(pl.Float32),
        ),
        lags,
    ),
    "a float or text date_id": lambda t, lags: (
        t.with_columns(pl.col("date_id").cast(pl.Float64)),
        [lb.with_columns(pl.col("date_id", "label_date_id").cast(pl.String)) for lb in lags],
    ),
    "the day sent 200 times": lambda t, lags: (pl.concat([t] * 200), [pl.concat([lb] * 5) for lb in lags]),
    "lag batches without label_date_id": lambda t, lags: (t, [lb.drop("label_date_id") for lb in lags]),
    "lag batches with null or future label days": lambda t, lags: (
        t,
        [
            lags[0].with_columns(pl.lit(None, dtype=pl.Int64).alias("label_date_id")),
            lags[1].with_columns(pl.col("label_date_id") + 50),
            *lags[2:],
        ],
    ),
    "lag batches in the wrong order, one missing": lambda t, lags: (t, [lags[2], lags[0], lags[1]]),
    "target columns renamed or out of range": lambda t, lags: (
        t,
        [
            lb.rename({c: c.upper() for c in lb.columns[2:10]}).with_columns(
                pl.lit(1.0).alias("target_424"), pl.lit(1.0).alias("target_007")
            )
            for lb in lags
        ],
    ),
    "arrow-backed pandas, a dict of columns": lambda t, lags: (
        t.to_pandas(use_pyarrow_extension_array=True),
        [
            lags[0].to_dict(as_series=False),
            *[lb.to_pandas(use_pyarrow_extension_array=True) for lb in lags[1:]],
        ],
    ),
    "an is_scored column": lambda t, lags: (t.with_columns(pl.lit(False).alias("is_scored")), lags),
    "128-bit integer prices in two rows": lambda t, lags: (
        pl.concat([t, t]).with_columns(pl.exclude("date_id").cast(pl.Float64).round().cast(pl.Int128)),
        [lb.with_columns(pl.col("^target_.*$").cast(pl.Int128)) for lb in lags],
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_batches_never_raise(warm, case):
    p, comp, days = warm
    test, lags = _day(comp, days[30])
    bad_test, bad_lags = MALFORMED[case](test, lags)
    _check_row(p.predict(bad_test, *bad_lags))
    assert p.errors["predict"] == 0  # each part coped; nothing reached the last line of defence
    # and the next normal day is served normally
    test, lags = _day(comp, days[31])
    _check_row(p.predict(test, *lags))


def test_hostile_days_in_random_combinations(warm):
    """Thirty days, each damaged by one to three of the malformed cases at once (seeded draws): every
    row is well formed, no tie group is constant, and no part's failure reaches the last line."""
    p, comp, days = warm
    rng = np.random.default_rng(11)
    names = sorted(MALFORMED)
    drawn = []
    for d in days[30:60]:
        test, lags = _day(comp, d)
        for name in rng.choice(names, size=int(rng.integers(1, 4)), replace=False):
            try:  # a case may not apply to a day another case already damaged (a date where it rounds)
                test, lags = MALFORMED[name](test, lags)
            except (pl.exceptions.PolarsError, AttributeError, TypeError):
                continue
            drawn.append(name)
        v = _check_row(p.predict(test, *lags))
        assert all(
            len(np.unique(v[p.groups == g])) > 1 for g in np.unique(p.groups) if (p.groups == g).sum() > 1
        )
    assert len(set(drawn)) >= len(names) // 2  # the draws reach most cases
    assert p.errors["predict"] == 0 and p.errors["output"] == 0


def test_a_long_outage_then_normal_days(warm):
    """Twenty days with every price missing and no labels, then normal days: every row is finite and
    not constant, and the normal days after the outage are served without an error."""
    p, comp, days = warm
    for d in days[30:50]:
        test, lags = _day(comp, d)
        _check_row(p.predict(MALFORMED["all-null row"](test, lags)[0], *[lb.head(0) for lb in lags]))
    for d in days[50:55]:
        _check_row(p.predict(*_day(comp, d)[0:1], *_day(comp, d)[1]))
    assert p.errors["predict"] == 0


def _prices_as(t: pl.DataFrame, value) -> pl.DataFrame:
    """Every price cell set to `value` (volumes kept: a zero volume is a volume)."""
    prices = [c for c in t.columns if c != "date_id" and "volume" not in c.lower()]
    return t.with_columns(pl.col(prices).cast(pl.Float64) * 0 + value)


def _labels_as(lags: list[pl.DataFrame], value) -> list[pl.DataFrame]:
    return [lb.with_columns(pl.col("^target_.*$").cast(pl.Float64) * 0 + value) for lb in lags]


# A corrupt day, and the day it must be worth no more and no less than: the same labels with every
# price missing, or the same prices with every label missing. These test days replay days the
# history already holds (as Kaggle's public phase does), so a copy of the day sent far ahead must
# leave the history as the clean day would.
POISON = {
    "a date_id far ahead": (
        lambda t, lags: (t.with_columns(pl.col("date_id") + 10_000), lags),
        lambda t, lags: (t, lags),
    ),
    "zero prices": (lambda t, lags: (_prices_as(t, 0.0), lags), lambda t, lags: (_prices_as(t, None), lags)),
    "negative prices": (
        lambda t, lags: (_prices_as(t, -3.0), lags),
        lambda t, lags: (_prices_as(t, None), lags),
    ),
    "infinite prices": (
        lambda t, lags: (_prices_as(t, float("inf")), lags),
        lambda t, lags: (_prices_as(t, None), lags),
    ),
    "huge labels": (lambda t, lags: (t, _labels_as(lags, 1e6)), lambda t, lags: (t, _labels_as(lags, None))),
    "infinite labels": (
        lambda t, lags: (t, _labels_as(lags, float("-inf"))),
        lambda t, lags: (t, _labels_as(lags, None)),
    ),
}


@pytest.mark.parametrize("case", list(POISON))
def test_a_corrupt_day_does_not_poison_the_days_after_it(warm, trained, case):
    """After a corrupt day, the next days are served as if that day's prices (or labels) had simply
    been missing: a corrupt cell is a missing cell, and a far-ahead date_id keeps the history."""
    p, comp, days = warm
    q = _equal_weights(Predictor.from_artifacts(trained / "artifacts"))  # as warm
    for d in days[:30]:
        q.predict(*_day(comp, d)[0:1], *_day(comp, d)[1])
    corrupt, equivalent = POISON[case]
    test, lags = corrupt(*_day(comp, days[30]))
    _check_row(p.predict(test, *lags))
    test, lags = equivalent(*_day(comp, days[30]))
    q.predict(test, *lags)
    for d in days[31:45]:
        test, lags = _day(comp, d)
        np.testing.assert_allclose(
            _check_row(p.predict(test, *lags)), _check_row(q.predict(test, *lags)), rtol=0, atol=1e-9
        )
    assert p.errors["predict"] == 0


def _clean_twin(trained, comp, days, n: int = 30) -> Predictor:
    """A predictor that has served the first n test days cleanly, as `warm` does."""
    q = _equal_weights(Predictor.from_artifacts(trained / "artifacts"))
    for d in days[:n]:
        q.predict(*_day(comp, d)[0:1], *_day(comp, d)[1])
    return q


def _same_days_after(p: Predictor, q: Predictor, comp, days) -> None:
    for d in days:
        test, lags = _day(comp, d)
        np.testing.assert_allclose(
            _check_row(p.predict(test, *lags)), _check_row(q.predict(test, *lags)), rtol=0, atol=1e-9
        )


def test_a_run_of_date_ids_far_ahead_keeps_the_history(warm, trained):
    """Three days in a row sent 10,000 days ahead leave the days after them as the clean days would
    (the test days replay days the history holds)."""
    p, comp, days = warm
    q = _clean_twin(trained, comp, days)
    for d in days[30:33]:
        test, lags = _day(comp, d)
        _check_row(p.predict(test.with_columns(pl.col("date_id") + 10_000), *lags))
        q.predict(test, *lags)
    _same_days_after(p, q, comp, days[33:45])
    assert p.errors["predict"] == 0


def test_a_day_sent_again_without_prices_keeps_the_prices_held(warm, trained):
    """An earlier day sent again with every price missing (or a duplicate row of nulls) fills
    nothing and erases nothing: the days after it are served as if it had not come."""
    p, comp, days = warm
    q = _clean_twin(trained, comp, days)
    test, lags = _day(comp, days[25])
    _check_row(p.predict(MALFORMED["all-null row"](test, lags)[0], *[lb.head(0) for lb in lags]))
    _same_days_after(p, q, comp, days[30:40])


def test_rows_dated_far_in_the_future_do_not_pile_up(warm):
    """A lag batch of 3,000 label rows on distinct future days, and days alternating with far-ahead
    date_ids, leave the history bounded by the days a served day can need."""
    p, comp, days = warm
    test, lags = _day(comp, days[30])
    future = pl.concat([lags[0]] * 3000).with_columns(pl.col("label_date_id") + pl.int_range(1, 3001) * 7)
    _check_row(p.predict(test, future, *lags[1:]))
    for i, d in enumerate(days[31:60]):
        test, lags = _day(comp, d)
        _check_row(
            p.predict(test.with_columns(pl.col("date_id") + 100_000 * (i + 1)) if i % 2 else test, *lags)
        )
    bound = HISTORY_DAYS + REPLAY_DAYS + 2 * PRUNE_AFTER  # days around the normal days, and the far rows
    assert len(p.history.labels) <= bound and len(p.history.prices) <= bound
    assert p.errors["predict"] == 0


def test_a_polars_panic_in_any_part_degrades(warm, monkeypatch):
    """A polars panic derives from BaseException, not Exception: one in the features, or in reading
    the batch itself, is still caught, logged and counted, and the row is served."""
    from polars.exceptions import PanicException

    p, comp, days = warm

    def panic(*args):
        raise PanicException("not implemented for dtype Int128")

    test, lags = _day(comp, days[30])
    monkeypatch.setattr(p, "_features", panic)
    _check_row(p.predict(test, *lags))
    assert p.errors["features"] == 1
    monkeypatch.setattr(batches, "as_polars", panic)
    _check_row(p.predict(test, *lags))
    assert p.errors["predict"] == 1


def test_a_batch_glued_from_many_rows_is_read_in_one_chunk(warm):
    """Polars 1.x keeps the pieces of a concat as chunks (reading 3,000 of them took seconds): the
    kernel's tests also run under Kaggle's polars, where this glued frame has 50."""
    p, comp, days = warm
    test, _ = _day(comp, days[30])
    glued = pl.concat([test] * 50, rechunk=False)
    assert batches.as_polars(glued).n_chunks("all") == [1] * test.width


READABLE = {
    "lazy frames": lambda t, lags: (t.lazy(), [lb.lazy() for lb in lags]),
    "numbers as categorical text, the day sent twice": lambda t, lags: (
        pl.concat([t, t]).with_columns(
            pl.col("LME_CA_Close", "FX_USDJPY").cast(pl.String).cast(pl.Categorical)
        ),
        [lb.with_columns(pl.col(lb.columns[1]).cast(pl.String).cast(pl.Categorical)) for lb in lags],
    ),
    "a categorical date_id": lambda t, lags: (
        t.with_columns(pl.col("date_id").cast(pl.String).cast(pl.Categorical)),
        lags,
    ),
    # numpy has no 128-bit integers: polars 1.x panics converting them (a BaseException)
    "128-bit integer date ids": lambda t, lags: (
        t.with_columns(pl.col("date_id").cast(pl.Int128)),
        [
            lb.with_columns(pl.col("date_id").cast(pl.UInt128), pl.col("label_date_id").cast(pl.Int128))
            for lb in lags
        ],
    ),
}


@pytest.mark.parametrize("case", list(READABLE))
def test_unusual_but_readable_frames_are_read(warm, trained, case):
    """Frames Kaggle does not send but a careless caller might (lazy, numbers held as categorical
    text) are read as the numbers they hold: the same row as the clean day, no fallback."""
    p, comp, days = warm
    q = _equal_weights(Predictor.from_artifacts(trained / "artifacts"))  # as warm
    for d in days[:30]:
        q.predict(*_day(comp, d)[0:1], *_day(comp, d)[1])
    test, lags = _day(comp, days[30])
    odd_test, odd_lags = READABLE[case](test, lags)
    np.testing.assert_array_equal(
        _check_row(p.predict(odd_test, *odd_lags)), _check_row(q.predict(test, *lags))
    )
    assert sum(p.errors.values()) == 0


def test_column_order_does_not_matter(warm, trained):
    p, comp, days = warm
    q = _equal_weights(Predictor.from_artifacts(trained / "artifacts"))  # as warm
    for d in days[:30]:
        q.predict(*_day(comp, d)[0:1], *_day(comp, d)[1])
    test, lags = _day(comp, days[30])
    shuffled = test.select(list(reversed(test.columns)))
    a = p.predict(test, *lags).to_numpy()
    b = q.predict(shuffled, *[lb.select(list(reversed(lb.columns))) for lb in lags]).to_numpy()
    np.testing.assert_array_equal(a, b)


def test_repeated_day_is_idempotent_and_gaps_are_tolerated(warm):
    p, comp, days = warm
    test, lags = _day(comp, days[30])
    first = p.predict(test, *lags).to_numpy()
    again = p.predict(test, *lags).to_numpy()
    np.testing.assert_array_equal(first, again)
    # out of order: an earlier day arrives again, then a gap of 10 days
    _check_row(p.predict(*_day(comp, days[5])[0:1], *_day(comp, days[5])[1]))
    test, lags = _day(comp, days[41])
    _check_row(p.predict(test, *lags))
    assert p.errors["predict"] == 0


def test_duplicate_and_out_of_order_date_ids_in_one_batch(warm, trained):
    """A batch holding days 30, 29, 30 is served as day 30, exactly as a clean batch of day 30."""
    p, comp, days = warm
    q = _equal_weights(Predictor.from_artifacts(trained / "artifacts"))  # as warm
    for d in days[:30]:
        q.predict(*_day(comp, d)[0:1], *_day(comp, d)[1])
    t1, lags = _day(comp, days[30])
    t0, _ = _day(comp, days[29])
    messy = _check_row(p.predict(pl.concat([t1, t0, t1]), *lags))
    clean = _check_row(q.predict(t1, *lags))
    np.testing.assert_array_equal(messy, clean)


def test_corrupt_or_missing_artifacts_degrade(trained, tmp_path, synthetic_dir, capsys):
    comp = load_competition(synthetic_dir)
    art = tmp_path / "art"
    shutil.copytree(trained / "artifacts", art)
    (art / "forest.npz").write_bytes(b"not a forest")
    p = Predictor.from_artifacts(art)
    assert "forest.npz" in p.problems and p.stage2 is None
    err = capsys.readouterr().err
    assert "forest.npz" in err and "SHA-256" in err
    v = _check_row(
        p.predict(*_day(comp, comp.test["date_id"][0])[0:1], *_day(comp, comp.test["date_id"][0])[1])
    )
    assert np.isfinite(v).all()
    (art / "manifest.json").unlink()
    p = Predictor.from_artifacts(art)
    assert "manifest.json" in p.problems
    _check_row(p.predict(*_day(comp, comp.test["date_id"][1])[0:1], *_day(comp, comp.test["date_id"][1])[1]))


def test_package_is_byte_identical_and_private(trained, tmp_path, synthetic_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    build(trained / "train", a, data_dir=synthetic_dir)
    build(trained / "train", b, data_dir=synthetic_dir)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    meta = json.loads((a / "dataset-metadata.json").read_text())
    assert meta["isPrivate"] is True and meta["id"].endswith("/mitsui-kit-artifacts")
    manifest = json.loads((a / "manifest.json").read_text())
    assert set(manifest) >= {
        "files",
        "kit_version",
        "git_revision",
        "libraries",
        "models",
        "training",
        "snapshot",
    }
    assert "kaggle_kernel/predictor.py" in manifest["files"] and "forest.npz" in manifest["files"]
    assert not [f for f in files if f.suffix in (".pkl", ".pickle", ".joblib")]


def test_history_windows_equal_a_plain_dictionary_of_days():
    """History's ring-backed windows against a dict of days kept by the documented rules (a day's
    prices and labels fill cell by cell, a missing cell erasing nothing; prune forgets the days no
    one of the last PRUNE_AFTER served days can read: more than keep_days before it or ahead_days
    after it), through days out of order, repeated, far apart (two days in one ring slot), far
    ahead, and pruned."""
    rng = np.random.default_rng(4)
    keep, width, n_t, ahead = 12, 3, 5, 4
    h = History([f"c{i}" for i in range(width)], n_t, keep_days=keep, ahead_days=ahead)
    prices: dict[int, np.ndarray] = {}
    labels: dict[int, np.ndarray] = {}

    def window(store, end, n, w):
        return np.array([store.get(d, np.full(w, np.nan)) for d in range(end - n + 1, end + 1)]).reshape(n, w)

    def fill(store, day, cells, values, w):
        row = store.setdefault(day, np.full(w, np.nan))
        row[cells[~np.isnan(values)]] = values[~np.isnan(values)]

    served, recent, n_far = 40, [], 0
    for step in range(900):
        far = rng.random() < 0.02  # now and then a day far ahead, as a corrupt date_id
        n_far += far
        day = int(served + (rng.integers(ahead, 60) if far else rng.integers(-3 * keep, 3)))
        if rng.random() < 0.5:
            row = np.where(rng.random(width) < 0.3, np.nan, rng.normal(size=width))
            h.add_prices(day, row)
            fill(prices, day, np.arange(width), row, width)
        else:
            targets = rng.choice(n_t, size=3, replace=False)
            values = np.where(rng.random(3) < 0.3, np.nan, rng.normal(size=3))
            h.add_labels(day, targets, values)
            fill(labels, day, targets, values, n_t)
        if step % 7 == 0:
            served += int(rng.integers(0, 3))
            h.prune(served)
            recent.append(served)
            for store in (prices, labels):
                for d in [
                    d for d in store if not any(s - keep <= d <= s + ahead for s in recent[-PRUNE_AFTER:])
                ]:
                    del store[d]
        end, n = served - int(rng.integers(0, 3)), int(rng.integers(0, keep + 1))
        for (days, got), store, w in (
            (h.price_window(end, n), prices, width),
            (h.label_window(end, n), labels, n_t),
        ):
            np.testing.assert_array_equal(days, np.arange(end - n + 1, end + 1))
            np.testing.assert_array_equal(got, window(store, end, n, w))
    assert set(h.prices) == set(prices) and set(h.labels) == set(labels)
    assert h.last_day == max(prices)
    assert n_far >= 10  # the far days were exercised


def test_blend_spec_reads_back_and_names_bad_counts():
    """A spec round-trips through JSON; one from before the averaged counts is neutral to all its
    factors, one from before the z-scores is on ranks; counts that do not increase up to the stored
    factors, and an unknown scale, are errors naming them."""
    good = {
        "members": ["engine", "prior"],
        "weights": [0.7, 0.3],
        "targets": [0, 1, 2],
        "prior": [0.1, None, -0.2],
        "factors": [[0.5, -0.5, 0.0], [0.4, 0.4, -0.8]],
        "ties": 0.25,
        "counts": [0, 2],
        "scale": "z",
    }
    spec = BlendSpec.from_json(good)
    assert BlendSpec.from_json(spec.to_json()) == spec and spec.factor_counts() == (0, 2)
    old = {k: v for k, v in good.items() if k not in ("counts", "scale")}
    assert BlendSpec.from_json(old).factor_counts() == (2,) and BlendSpec.from_json(old).scale == "rank"
    with pytest.raises(ValueError, match="'zscore'"):
        BlendSpec.from_json({**good, "scale": "zscore"})
    for bad in ([2, 0], [0, 1], [1, 1, 2], [-1, 2], [0, 3]):
        with pytest.raises(ValueError, match=re.escape(str(bad))):
            BlendSpec.from_json({**good, "counts": bad})
