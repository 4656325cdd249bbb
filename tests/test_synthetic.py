"""The synthetic market: real layout, exact labels, determinism, realism checks, planted effects, oracle."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kaggle_kernel.schema import LAGS, feature_columns, target_defs
from offline.data.competition import load_competition
from offline.data.synthetic import (
    ORACLE_FILE,
    ORACLE_LATENT_FILE,
    REGIMES_FILE,
    TRUTH_FILE,
    SynthConfig,
    filtered_oracle,
    generate,
    naive_predictions,
    write_synthetic,
)
from offline.data.synthetic.market import HORIZON, build_dynamics, forecast
from offline.data.synthetic.profiles import PROFILES, profile
from offline.data.synthetic.regime import RegimeParams
from offline.data.synthetic.universe import build_universe
from offline.data.verify import verify
from offline.errors import UserError
from offline.metric import score

ROOT = Path(__file__).resolve().parents[1]
SMALL = SynthConfig(days=300, test_days=40, seed=0)
CSV_FILES = ["train.csv", "train_labels.csv", "target_pairs.csv", "test.csv"] + [
    f"lagged_test_labels/test_labels_lag_{lag}.csv" for lag in LAGS
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "small"
    write_synthetic(out, SMALL)
    return out


@pytest.fixture(scope="module")
def comp(small: Path):
    return load_competition(small)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A longer set (about a second to generate) for the statistical checks."""
    out = tmp_path_factory.mktemp("synth") / "big"
    write_synthetic(out, SynthConfig(days=1200, test_days=134, seed=3))
    return out


def _digest(path: Path) -> dict[str, str]:
    return {f: hashlib.sha256((path / f).read_bytes()).hexdigest() for f in CSV_FILES}


def test_columns_and_target_pairs_follow_the_schema(small: Path, comp) -> None:
    assert pl.read_csv(small / "train.csv", n_rows=0).columns == ["date_id", *feature_columns()]
    assert pl.read_csv(small / "test.csv", n_rows=0).columns == ["date_id", *feature_columns(), "is_scored"]
    pairs = comp.target_pairs
    assert pairs["target"].to_list() == [t.name for t in target_defs()]
    assert pairs["lag"].to_list() == [t.lag for t in target_defs()]
    assert pairs["pair"].to_list() == [t.pair for t in target_defs()]
    assert comp.train["date_id"].to_list() == list(range(SMALL.days))
    assert comp.train_labels["date_id"].to_list() == list(range(SMALL.days))


def test_labels_reproduce_from_prices(comp) -> None:
    result = verify(comp)
    assert result["mismatched"] == 0
    assert result["compared"] > 100_000
    assert result["determined_but_null"] == 0
    # prices past the last train day make the last labels known, as on Kaggle
    last = comp.train_labels.filter(pl.col("date_id") == SMALL.days - 1).drop("date_id")
    assert sum(v is not None for v in last.row(0)) > 300


def test_test_file_repeats_train_tail_with_is_scored(small: Path, comp) -> None:
    test = comp.test
    ids = list(range(SMALL.days - SMALL.test_days, SMALL.days))
    assert test["date_id"].to_list() == ids
    train_tail = comp.train.filter(pl.col("date_id") >= ids[0])
    assert test.drop("is_scored").equals(train_tail)
    scored = test["is_scored"].to_list()
    assert scored == sorted(scored, reverse=True) and 0 < sum(scored) < len(scored)
    assert sum(scored) == round(SMALL.test_days * 90 / 134)
    text = (small / "test.csv").read_text().splitlines()
    assert text[1].endswith(",true") and text[-1].endswith(",false")


def test_lag_files_have_kaggles_layout(comp) -> None:
    names = comp.target_pairs["target"].to_list()
    lags = comp.target_pairs["lag"].to_list()
    for lag in LAGS:
        frame = comp.lagged[lag]
        expected = [n for n, lg in zip(names, lags, strict=True) if lg == lag]
        assert frame.columns == ["date_id", *expected, "label_date_id"]
        assert frame["date_id"].to_list() == comp.test["date_id"].to_list()
        assert (frame["label_date_id"] == frame["date_id"] - lag - 1).all()
        row = frame.row(5, named=True)
        label = comp.train_labels.filter(pl.col("date_id") == row["label_date_id"]).row(0, named=True)
        assert all(row[n] == label[n] for n in expected)


