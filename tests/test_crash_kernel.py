"""The kernel's crash-model inputs (kaggle_kernel.crash) against the offline ETF pipeline, day by day."""

from __future__ import annotations

import json
import subprocess
import sys

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from kaggle_kernel import crash
from kaggle_kernel.crash import CRASH_WINDOW, CrashModel, price_columns
from offline.data.competition import load_competition
from offline.etf import indicators, sources
from offline.etf.config import EtfConfig
from offline.etf.export import final_crash_model
from offline.etf.oof import competition_features, kit_design

CFG = EtfConfig(threads=1)


@pytest.fixture(scope="module")
def comp(tmp_path_factory):
    """1,500 synthetic days: the kit design's 100-row leaves need more history than the shared 600."""
    from offline.data.synthetic import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("synth1500") / "comp"
    write_synthetic(out, SynthConfig(days=1500, test_days=60, seed=3))
    return load_competition(out)


@pytest.fixture(scope="module")
def exported(comp) -> tuple[CrashModel, str]:
    model, text = final_crash_model(comp, CFG)
    return CrashModel.from_json(json.loads(json.dumps(model.to_json()))), text


def _offline_rows(prices: pl.DataFrame, model: CrashModel) -> tuple[np.ndarray, np.ndarray]:
    """(date_ids, feature rows) of the offline pipeline (competition_features)."""
    frame, _, _ = competition_features(prices, CFG)
    rows = frame.select(pl.col(model.features).cast(pl.Float64))
    return frame["date_id"].to_numpy(), rows.to_numpy()


def _window(prices: pl.DataFrame, day: int) -> pl.DataFrame:
    return prices.filter(pl.col("date_id") <= day).tail(CRASH_WINDOW)


def _assert_same(kernel: np.ndarray, offline: np.ndarray) -> None:
    assert kernel.dtype == np.float64 and kernel.shape == offline.shape
    np.testing.assert_array_equal(np.isnan(kernel), np.isnan(offline))
    np.testing.assert_allclose(kernel, offline, rtol=1e-9, atol=1e-12)  # NaN == NaN here


def _spread(days: np.ndarray, n: int = 10) -> np.ndarray:
    return days[np.linspace(0, len(days) - 1, n).round().astype(int)]


def test_inputs_equal_offline_feature_rows(comp, exported):
    model, _ = exported
    prices = comp.prices()
    days, rows = _offline_rows(prices, model)
    picked = _spread(days)
    for day in picked:
        _assert_same(model.inputs(_window(prices, int(day))), rows[np.flatnonzero(days == day)[0]])
    assert np.isfinite(rows[days == picked[-1]]).sum() > 15  # the comparison covers real values


