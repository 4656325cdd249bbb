"""ETF crash/momentum pipeline: end to end on small slices, no test-block leakage, metric and backtest arithmetic."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import fbeta_score, precision_score, recall_score

from kaggle_kernel.schema import feature_columns, target_defs
from offline.cli import main
from offline.errors import UserError
from offline.etf import indicators as ind
from offline.etf import model as mdl
from offline.etf import strategy
from offline.etf.config import EtfConfig
from offline.etf.oof import oof_crash_probability
from offline.etf.pipeline import run_all
from offline.etf.sources import load_source, load_sp500

SMALL = dict(
    trials=3,
    folds=3,
    max_rounds=40,
    threads=1,
    grid_core=(0.0, 0.5, 1.0),
    grid_alpha=(0.0, 0.5, 1.0),
    grid_beta=(0.0, 0.5, 1.0),
    grid_core2=(0.0, 0.5),
)
SP_SLICE = EtfConfig(
    start="2004-01-01", end="2012-12-31", train_end="2009-12-31", validation_end="2010-12-31", **SMALL
)
REPORT_KEYS = {
    "test": {"pr_auc", "roc_auc", "base_rate", "f2", "precision", "recall", "threshold"},
    "backtest": {"sharpe", "max_drawdown", "cagr", "bh_sharpe", "bh_max_drawdown", "no_signal_sharpe"},
}


def _sp_raw() -> pl.DataFrame:
    d = pl.col("date")
    return load_sp500().filter(d.is_between(pl.date(2004, 1, 1), pl.date(2012, 12, 31)))


@pytest.fixture(scope="module")
def sp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("etf_sp")
    run_all(out, replace(SP_SLICE), raw=_sp_raw(), progress=False)
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_report_has_required_keys_and_plots(sp_run):
    report = _json(sp_run / "results" / "report.json")
    for section, keys in REPORT_KEYS.items():
        assert keys <= set(report[section]), f"{section} lacks {keys - set(report[section])}"
        assert all(np.isfinite(report[section][k]) for k in keys)
    assert (sp_run / "results" / "report.md").read_text().startswith("# ETF crash")
    for png in ("pr_curve.png", "roc_curve.png", "backtest.png", "threshold.png"):
        assert (sp_run / "results" / png).read_bytes()[:4] == b"\x89PNG"
    assert (sp_run / "models" / "crash_model.txt").read_text().startswith("tree")
    assert _json(sp_run / "config.json")["train_end"] == "2009-12-31"
    assert report["source"]["blocks"]["test"]["crash_days"] > 0  # Aug 2011 is in the test slice


def test_stages_rerun_alone_give_the_same_result(sp_run):
    before = _json(sp_run / "results" / "report.json")
    assert main(["etf", "hyperopt", "--out", str(sp_run), "--quiet"]) == 0
    for stage in ("train", "threshold", "evaluate", "scan", "backtest"):
        assert main(["etf", stage, "--out", str(sp_run)]) == 0
    after = _json(sp_run / "results" / "report.json")
    assert after["test"] == before["test"] and after["backtest"] == before["backtest"]


def test_test_block_prices_inform_no_choice(sp_run, tmp_path):
    raw = _sp_raw()
    rng = np.random.default_rng(1)
    is_test = (raw["date"] > date(2010, 12, 31)).to_numpy()
    factor = np.ones(raw.height)
    factor[is_test] = np.exp(np.cumsum(rng.normal(0, 0.02, is_test.sum())))
    shocked = raw.with_columns(*(pl.col(c) * factor for c in ("open", "high", "low", "close")))
    run_all(tmp_path, replace(SP_SLICE), raw=shocked, progress=False)
    for rel in ("models/best_params.json", "models/calibration.json", "results/threshold.json"):
        assert _json(tmp_path / rel) == _json(sp_run / rel), rel
    assert _json(tmp_path / "results/scan.json")["chosen"] == _json(sp_run / "results/scan.json")["chosen"]
    assert (tmp_path / "models/crash_model.txt").read_text() == (
        sp_run / "models/crash_model.txt"
    ).read_text()
    # the shock did reach the test block
    assert _json(tmp_path / "results/report.json")["test"] != _json(sp_run / "results/report.json")["test"]


def test_metrics_match_sklearn(sp_run):
    ev = _json(sp_run / "results" / "evaluation.json")["test"]
    test = pl.read_parquet(sp_run / "datasets" / "predictions.parquet").filter(
        (pl.col("block") == "test") & pl.col("label_ok")
    )
    y, pred = test["crash"].to_numpy(), (test["prob"].to_numpy() >= ev["threshold"]).astype(int)
    assert ev["f2"] == pytest.approx(fbeta_score(y, pred, beta=2, zero_division=0.0))
    assert ev["precision"] == pytest.approx(precision_score(y, pred, zero_division=0.0))
    assert ev["recall"] == pytest.approx(recall_score(y, pred, zero_division=0.0))
    assert ev["base_rate"] == pytest.approx(y.mean())
    rng = np.random.default_rng(0)
    yy, ss = rng.integers(0, 2, 300), rng.random(300)
    curve = mdl.threshold_curve(yy, ss, np.array([0.2, 0.5, 0.8]))
    for t, f2 in zip((0.2, 0.5, 0.8), curve["f2"], strict=True):
        assert f2 == pytest.approx(fbeta_score(yy, ss >= t, beta=2))


def test_calibration_is_the_better_of_two_and_reduces_brier(sp_run):
    cal = _json(sp_run / "models" / "calibration.json")
    other = {"isotonic": "sigmoid", "sigmoid": "isotonic"}[cal["method"]]
    assert cal["brier"][f"cv_{cal['method']}"] <= cal["brier"][f"cv_{other}"]
    assert cal["brier"]["calibrated"] <= cal["brier"]["raw"]
    val = pl.read_parquet(sp_run / "datasets" / "predictions.parquet").filter(
        (pl.col("block") == "validation") & pl.col("label_ok")
    )
    y = val["crash"].to_numpy().astype(float)
    assert mdl.brier(y, mdl.apply_calibration(cal, val["prob_raw"].to_numpy())) == pytest.approx(
        cal["brier"]["calibrated"]
    )


def test_calibration_choice_on_known_miscalibration():
    rng = np.random.default_rng(3)
    p_true = rng.uniform(0.01, 0.6, 4000)
    y = (rng.random(4000) < p_true).astype(float)
    raw = p_true**0.5  # overconfident, monotone distortion
    cal = mdl.choose_calibration(raw, y)
    assert cal["brier"]["calibrated"] < cal["brier"]["raw"]
    assert np.allclose(
        mdl.apply_calibration(cal, np.sort(raw)),
        np.maximum.accumulate(mdl.apply_calibration(cal, np.sort(raw))),
    )


def test_backtest_weights_in_range_and_decided_the_day_before(sp_run):
    cfg = _json(sp_run / "config.json")
    daily = pl.read_parquet(sp_run / "results" / "backtest_daily.parquet")
    w = daily["market_weight"].to_numpy() + daily["defensive_weight"].to_numpy()
    assert ((daily["market_weight"] >= 0) & (daily["market_weight"] <= 1)).all() and (w <= 1 + 1e-12).all()
    pred = pl.read_parquet(sp_run / "datasets" / "predictions.parquet")
    chosen = _json(sp_run / "results" / "scan.json")
    m, _ = strategy.target_weights(
        pred[f"mom_{cfg['momentum_window']}"].to_numpy(),
        pred["prob"].to_numpy(),
        chosen["threshold"],
        **{k: chosen["chosen"][k] for k in ("core", "alpha", "beta", "core2")},
    )
    test_idx = np.flatnonzero((pred["block"] == "test").to_numpy())
    assert np.allclose(daily["market_weight"].to_numpy(), m[test_idx - 1])


def test_strategy_uses_only_earlier_signals_and_costs_are_exact():
    rng = np.random.default_rng(5)
    n = 200
    mom, prob = rng.normal(size=n), rng.random(n)
    m, d = strategy.target_weights(mom, prob, 0.5, core=0.3, alpha=0.9, beta=0.8, core2=0.5)
    assert (m >= 0).all() and (m <= 1).all() and (d >= 0).all() and (m + d <= 1 + 1e-12).all()
    h = strategy.held(m)
    prob2 = prob.copy()
    prob2[100] = 1 - prob2[100]
    h2 = strategy.held(strategy.target_weights(mom, prob2, 0.5, 0.3, 0.9, 0.8, 0.5)[0])
    assert np.array_equal(h[:101], h2[:101])  # day 100's signal moves weights from day 101 on only
    ret, ret_d = rng.normal(0, 0.01, n), rng.normal(0, 0.003, n)
    free = strategy.run(ret, ret_d, h, strategy.held(d), cost_bps=0.0)
    paid = strategy.run(ret, ret_d, h, strategy.held(d), cost_bps=7.5)
    assert np.allclose(free["net"] - paid["net"], 7.5e-4 * paid["turnover"], rtol=0, atol=1e-15)
    assert paid["turnover"].sum() > 0
    assert strategy.metrics(np.full(252, 0.001))["cagr"] == pytest.approx(1.001**252 - 1)


def test_crash_label_matches_brute_force():
    rng = np.random.default_rng(2)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 120)))
    got = ind.crash_label(pl.DataFrame({"close": close}), horizon=10, depth=0.05)
    for t in range(0, 110):
        window = close[t : t + 11]
        mdd = min(0.0, float(np.min(window / np.maximum.accumulate(window) - 1)))
        assert got["fwd_mdd"][t] == pytest.approx(mdd)
        assert got["crash"][t] == int(mdd <= -0.05)
    assert got["crash"][110:].null_count() == 10
    hand = ind.crash_label(pl.DataFrame({"close": [100.0, 110, 98, 105, 90]}), horizon=3, depth=0.1)
    assert hand["crash"].to_list()[:2] == [1, 1] and hand["crash"][2] is None


def test_features_use_only_the_past():
    raw = load_sp500().slice(0, 600)
    base = ind.interactions(ind.naive_rule(ind.base_indicators(raw)))
    shocked_raw = raw.with_columns(
        pl.when(pl.int_range(pl.len()) >= 400).then(pl.col(c) * 1.3).otherwise(pl.col(c))
        for c in ("open", "high", "low", "close")
    )
    shocked = ind.interactions(ind.naive_rule(ind.base_indicators(shocked_raw)))
    cols = [c for c in base.columns if c not in ("date",)]
    assert base.slice(0, 400).select(cols).equals(shocked.slice(0, 400).select(cols))
    assert not base.slice(400, 50).select("ret_1d").equals(shocked.slice(400, 50).select("ret_1d"))


# --- source (b): a synthetic competition directory with a known structure -----------------------


def _synthetic_competition(path: Path, days: int = 1500, seed: int = 0) -> Path:
    """Competition layout with every schema column; VT's crashes follow a spell of raised volatility,
    BND is a quiet bond index that gains in crashes; other columns are empty."""
    rng = np.random.default_rng(seed)
    vol, drift = np.full(days, 0.006), np.full(days, 0.0005)
    t = int(rng.integers(40, 120))
    while t < days:  # calm, then a stress spell of rising volatility, then a crash, then calm again
        stress = int(rng.integers(15, 26))
        vol[t : t + stress] = 0.018
        drift[t : t + stress] = 0.0
        crash = t + stress
        vol[crash : crash + 10] = 0.025
        drift[crash : crash + 10] = -0.012
        t = crash + 10 + int(rng.integers(60, 160))
    vt = 100 * np.exp(np.cumsum(drift + vol * rng.standard_normal(days)))
    bnd = 80 * np.exp(np.cumsum(0.0001 + 0.002 * rng.standard_normal(days) + np.where(drift < 0, 0.0008, 0)))
    cols = {c: pl.lit(None, dtype=pl.Float64) for c in feature_columns()}
    frame = pl.DataFrame({"date_id": np.arange(days)}).with_columns(**cols)
    for ticker, close in (("VT", vt), ("BND", bnd)):
        open_ = close * (1 + 0.001 * rng.standard_normal(days))
        frame = frame.with_columns(
            pl.Series(f"US_Stock_{ticker}_adj_close", close),
            pl.Series(f"US_Stock_{ticker}_adj_open", open_),
            pl.Series(
                f"US_Stock_{ticker}_adj_high",
                np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, days))),
            ),
            pl.Series(
                f"US_Stock_{ticker}_adj_low",
                np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, days))),
            ),
            pl.Series(f"US_Stock_{ticker}_adj_volume", rng.lognormal(15, 0.3, days)),
        )
    holidays = rng.choice(np.arange(300, days), 20, replace=False)  # US holidays: no ETF prices
    us = [c for c in frame.columns if c.startswith("US_Stock_")]
    frame = frame.with_columns(
        pl.when(pl.col("date_id").is_in(holidays)).then(None).otherwise(pl.col(c)).alias(c) for c in us
    )
    path.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path / "train.csv")
    pl.DataFrame(
        {
            "target": [d.name for d in target_defs()],
            "lag": [d.lag for d in target_defs()],
            "pair": [d.pair for d in target_defs()],
        }
    ).write_csv(path / "target_pairs.csv")
    return path


@pytest.fixture(scope="module")
def comp_dir(tmp_path_factory) -> Path:
    return _synthetic_competition(tmp_path_factory.mktemp("comp"))


def test_competition_source_through_the_cli(comp_dir, tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}))
    out = tmp_path / "run"
    rc = main(["etf", "all", "--out", str(out), "--source", str(comp_dir), "--config", str(cfg), "--quiet"])
    assert rc == 0
    assert "Sharpe" in capsys.readouterr().out
    report = _json(out / "results" / "report.json")
    for section, keys in REPORT_KEYS.items():
        assert keys <= set(report[section])
    assert report["source"]["market"] == "VT" and report["source"]["defensive"] == ["BND"]
    # the known structure: raised volatility announces crashes, so the model ranks well out of sample
    assert report["test"]["roc_auc_raw"] > 0.8 and report["test"]["roc_auc"] > 0.65
    assert report["test"]["pr_auc"] > 1.5 * report["test"]["base_rate"]
    assert _json(out / "results" / "scan.json")["defensive"] is True


def test_oof_probabilities_are_walk_forward(comp_dir):
    cfg = EtfConfig(threads=1, oof_chunks=3)
    oof = oof_crash_probability(comp_dir, cfg)
    assert oof.columns == ["date_id", "etf_crash_prob"] and oof.height == 1500
    assert oof["etf_crash_prob"][:500].null_count() == 500  # warm-up and the first training span
    filled = oof["etf_crash_prob"].drop_nulls()
    assert filled.len() > 700 and ((filled >= 0) & (filled <= 1)).all()
    # rewriting prices from `cut` on changes no probability dated before it: every model that scores
    # a day was fit on labels that ended before that day's chunk began
    from offline.data.competition import load_competition

    comp = load_competition(comp_dir)
    cut = 1300
    vt = pl.col("US_Stock_VT_adj_close")
    comp.train = comp.train.with_columns(
        pl.when(pl.col("date_id") >= cut).then(vt * 0.5).otherwise(vt).alias(vt.meta.output_name())
    )
    changed = oof_crash_probability(comp, cfg)
    assert changed.filter(pl.col("date_id") < cut).equals(oof.filter(pl.col("date_id") < cut))
    assert not changed.filter(pl.col("date_id") >= cut).equals(oof.filter(pl.col("date_id") >= cut))


def test_bad_inputs_are_user_errors(tmp_path, capsys):
    assert main(["etf", "train", "--out", str(tmp_path / "nothing")]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    assert main(["etf", "prep", "--out", str(tmp_path), "--source", str(tmp_path / "nope")]) == 2
    with pytest.raises(UserError, match="depth"):
        EtfConfig(depth=8).validate()


def test_nasdaq_source_is_a_second_real_index_without_vix(tmp_path):
    cfg = EtfConfig(source="nasdaq", start="2014-01-01", end="2018-12-31")
    raw, info = load_source("nasdaq", cfg)
    assert info["market"].startswith("NASDAQ") and info["defensive"] == []
    assert raw["date"].min() >= date(2014, 1, 1) and raw["date"].max() == date(2018, 12, 31)
    assert raw["vix"].null_count() == raw.height and raw["def_ret"].null_count() == raw.height
    assert (raw["close"] > 0).all() and (raw["volume"] > 0).all()  # arch's two zero prints filled
    # a different market from the S&P 500 on the same days
    sp = load_source("sp500", replace(cfg, source="sp500"))[0]
    both = raw.join(sp, on="date", suffix="_sp")
    assert both.height > 0.99 * raw.height
    assert not np.allclose(both["close"].to_numpy(), both["close_sp"].to_numpy())
    with pytest.raises(UserError, match="nasdaq"):
        load_source(str(tmp_path / "nope"), cfg)


def test_crash_episodes_merge_runs_closer_than_the_gap():
    flags = pl.Series([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, None])
    assert ind.crash_episodes(flags, gap=3) == 2  # days 1-5 are one event, day 11 another
    assert ind.crash_episodes(flags, gap=6) == 1
    assert ind.crash_episodes(flags, gap=0) == 3
    assert ind.crash_episodes(pl.Series([0, None, 0]), gap=3) == 0


def test_warnings_flag_what_a_reader_should_not_miss(sp_run):
    from offline.etf.stages import warnings

    blocks = {"validation": {"episodes": 1}}
    flags = warnings({"pr_auc": 0.1}, {"pr_auc": 0.2}, {"beta": 0.0}, blocks)
    assert [f.split(" ")[1] for f in flags] == ["crash", "allocation", "validation"]
    assert warnings({"pr_auc": 0.3}, {"pr_auc": 0.2}, {"beta": 0.5}, {"validation": {"episodes": 5}}) == []
    report = _json(sp_run / "results" / "report.json")
    assert all(v["episodes"] <= v["crash_days"] for v in report["source"]["blocks"].values())
    assert report["source"]["blocks"]["test"]["episodes"] >= 1
    expected = warnings(report["test"], report["naive"], report["scan"]["chosen"], report["source"]["blocks"])
    assert report["warnings"] == expected
    md = (sp_run / "results" / "report.md").read_text()
    assert all(w in md for w in expected) and "| episodes |" in md