def test_same_seed_same_bytes_other_seed_differs(small: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_synthetic(again, SMALL)
    assert _digest(again) == _digest(small)
    for name in (ORACLE_FILE, ORACLE_LATENT_FILE, REGIMES_FILE):
        assert pl.read_parquet(again / name).equals(pl.read_parquet(small / name))
    other = tmp_path / "other"
    write_synthetic(other, SynthConfig(days=SMALL.days, test_days=SMALL.test_days, seed=1))
    assert _digest(other)["train.csv"] != _digest(small)["train.csv"]


def test_values_are_plausible(comp) -> None:
    train = comp.train
    values = train.drop("date_id")
    null_fraction = sum(values.null_count().row(0)) / (values.height * values.width)
    assert 0.02 < null_fraction < 0.10
    assert values.select(pl.min_horizontal(pl.all().min())).item() > 0
    fx = [c for c in values.columns if c.startswith("FX_")]
    assert values.select(fx).null_count().sum_horizontal().item() < 0.01 * len(fx) * values.height
    for inst in ("US_Stock_FCX_adj", "JPX_Gold_Mini_Futures"):
        lo, op, hi, cl = (
            ("low", "open", "high", "close") if inst.startswith("US") else ("Low", "Open", "High", "Close")
        )
        f = train.select([pl.col(f"{inst}_{x}").alias(x) for x in (lo, op, hi, cl)]).drop_nulls()
        assert f.height > 200
        assert (
            (f[lo] <= f[op]).all()
            and (f[op] <= f[hi]).all()
            and (f[lo] <= f[cl]).all()
            and (f[cl] <= f[hi]).all()
        )
    level = train["LME_CA_Close"].drop_nulls().tail(40).median()
    assert 4_000 < level < 20_000  # anchored near the real window's level (about 9,600)
    # exchanges have their own holidays: some LME-null days have US prices and the reverse
    lme_off = train["LME_CA_Close"].is_null()
    us_off = train["US_Stock_VT_adj_close"].is_null()
    assert (lme_off & ~us_off).any() and (us_off & ~lme_off).any()


def test_cross_asset_correlation_structure(big: Path) -> None:
    train = load_competition(big).train
    r = train.select(pl.exclude("date_id").log().diff())

    def corr(a: str, b: str) -> float:
        x = r.select(a, b).drop_nulls().to_numpy()
        return float(np.corrcoef(x.T)[0, 1])

    metals = corr("LME_CA_Close", "LME_ZS_Close")
    assert metals > 0.5
    assert metals > abs(corr("LME_CA_Close", "FX_EURJPY")) + 0.3
    assert corr("US_Stock_VT_adj_close", "US_Stock_ACWI_adj_close") > 0.85
    assert corr("US_Stock_XOM_adj_close", "US_Stock_CVX_adj_close") > 0.5
    # fat tails: excess kurtosis of the equity proxy's daily returns
    x = r["US_Stock_VT_adj_close"].drop_nulls().to_numpy()
    x = (x - x.mean()) / x.std()
    assert (x**4).mean() > 4.0


def test_planted_lead_lag_is_recoverable(big: Path) -> None:
    """FCX's return two days ahead regressed on LME copper's last five returns: the documented positive sign."""
    truth = json.loads((big / TRUTH_FILE).read_text())
    effect = next(e for e in truth["effects"] if e["effect"] == "lead_lag" and e["source"] == "LME_CA")
    assert "US_Stock_FCX" in effect["targets"] and effect["coef"] > 0
    prices = load_competition(big).train
    lp = prices.select(
        pl.col("LME_CA_Close").log().forward_fill().alias("ca"),
        pl.col("US_Stock_FCX_adj_close").log().forward_fill().alias("fcx"),
        pl.col("US_Stock_VT_adj_close").log().forward_fill().alias("vt"),
    )
    frame = lp.select(
        ((pl.col("ca") - pl.col("ca").shift(5)) / 5).alias("ca_mean5"),
        (pl.col("vt") - pl.col("vt").shift(5)).alias("vt_ret5"),
        (pl.col("fcx") - pl.col("fcx").shift(5)).alias("fcx_ret5"),
        (pl.col("fcx").shift(-2) - pl.col("fcx").shift(-1)).alias("fcx_next"),  # day t+2
    ).drop_nulls()
    x = frame.select("ca_mean5", "vt_ret5", "fcx_ret5").to_numpy()
    y = frame["fcx_next"].to_numpy()
    design = np.column_stack([np.ones(len(y)), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    se = np.sqrt(resid.var() / len(y) * np.linalg.inv(design.T @ design / len(y))[1, 1])
    assert beta[1] > 0 and beta[1] / se > 3


def test_oracle_beats_naive_on_scored_test_days(small: Path, comp) -> None:
    oracle = pl.read_parquet(small / ORACLE_FILE)
    assert oracle.columns == ["date_id", *[t.name for t in target_defs()]]
    assert oracle["date_id"].to_list() == list(range(SMALL.days))
    assert np.isfinite(oracle.drop("date_id").to_numpy()).all()
    days = comp.test.filter("is_scored")["date_id"]
    solution = comp.train_labels.filter(pl.col("date_id").is_in(days.implode()))
    oracle_score = score(solution, oracle.filter(pl.col("date_id").is_in(days.implode())))
    naive_score = score(solution, naive_predictions(comp.train_labels, days.to_list()))
    assert oracle_score > 0.3
    assert oracle_score > naive_score + 0.3
    truth = json.loads((small / TRUTH_FILE).read_text())["scores_on_scored_test_days"]
    assert set(truth) == {"oracle", "oracle_latent", "naive"}
    assert truth["oracle"] == pytest.approx(oracle_score) and truth["naive"] == pytest.approx(naive_score)


def test_latent_oracle_has_the_same_layout(small: Path) -> None:
    oracle = pl.read_parquet(small / ORACLE_FILE)
    latent = pl.read_parquet(small / ORACLE_LATENT_FILE)
    assert latent.schema == oracle.schema
    assert latent["date_id"].equals(oracle["date_id"])
    values, latent_values = oracle.drop("date_id").to_numpy(), latent.drop("date_id").to_numpy()
    assert np.isfinite(latent_values).all()
    # the same recursion, only the regime information differs: close, but not identical
    assert not np.array_equal(values, latent_values)
    assert np.corrcoef(values.ravel(), latent_values.ravel())[0, 1] > 0.9


def test_filtered_oracle_never_looks_past_day_t() -> None:
    """Changing every price and latent return after day d leaves the oracle and filter of days <= d unchanged."""
    market = generate(SMALL)
    universe, params, d = build_universe(), RegimeParams(), 150
    oracle, p_now = filtered_oracle(market.prices, market.z, universe, market.dynamics, params, SMALL.days)
    assert oracle.equals(market.oracle)
    rng = np.random.default_rng(11)
    features = market.prices.drop("date_id").to_numpy()
    later = slice(d + 1, None)
    features[later] *= np.exp(rng.normal(0, 0.05, features[later].shape))
    features[later][rng.random(features[later].shape) < 0.1] = np.nan  # new null patterns too
    prices = pl.concat(
        [
            market.prices.select("date_id"),
            pl.DataFrame(features, schema=market.prices.drop("date_id").schema),
        ],
        how="horizontal",
    ).fill_nan(None)
    z = market.z.copy()
    z[market.z.shape[0] - prices.height + d + 1 :] += rng.standard_normal((prices.height - d - 1, z.shape[1]))
    changed, p_changed = filtered_oracle(prices, z, universe, market.dynamics, params, SMALL.days)
    before, after = oracle.drop("date_id").to_numpy(), changed.drop("date_id").to_numpy()
    np.testing.assert_allclose(after[: d + 1], before[: d + 1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p_changed[: d + 1], p_now[: d + 1], rtol=1e-12, atol=1e-14)
    assert np.abs(after[d + 1 :] - before[d + 1 :]).mean() > 0.1 * np.abs(before).mean()


def test_oracle_strength_on_a_long_set(big: Path) -> None:
    """Daily Spearman of the oracle over all days: meaningful but not absurd."""
    from offline.metric import daily_rank_correlations

    comp = load_competition(big)
    names = [t.name for t in target_defs()]
    truth = comp.train_labels.select(names).to_numpy().astype(np.float64)[60:-5]
    pred = pl.read_parquet(big / ORACLE_FILE).select(names).to_numpy()[60:-5]
    corrs = daily_rank_correlations(pred, truth)
    assert 0.15 < corrs.mean() < 0.4
    assert 1.0 < corrs.mean() / corrs.std() < 4
    latent = pl.read_parquet(big / ORACLE_LATENT_FILE).select(names).to_numpy()[60:-5]
    latent_corrs = daily_rank_correlations(latent, truth)
    days = comp.train_labels["date_id"].to_list()[60:-5]
    naive = naive_predictions(comp.train_labels, days).select(names).to_numpy()
    naive_corrs = daily_rank_correlations(naive, truth)

    def sharpe(c: np.ndarray) -> float:
        return float(c.mean() / c.std())

    assert sharpe(corrs) < sharpe(latent_corrs) + 0.1  # observable information cannot do much better
    assert sharpe(corrs) > sharpe(naive_corrs) + 1.0


def test_filtered_regime_tracks_the_true_state(big: Path) -> None:
    from sklearn.metrics import roc_auc_score

    regimes = pl.read_parquet(big / REGIMES_FILE)
    stressed = regimes["stressed"].to_numpy()
    p = regimes["p_stressed_filtered"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    auc = roc_auc_score(stressed, p)
    mae = float(np.abs(p - stressed).mean())
    assert auc > 0.95 and mae < 0.1
    summary = json.loads((big / TRUTH_FILE).read_text())["regime"]["filter"]
    assert summary["roc_auc"] == pytest.approx(auc) and summary["mean_abs_error"] == pytest.approx(mae)


def test_regimes_and_truth_file(big: Path) -> None:
    regimes = pl.read_parquet(big / REGIMES_FILE)
    assert regimes.columns == ["date_id", "stressed", "pressure", "p_stressed_next", "p_stressed_filtered"]
    assert "stressed" not in pl.read_csv(big / "train.csv", n_rows=0).columns
    stressed = regimes["stressed"].to_numpy()
    pressure = regimes["pressure"].to_numpy()
    onsets = np.flatnonzero(stressed[1:] & ~stressed[:-1]) + 1
    assert 0.03 < stressed.mean() < 0.5 and onsets.size >= 2
    # every onset follows a build-up of pressure
    assert all(pressure[o - 1] == 1.0 and pressure[o - 5] > 0 for o in onsets if o >= 5)
    truth = json.loads((big / TRUTH_FILE).read_text())
    assert {e["effect"] for e in truth["effects"]} == {
        "lead_lag",
        "residual_reversal",
        "spread_reversal",
        "regime_momentum",
        "stress_drift",
        "persistent_drift",  # added with the realistic default (issue 10)
    }
    assert truth["profile"]["name"] == "default"
    assert all(e["oracle_needs"] for e in truth["effects"])
    assert truth["seed"] == 3 and truth["fat_tails"]["df"] == 5
    assert len(truth["regime"]["episodes"]) == onsets.size + int(stressed[0])


def test_bad_config_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="test-days"):
        write_synthetic(tmp_path / "x", SynthConfig(days=100, test_days=90))


def test_cli_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "offline", "data", "synth", str(out), "--days", "300", "--test-days", "40"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote synthetic competition directory" in proc.stdout
    comp = load_competition(out)
    assert comp.train.height == 300 and comp.test.height == 40 and sorted(comp.lagged) == list(LAGS)


# --- profiles, the exact forecast and the informed yardstick (issue 10) ---

PROFILE_EFFECTS = {
    "default": {
        "lead_lag",
        "residual_reversal",
        "spread_reversal",
        "regime_momentum",
        "stress_drift",
        "persistent_drift",
    },
    "drift_momentum": {"momentum", "persistent_drift"},
    "leadlag_flight": {"lead_lag", "stress_drift"},
}


def test_profiles_plant_their_documented_effects() -> None:
    assert set(PROFILES) == set(PROFILE_EFFECTS)
    prices = {}
    for name, expected in PROFILE_EFFECTS.items():
        market = generate(SynthConfig(days=120, test_days=20, seed=0, profile=name))
        effects = market.truth["effects"]
        assert {e["effect"] for e in effects} == expected, name
        assert market.truth["profile"]["name"] == name and market.truth["profile"]["about"]
        assert all(e["meaning"] and e["oracle_needs"] for e in effects)
        prices[name] = market.prices
    assert not prices["default"].equals(prices["drift_momentum"])
    delayed = next(
        e
        for e in generate(SynthConfig(days=120, test_days=20, profile="leadlag_flight")).truth["effects"]
        if e["effect"] == "lead_lag"
    )
    assert delayed["delay"] > 5 and delayed["window"] >= 5  # more than a week after the source moves
    with pytest.raises(UserError, match="unknown synthetic profile 'nope'.*drift_momentum"):
        SynthConfig(profile="nope").validate()


@pytest.mark.parametrize("name", sorted(PROFILE_EFFECTS))
def test_forecast_matches_the_recursion(name: str) -> None:
    """forecast() against an independent run of the recursion with zero shocks and a known regime."""
    universe = build_universe()
    params = RegimeParams()
    dyn = build_dynamics(
        universe, profile(name).effects, params.stationary_stressed(), np.random.default_rng(5)
    )
    rng = np.random.default_rng(7)
    z = rng.standard_normal((150, len(universe.names)))
    for state in (0.0, 1.0):
        p = np.full((z.shape[0], HORIZON + 1), state)
        fc = forecast(z, dyn, p)
        for t in (80, 149):
            path = z[: t + 1]
            for h in range(HORIZON):
                row = np.zeros((1, z.shape[1]))
                sums = [s[-1:] for s in dyn.window_sums(np.vstack([path, row]))]
                path = np.vstack([path, dyn.mean(sums, np.array([state]))])
                np.testing.assert_allclose(fc[t, h], path[-1], rtol=1e-10, atol=1e-12)


def test_oracle_is_unbiased_and_yardstick_file(big: Path) -> None:
    """Labels regressed on the oracle: slope near 1 (the oracle's scale is right); yardstick.json is
    written, reads back, and its scores are the metric's on the engine's blend days."""
    from offline.data.synthetic.yardstick import (
        YARDSTICK_FILE,
        Yardstick,
        engine_blend_mask,
        engine_oof_mask,
        write_yardstick,
    )

    comp = load_competition(big)
    names = [t.name for t in target_defs()]
    Y = comp.train_labels.select(names).cast(pl.Float64).to_numpy()
    oracle = pl.read_parquet(big / ORACLE_FILE)
    expected = oracle.select(names).to_numpy()
    mask = engine_oof_mask(Y.shape[0])
    ok = ~np.isnan(Y) & mask[:, None]
    assert 0.85 < (expected[ok] * Y[ok]).sum() / (expected[ok] ** 2).sum() < 1.15

    result = write_yardstick(big)
    assert Yardstick.from_json((big / YARDSTICK_FILE).read_text()) == result
    mask = engine_blend_mask(Y.shape[0])
    days = pl.Series(np.flatnonzero(mask))
    solution = comp.train_labels.filter(pl.col("date_id").is_in(days.implode()))
    assert result.oracle == pytest.approx(
        score(solution, oracle.filter(pl.col("date_id").is_in(days.implode())))
    )
    assert result.blend_days == mask.sum() < engine_oof_mask(Y.shape[0]).sum()  # folds 1.. of the OOF days
    assert 0.8 < result.oracle < 1.4  # realistic strength (the first default scored about 1.9)
    assert result.oracle > result.yardstick > result.mean_rank > 0.1 > result.naive
    assert "delivered_mean" in result.features and len(result.coefficients) == 4
    # the blend's factor-neutral step, nested: it may keep k = 0, so never far below the raw scores
    assert result.oracle_neutral > result.oracle - 0.2 and result.yardstick_neutral > result.yardstick - 0.2


def test_yardstick_refuses_a_directory_that_is_not_its_market(small: Path, tmp_path: Path) -> None:
    import shutil

    from offline.data.synthetic.yardstick import write_yardstick

    copy = tmp_path / "edited"
    shutil.copytree(small, copy)
    labels = pl.read_csv(copy / "train_labels.csv")
    labels.with_columns(pl.col("target_0") * 2).write_csv(copy / "train_labels.csv")
    with pytest.raises(UserError, match="differs from the market"):
        write_yardstick(copy)
    (copy / TRUTH_FILE).unlink()
    with pytest.raises(UserError, match="synthetic_truth.json not found"):
        write_yardstick(copy)


def test_cli_profile_and_yardstick(tmp_path: Path) -> None:
    out = tmp_path / "prof"
    run = [sys.executable, "-m", "offline", "data"]
    synth = [*run, "synth", str(out), "--days", "300", "--test-days", "40", "--profile", "leadlag_flight"]
    proc = subprocess.run(synth, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / TRUTH_FILE).read_text())["profile"]["name"] == "leadlag_flight"
    proc = subprocess.run(
        [*run, "yardstick", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "informed ridge yardstick" in proc.stdout and (out / "yardstick.json").exists()


def test_effects_of_your_own_replace_the_profiles(tmp_path: Path) -> None:
    """`data synth --effects`: the overrides reach the simulated market and its truth file, and the
    yardstick regenerates the same market from that file; bad overrides name the field."""
    from offline.data.synthetic.yardstick import write_yardstick

    own = {"lead_lag": 0, "reversal": -0.5, "momentum_window": 42, "stress_drift": 0.0}
    cfg = SynthConfig(days=300, test_days=40, seed=0, effects=own)
    planted = cfg.planted()
    assert (planted.lead_lag, planted.reversal, planted.momentum_window) == (0.0, -0.5, 42)
    assert planted.spread_reversal == profile("default").effects.spread_reversal  # not overridden: kept
    truth = write_synthetic(tmp_path / "own", cfg)
    assert truth["config"]["effects"] == own and truth["profile"]["effects"]["reversal"] == -0.5
    plain = generate(SynthConfig(days=300, test_days=40, seed=0))
    assert not pl.read_csv(tmp_path / "own" / "train_labels.csv").equals(plain.labels)
    assert {e["effect"] for e in truth["effects"]} == {
        "residual_reversal",
        "spread_reversal",
        "regime_momentum",
        "persistent_drift",
    }
    assert write_yardstick(tmp_path / "own").n_days == 300  # regenerated from the truth file: equal labels
    nothing = {
        k: 0 for k in ("lead_lag", "reversal", "spread_reversal", "momentum_calm", "momentum_stressed")
    }
    write_synthetic(
        tmp_path / "none",
        SynthConfig(days=300, test_days=40, effects={**nothing, "stress_drift": 0, "persistent_drift": 0}),
    )
    empty = write_yardstick(tmp_path / "none")  # a market without effects: nothing to hand the yardstick
    assert empty.features == [] and (empty.oracle, empty.yardstick, empty.yardstick_neutral) == (
        0.0,
        0.0,
        0.0,
    )
    for bad, message in (
        ({"reverse": 1.0}, "unknown effect 'reverse'; choose from lead_lag, "),
        ({"momentum_window": 3}, "momentum_window must be at least the 5-day"),
        ({"lead_lag_delay": 0}, "lead_lag_delay must be at least 1 day"),
        ({"lead_lag_window": 7.5}, "whole number of days"),
        ({"reversal": "strong"}, "reversal must be a finite number"),
        ({"persistent_drift": -0.1}, "persistent_drift is a standard deviation"),
    ):
        with pytest.raises(UserError, match=message):
            SynthConfig(effects=bad).validate()


def test_lead_lag_pairs_of_your_own(tmp_path: Path) -> None:
    """`--effects '{"lead_lag_pairs": {...}}'`: leaders the kit's key instruments do not include
    plant their own lead-lag (in the truth file and in the yardstick's regenerated market, whose
    lead-lag matrix moves only the followers named), and a misspelt asset or a bad shape names it."""
    from offline.data.synthetic.yardstick import write_yardstick

    own = {
        "lead_lag_pairs": {"US_Stock_FCX": ["US_Stock_SCCO", "US_Stock_TECK"], "CCY_AUD": ["US_Stock_NEM"]}
    }
    cfg = SynthConfig(days=300, test_days=40, seed=0, profile="leadlag_flight", effects=own)
    assert cfg.planted().lead_lag_pairs == (
        ("US_Stock_FCX", ("US_Stock_SCCO", "US_Stock_TECK")),
        ("CCY_AUD", ("US_Stock_NEM",)),
    )
    truth = write_synthetic(tmp_path / "own", cfg)
    planted = [(e["source"], e["targets"]) for e in truth["effects"] if e["effect"] == "lead_lag"]
    assert planted == [("US_Stock_FCX", ["US_Stock_SCCO", "US_Stock_TECK"]), ("CCY_AUD", ["US_Stock_NEM"])]
    market = generate(cfg)
    (term,) = [t for t in market.dynamics.terms if t.name == "lead_lag"]
    names = build_universe().names
    moved = {names[i] for i in np.flatnonzero(np.abs(term.matrix).sum(axis=1))}
    assert moved == {"US_Stock_SCCO", "US_Stock_TECK", "US_Stock_NEM"}
    assert write_yardstick(tmp_path / "own").n_days == 300
    for bad, message in (
        ({"lead_lag_pairs": {"US_Stock_FXC": ["US_Stock_SCCO"]}}, "unknown asset 'US_Stock_FXC'"),
        ({"lead_lag_pairs": {"LME_CA": "US_Stock_SCCO"}}, "must be a list of follower assets"),
        ({"lead_lag_pairs": {"LME_CA": ["LME_CA"]}}, "cannot follow itself"),
        ({"lead_lag_pairs": [["LME_CA", ["US_Stock_SCCO"]]]}, "must be an object like"),
    ):
        with pytest.raises(UserError, match=message):
            SynthConfig(effects=bad).validate()


def test_cli_effects_inline_or_from_a_file(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "offline", "data", "synth", "--days", "300", "--test-days", "40"]
    mix = {"reversal": -0.5, "momentum_calm": 0.0, "momentum_stressed": 0.0}
    (tmp_path / "mix.json").write_text(json.dumps(mix))
    for name, given in (("inline", json.dumps(mix)), ("file", str(tmp_path / "mix.json"))):
        proc = subprocess.run(
            [*run, str(tmp_path / name), "--effects", given, "--strength", "0.5"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        config = json.loads((tmp_path / name / TRUTH_FILE).read_text())["config"]
        assert config["effects"] == mix and config["strength"] == 0.5
    assert (tmp_path / "inline" / "train.csv").read_bytes() == (tmp_path / "file" / "train.csv").read_bytes()
    for given, message in (
        ("[1, 2]", "expected a JSON object"),
        ("{nope", "not valid JSON"),
        (str(tmp_path / "missing.json"), "neither a JSON object nor a file"),
    ):
        proc = subprocess.run(
            [*run, str(tmp_path / "bad"), "--effects", given],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_yardstick_scores_a_day_without_information_as_zero() -> None:
    """A forecast that is constant on some day (an effect whose window holds no returns yet) is
    scored with that day's correlation 0, the engine's rule, where the official metric raises; on
    other forecasts both rules agree."""
    from offline.data.synthetic.yardstick import oof_score
    from offline.metric import rank_correlations

    rng = np.random.default_rng(0)
    Y = rng.standard_normal((40, len(target_defs())))
    Y[3, :100] = np.nan
    pred = Y + 2.0 * rng.standard_normal(Y.shape)
    mask = np.ones(40, dtype=bool)
    mask[:2] = False
    days = np.flatnonzero(mask)
    names = [t.name for t in target_defs()]

    def frame(values: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"date_id": days}).hstack(pl.DataFrame(values[mask], schema=names))

    assert oof_score(pred, Y, mask) == pytest.approx(score(frame(Y), frame(pred)), abs=1e-12)
    pred[10] = 0.5
    with pytest.raises(ZeroDivisionError):
        score(frame(Y), frame(pred))
    corr = np.nan_to_num(rank_correlations(pred[mask], Y[mask]), nan=0.0)
    assert corr[10 - 2] == 0.0
    assert oof_score(pred, Y, mask) == pytest.approx(corr.mean() / corr.std(), abs=1e-12)