def test_truncated_windows_equal_the_full_history():
    """A long history (S&P 500 with US holidays blanked, two bond ETFs): windows start mid-history,
    so EWM memory and the warm-up drop must not reach the last day."""
    sp = sources.load_sp500()
    rng = np.random.default_rng(7)
    bond = 80 * np.exp(np.cumsum(0.0001 + 0.002 * rng.standard_normal(sp.height)))
    holidays = rng.choice(sp.height, sp.height // 22, replace=False)
    market = [f"US_Stock_VT_adj_{f}" for f in sources.FIELDS]
    wide = sp.select(
        "date_id",
        *(pl.col(f).alias(c) for f, c in zip(sources.FIELDS, market, strict=True)),
        pl.Series("US_Stock_BND_adj_close", bond),
        pl.Series("US_Stock_IEF_adj_close", bond * 1.1 + rng.normal(0, 0.01, sp.height)),
        pl.lit(1.0).alias("LME_CA_Close"),  # a column the crash model does not read
    ).with_columns(
        pl.when(pl.col("date_id").is_in(holidays)).then(None).otherwise(pl.col(c)).alias(c) for c in market
    )
    frame, cols, info = competition_features(wide, CFG)
    assert info == {"market": "VT", "defensive": ["BND", "IEF"]} and "rv_z_252" in cols
    # every input the chain makes, not just the model's: the slowest windows and EWMs included
    every = [c for c, t in frame.schema.items() if t.is_numeric() and c not in ("date_id", "crash", "fwd_mdd",
             "alloc_momentum", "ma_gap", "label_ok")]  # fmt: skip
    model = CrashModel("VT", ["BND", "IEF"], every)
    days, rows = _offline_rows(wide, model)
    for day in _spread(days[days >= 2 * CRASH_WINDOW]):
        window = _window(wide, int(day))
        assert window.height == CRASH_WINDOW and window["date_id"][0] > 0
        expected = rows[np.flatnonzero(days == day)[0]]
        _assert_same(model.inputs(window), expected)
        # price_columns names everything the model reads
        _assert_same(model.inputs(window.select("date_id", *model.columns)), expected)


def test_booster_predicts_the_same_on_kernel_inputs(comp, exported):
    model, text = exported
    booster = lgb.Booster(model_str=text)
    assert booster.feature_name() == model.features
    prices = comp.prices()
    days, rows = _offline_rows(prices, model)
    picked = _spread(days)
    kernel = np.stack([model.inputs(_window(prices, int(d))) for d in picked])
    offline = rows[np.searchsorted(days, picked)]
    p = booster.predict(kernel)
    np.testing.assert_allclose(p, booster.predict(offline), rtol=0, atol=1e-12)
    assert np.all((p > 0) & (p < 1)) and np.ptp(p) > 0


def test_days_without_inputs_give_nan(comp, exported):
    """No market close on the last day, a warm-up day or an empty window: all NaN, caller falls back."""
    model, _ = exported
    prices = comp.prices()
    days, _ = _offline_rows(prices, model)
    holiday = prices.filter(
        (pl.col("date_id") > days[0]) & pl.col(f"US_Stock_{model.market}_adj_close").is_null()
    )["date_id"]
    assert holiday.len() > 0
    for window in (_window(prices, int(holiday[0])), _window(prices, int(days[0]) - 1), prices.head(0)):
        out = model.inputs(window)
        assert out.shape == (len(model.features),) and np.isnan(out).all()


def test_export_is_deterministic_and_json_round_trips(comp, exported):
    model, text = exported
    again, text_again = final_crash_model(comp, CFG)
    assert text_again == text and again.to_json() == model.to_json()
    assert model.market == "VT" and model.defensive == ["BND", "AGG", "IEF"]
    assert model.columns == price_columns(["VT"], ["BND", "AGG", "IEF"])
    assert model.features == list(kit_design()[0].features)
    assert (model.linear is None) == (kit_design()[0].family == "lgbm")  # a booster, or numpy weights
    with pytest.raises(ValueError, match="lacks keys"):
        CrashModel.from_json({"market": "VT"})


def test_offline_modules_reexport_the_kernel_definitions():
    assert indicators.base_indicators is crash.base_indicators
    assert indicators.interactions is crash.interactions
    assert indicators.defensive_indicators is crash.defensive_indicators
    assert indicators.feature_frame is crash.feature_frame
    assert sources.RAW_COLUMNS is crash.RAW_COLUMNS


def test_a_logistic_crash_model_is_served_with_numpy(comp):
    """A logistic family (should a design freeze one) is evaluated by CrashModel.probability alone."""
    from offline.etf.candidates import candidate, fit, matrix

    frame, _, info = competition_features(comp.prices(), CFG)
    rows = frame.filter(pl.col("crash").is_not_null())
    fitted = fit(candidate("logit_scale_free"), {"C": 0.01}, rows)
    linear = {"mean": fitted.mean, "scale": fitted.scale, "coef": fitted.coef, "intercept": fitted.intercept}
    model = CrashModel.from_json(
        json.loads(json.dumps(CrashModel("VT", info["defensive"], fitted.features, linear).to_json()))
    )
    prices = comp.prices()
    days = frame["date_id"].to_numpy()
    picked = _spread(days)
    served = np.concatenate([model.probability(model.inputs(_window(prices, int(d)))) for d in picked])
    offline = fitted.predict(matrix(frame.filter(pl.col("date_id").is_in(picked)), fitted.features))
    np.testing.assert_allclose(served, offline, rtol=1e-9, atol=1e-12)
    assert np.ptp(served) > 0
    with pytest.raises(ValueError, match="do not match"):
        CrashModel.from_json({**model.to_json(), "features": model.features[:-1]})


def test_kernel_module_imports_no_training_libraries():
    code = (
        "import sys, kaggle_kernel.crash\n"
        "bad = [m for m in ('pandas', 'sklearn', 'lightgbm', 'scipy', 'offline') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
