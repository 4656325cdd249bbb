"""ETF crash/momentum pipeline: design run, freeze, held-out runs on CSVs, no test-block leakage, arithmetic."""

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
from offline.errors import DataError, UserError
from offline.etf import indicators as ind
from offline.etf import model as mdl
from offline.etf import strategy
from offline.etf.config import EtfConfig
from offline.etf.frozen import code_hash, freeze, load_frozen
from offline.etf.oof import oof_crash_probability
from offline.etf.sources import load_csv, load_source, load_sp500
from offline.etf.splits import expanding_folds
from offline.etf.stages import run_all
from offline.etf.stages.cv import MIN_FOLD_CRASH_DAYS

SMALL = dict(
    folds=3,
    threads=1,
    grid_core=(0.0, 0.5, 1.0),
    grid_alpha=(0.0, 0.5, 1.0),
    grid_beta=(0.0, 0.5, 1.0),
    grid_core2=(0.0, 0.5),
)
# the report keys, exactly
REPORT_KEYS = {
    "test": {"pr_auc", "roc_auc", "base_rate", "f2", "precision", "recall", "threshold"},
    "naive": {"pr_auc", "roc_auc"},
    "backtest": {
        "sharpe", "max_drawdown", "cagr", "bh_sharpe", "bh_max_drawdown", "no_signal_sharpe",
        "ma_210_sharpe", "ma_210_max_drawdown", "momentum_126_sharpe", "momentum_126_max_drawdown",
    },
}  # fmt: skip


def _sp_raw() -> pl.DataFrame:
    return load_sp500().filter(pl.col("date").is_between(pl.date(2001, 1, 1), pl.date(2012, 12, 31)))


def _write_csv(path: Path, raw: pl.DataFrame, ohlcv: bool) -> Path:
    """arch's S&P 500 (through 2018 only) as a CSV of the documented layout."""
    cols = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
    keep = cols if ohlcv else {"close": "Close"}
    raw.select(pl.col("date").alias("Date"), *(pl.col(k).alias(v) for k, v in keep.items())).write_csv(path)
    return path


def _cfg(source: Path, **kw) -> EtfConfig:
    return EtfConfig(source=str(source), train_end="2009-12-31", validation_end="2010-12-31", **SMALL, **kw)


@pytest.fixture(scope="module")
def csvs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("csv")
    raw = _sp_raw()
    return {
        "ohlcv": _write_csv(d / "sp_ohlcv.csv", raw, True),
        "close": _write_csv(d / "sp_close.csv", raw, False),
    }


@pytest.fixture(scope="module")
def design(tmp_path_factory, csvs) -> tuple[Path, Path]:
    """A design run (search) on the OHLCV slice and the frozen design written from it."""
    out = tmp_path_factory.mktemp("etf_design")
    run_all(out, _cfg(csvs["ohlcv"]), progress=False)
    frozen = out / "frozen.json"
    freeze(out, frozen)
    return out, frozen


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, csvs, design) -> Path:
    """The frozen design on the closes-only CSV through the CLI, test block 2011-2012."""
    out = tmp_path_factory.mktemp("etf_held_out")
    args = ["etf", "all", "--out", str(out), "--source", str(csvs["close"]), "--frozen", str(design[1])]
    assert main([*args, "--train-end", "2009-12-31", "--valid-end", "2010-12-31", "--quiet"]) == 0
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_design_run_scores_every_candidate_against_the_naive_rule(design):
    run, frozen_path = design
    cv = _json(run / "results" / "cv.json")
    from offline.etf.candidates import CANDIDATES

    assert {r["candidate"] for r in cv["rows"]} == {c.name for c in CANDIDATES}
    assert len(cv["rows"]) == sum(len(c.grid) for c in CANDIDATES)
    naive = next(r for r in cv["rows"] if r["candidate"] == "naive_rule")
    assert all(r["naive_pr_auc"] == naive["pr_auc"] for r in cv["rows"])
    assert cv["purge_rows"] >= 20 and all(len(r["all_fold_pr_auc"]) == cv["folds"] >= 2 for r in cv["rows"])
    # only folds with enough crash days vote; the rule's per-fold figures are on the same folds
    y = pl.read_parquet(run / "datasets" / "frame.parquet").filter(
        (pl.col("block") == "train") & pl.col("label_ok")
    )
    folds = expanding_folds(y.height, cv["folds"], cv["purge_rows"])
    informative = [y["crash"][va].sum() >= MIN_FOLD_CRASH_DAYS for _, va in folds]
    assert all(len(r["fold_pr_auc"]) == sum(informative) >= 1 for r in cv["rows"])
    for n in cv["survivors"]:
        best = cv["best"][n]
        wins = sum(
            p > q and r > s
            for p, r, q, s in zip(
                best["fold_pr_auc"],
                best["fold_roc_auc"],
                naive["fold_pr_auc"],
                naive["fold_roc_auc"],
                strict=True,
            )
        )
        assert (
            2 * wins > len(best["fold_pr_auc"])
            and best["pr_auc"] > naive["pr_auc"]
            and best["roc_auc"] > naive["roc_auc"]
        )
    chosen = _json(run / "models" / "model.json")
    assert set(chosen["validation"]) == {"naive_rule", *cv["survivors"]}
    gain = {
        n: min(
            v["pr_auc"] / chosen["naive_validation"]["pr_auc"],
            v["roc_auc"] / chosen["naive_validation"]["roc_auc"],
        )
        for n, v in chosen["validation"].items()
    }
    assert gain["naive_rule"] == pytest.approx(1.0) and gain[chosen["model"]["name"]] == max(gain.values())
    assert chosen["calibration"]["method"] == "sigmoid" and chosen["calibration"]["a"] > 0
    frozen = load_frozen(frozen_path)
    assert frozen.model["name"] == chosen["model"]["name"] and frozen.code_hash == code_hash()
    assert frozen.allocation == _json(run / "results" / "scan.json")["chosen"]
    assert frozen.config["horizon"] == 20 and frozen.config["depth"] == 0.08 and not frozen.config["frozen"]
    # a design run on the default splits would have no test block: here the slice has one
    report = _json(run / "results" / "report.json")
    assert report["stopped"] is None and report["frozen_hash"] is None


def test_held_out_run_follows_the_frozen_design(held_out, design):
    frozen = load_frozen(design[1])
    report = _json(held_out / "results" / "report.json")
    for section, keys in REPORT_KEYS.items():
        assert keys <= set(report[section]), f"{section} lacks {keys - set(report[section])}"
        assert all(np.isfinite(report[section][k]) for k in keys)
    assert report["frozen_hash"] == frozen.code_hash == report["code_hash"]
    assert not (held_out / "results" / "cv.json").exists()  # no search
    chosen = _json(held_out / "models" / "model.json")
    assert {k: chosen["model"][k] for k in ("name", "params", "features")} == {
        k: frozen.model[k] for k in ("name", "params", "features")
    }
    assert chosen["calibration"]["method"] == frozen.calibration["method"]
    assert report["allocation"]["chosen"] == frozen.allocation
    # closes only: the stand-ins are named
    assert set(report["source"]["stand_ins"]) == {"Open", "High", "Low", "Volume", "VIX"}
    assert "stand-ins" in (held_out / "results" / "report.md").read_text().lower()
    for png in ("pr_curve.png", "roc_curve.png", "backtest.png", "threshold.png"):
        assert (held_out / "results" / png).read_bytes()[:4] == b"\x89PNG"
    assert report["source"]["blocks"]["test"]["crash_days"] > 0  # Aug 2011 is in the test block


def test_stages_rerun_alone_give_the_same_result(held_out):
    before = _json(held_out / "results" / "report.json")
    for stage in ("fit", "threshold", "scan", "test"):
        assert main(["etf", stage, "--out", str(held_out)]) == 0
    after = _json(held_out / "results" / "report.json")
    assert after["test"] == before["test"] and after["backtest"] == before["backtest"]


def test_closes_only_and_ohlcv_give_the_same_close_features(csvs):
    a, stand_a = load_csv(csvs["ohlcv"])
    b, stand_b = load_csv(csvs["close"])
    assert stand_a == {"VIX": stand_a["VIX"]} and "High" in stand_b
    assert a["close"].equals(b["close"]) and (b["high"] == b["close"]).all()
    fa, fb = ind.feature_frame(a), ind.feature_frame(b)
    from offline.etf.candidates import CANDIDATES

    cols = sorted({f for c in CANDIDATES for f in c.features})
    assert fa.select(cols).equals(fb.select(cols))  # every candidate reads closes only
    # ATR's stand-in is the absolute close-to-close move
    moves = (b["close"] - b["close"].shift(1)).abs()
    np.testing.assert_allclose(
        ind.base_indicators(b)["atr_14"][1:].to_numpy(),
        (moves.fill_null(0).ewm_mean(alpha=1 / 14, adjust=False) / b["close"])[1:].to_numpy(),
        rtol=1e-9,
    )


def test_test_block_prices_inform_no_choice(held_out, csvs, design, tmp_path):
    raw = _sp_raw()
    rng = np.random.default_rng(1)
    is_test = (raw["date"] > date(2010, 12, 31)).to_numpy()
    factor = np.ones(raw.height)
    factor[is_test] = np.exp(np.cumsum(rng.normal(0, 0.02, is_test.sum())))
    shocked = _write_csv(tmp_path / "shocked.csv", raw.with_columns(pl.col("close") * factor), False)
    cfg = replace(_cfg(shocked), frozen=str(design[1]))
    run_all(tmp_path / "run", cfg, progress=False)
    for rel in ("models/model.json", "results/threshold.json", "results/scan.json"):
        assert _json(tmp_path / "run" / rel) == _json(held_out / rel), rel
    # the shock did reach the test block
    assert (
        _json(tmp_path / "run/results/report.json")["test"] != _json(held_out / "results/report.json")["test"]
    )


def test_an_empty_test_block_stops_after_the_scan(csvs, tmp_path, capsys):
    rc = main(["etf", "all", "--search", "--out", str(tmp_path), "--source", str(csvs["close"]), "--quiet",
               "--config", str(_small_config(tmp_path)), "--train-end", "2010-12-31", "--valid-end", "2012-12-31"])  # fmt: skip
    assert rc == 0
    assert "test block is empty" in capsys.readouterr().out
    report = _json(tmp_path / "results" / "report.json")
    assert "test" not in report and "empty" in report["stopped"]
    assert report["validation"]["model"]["pr_auc"] >= 0 and report["allocation"]["chosen"]
    assert (
        freeze(tmp_path, tmp_path / "frozen.json").threshold == report["validation"]["threshold"]["threshold"]
    )


def _small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.json"
    path.write_text(json.dumps(SMALL))
    return path


def test_metrics_match_sklearn(held_out):
    ev = _json(held_out / "results" / "evaluation.json")["test"]
    test = pl.read_parquet(held_out / "datasets" / "predictions.parquet").filter(
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


def test_calibration_improves_brier_and_keeps_the_ranking():
    rng = np.random.default_rng(3)
    p_true = rng.uniform(0.01, 0.6, 4000)
    y = (rng.random(4000) < p_true).astype(float)
    raw = p_true**0.5  # overconfident, monotone distortion
    cal = mdl.calibrate(raw, y)
    assert cal["method"] == "sigmoid" and cal["brier"]["calibrated"] < cal["brier"]["raw"]
    out = mdl.apply_calibration(cal, raw)
    assert np.array_equal(np.argsort(out, kind="stable"), np.argsort(raw, kind="stable"))
    assert mdl.ranking(y.astype(int), out) == mdl.ranking(y.astype(int), raw)
    # a score that ranks crash days backwards is not flipped by the calibration block
    backwards = mdl.calibrate(1 - raw, y)
    assert 0 < backwards["a"] and np.all(np.diff(mdl.apply_calibration(backwards, np.sort(raw))) >= 0)


def test_backtest_weights_in_range_and_decided_the_day_before(held_out):
    daily = pl.read_parquet(held_out / "results" / "backtest_daily.parquet")
    w = daily["market_weight"].to_numpy() + daily["defensive_weight"].to_numpy()
    assert ((daily["market_weight"] >= 0) & (daily["market_weight"] <= 1)).all() and (w <= 1 + 1e-12).all()
    pred = pl.read_parquet(held_out / "datasets" / "predictions.parquet")
    scan = _json(held_out / "results" / "scan.json")
    m, _ = strategy.target_weights(
        pred["alloc_momentum"].to_numpy(),
        pred["prob"].to_numpy(),
        scan["threshold"],
        *(scan["chosen"][k] for k in strategy.ALLOCATION_KEYS),
    )
    test_idx = np.flatnonzero((pred["block"] == "test").to_numpy())
    assert np.allclose(daily["market_weight"].to_numpy(), m[test_idx - 1])
    # the timing rules: all in when the close was above its 210-day mean the day before
    inputs = strategy.market_inputs(pred)
    ma = strategy.benchmark(inputs, "test", "ma_210", 0.0)
    above = (np.nan_to_num(pred["ma_gap"].to_numpy(), nan=-1) > 0).astype(float)
    assert np.array_equal(ma["market"], above[test_idx - 1])


def test_csv_errors_name_file_column_and_row(tmp_path):
    good = "Date,Close\n" + "".join(f"2020-01-{d:02d},{100 + d}\n" for d in range(1, 11))
    cases = {
        "Date,Price\n2020-01-01,1\n": ("column 'Close'", "missing required column"),
        good.replace("2020-01-03", "2020-13-03"): ("column 'Date', row 3", "unparseable date"),
        good.replace("2020-01-04,104", "2020-01-04,-1"): ("column 'Close', row 4", "non-positive"),
        good.replace("2020-01-05,105", "2020-01-05,abc"): ("column 'Close', row 5", "not a number"),
        good.replace("2020-01-06", "2020-01-02"): ("column 'Date', row 6", "not increasing"),
        good: ("rows", "at least 30"),
    }
    for i, (text, (where, what)) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(DataError) as err:
            load_csv(path, min_rows=30)
        assert str(path) in str(err.value) and where in str(err.value) and what in str(err.value), str(
            err.value
        )
    with pytest.raises(UserError, match="no such CSV"):
        load_csv(tmp_path / "missing.csv")


def test_csv_in_other_common_layouts_reads_the_same(tmp_path):
    """Headers in any case with spaces, timestamps with a time zone (pandas' to_csv of a tz-aware
    index), US dates, thousands separators and a newest-first file read as the plain layout."""
    rows = [(f"2020-01-{d:02d}", 1000.0 + 17.25 * d) for d in range(1, 21)]
    layouts = {
        "plain": "Date,Close\n" + "".join(f"{d},{c}\n" for d, c in rows),
        "lower, spaced": " date , CLOSE \n" + "".join(f"{d},{c}\n" for d, c in rows),
        "timestamps": "Date,Close\n" + "".join(f"{d} 00:00:00-05:00,{c}\n" for d, c in rows),
        "iso T": "Date,Close\n" + "".join(f"{d}T16:00:00Z,{c}\n" for d, c in rows),
        "us dates": "Date,Close\n" + "".join(f"{d[5:7]}/{d[8:]}/{d[:4]},{c}\n" for d, c in rows),
        "thousands": "Date,Close\n" + "".join(f'{d},"{c:,.2f}"\n' for d, c in rows),
        "newest first": "Date,Close\n" + "".join(f"{d},{c}\n" for d, c in reversed(rows)),
    }
    frames = {}
    for name, text in layouts.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        frames[name] = load_csv(path)[0]
    for name, frame in frames.items():
        assert frame.equals(frames["plain"]), name
    path = tmp_path / "both.csv"
    path.write_text("Date,Close,close\n2020-01-01,1,1\n")
    with pytest.raises(DataError, match="both read as 'Close'"):
        load_csv(path)


def test_code_hash_covers_the_etf_code(tmp_path):
    import shutil

    from offline.etf import frozen

    for rel in frozen.HASHED:
        src = frozen.ROOT / rel
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
    for junk in tmp_path.rglob("__pycache__"):
        shutil.rmtree(junk)
    assert code_hash(tmp_path) == code_hash()
    (tmp_path / "offline/etf/frozen.json").write_text("{}")  # the frozen design itself is not code
    assert code_hash(tmp_path) == code_hash()
    with (tmp_path / "kaggle_kernel/crash.py").open("a") as f:
        f.write("# changed\n")
    assert code_hash(tmp_path) != code_hash()


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
    rc = main(["etf", "all", "--search", "--out", str(tmp_path), "--source", str(comp_dir),
               "--config", str(_small_config(tmp_path)), "--quiet"])  # fmt: skip
    assert rc == 0
    assert "Sharpe" in capsys.readouterr().out
    report = _json(tmp_path / "results" / "report.json")
    for section, keys in REPORT_KEYS.items():
        assert keys <= set(report[section])
    assert report["source"]["market"] == "VT" and report["source"]["defensive"] == ["BND"]
    # the known structure: raised volatility announces crashes, so the model ranks well out of sample
    assert report["test"]["roc_auc"] > 0.65 and report["test"]["pr_auc"] > 1.5 * report["test"]["base_rate"]
    assert _json(tmp_path / "results" / "scan.json")["defensive"] is True


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
    assert main(["etf", "fit", "--out", str(tmp_path / "nothing")]) == 2
    assert "config.json is missing" in capsys.readouterr().err
    assert main(["etf", "prep", "--out", str(tmp_path), "--source", str(tmp_path / "nope")]) == 2
    with pytest.raises(UserError, match="depth"):
        EtfConfig(depth=8).validate()
    with pytest.raises(UserError, match="train_end"):
        EtfConfig(train_end="2014-31-12").validate()
    from offline.etf.frame import build_frame

    with pytest.raises(UserError, match="warm-up"):  # e.g. the 134-day public window
        build_frame(load_sp500().head(200), EtfConfig())


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


def test_survival_needs_a_majority_of_informative_folds_on_both_aucs():
    from offline.etf.stages.cv import survives

    naive = {"pr_auc": 0.3, "roc_auc": 0.6, "fold_pr_auc": [0.1, 0.5, 0.3], "fold_roc_auc": [0.5, 0.7, 0.6]}
    two_of_three = {
        "pr_auc": 0.4,
        "roc_auc": 0.7,
        "fold_pr_auc": [0.2, 0.6, 0.4],
        "fold_roc_auc": [0.6, 0.8, 0.5],
    }
    assert survives(two_of_three, naive)
    # better means but a win on both AUCs in one fold only: luck of one block, dropped
    one_of_three = {**two_of_three, "fold_roc_auc": [0.9, 0.6, 0.5]}
    assert not survives(one_of_three, naive)
    # wins in most folds but a lower mean ROC AUC: dropped
    assert not survives({**two_of_three, "roc_auc": 0.59}, naive)


def test_validation_choice_falls_back_to_the_naive_rule():
    from offline.etf.stages.fit import pick

    naive = {"pr_auc": 0.08, "roc_auc": 0.60}
    sharp_top = {"pr_auc": 0.10, "roc_auc": 0.55}  # the second pass's failure: PR up, ROC down
    assert pick({"naive_rule": naive, "m": sharp_top}, naive) == "naive_rule"
    both = {"pr_auc": 0.09, "roc_auc": 0.62}
    assert pick({"naive_rule": naive, "m": sharp_top, "b": both}, naive) == "b"
    assert pick({"naive_rule": naive, "tie": dict(naive)}, naive) == "naive_rule"


def test_blend_with_no_weight_ranks_exactly_as_the_naive_rule(csvs):
    from offline.etf.candidates import FittedModel, candidate, fit, matrix
    from offline.etf.frame import build_frame

    raw, _ = load_csv(csvs["close"])
    frame = build_frame(raw, _cfg(csvs["close"]))
    rows = frame.filter(pl.col("label_ok") & (pl.col("block") == "train"))
    test = frame.filter(pl.col("label_ok") & (pl.col("block") != "train"))
    y, naive = test["crash"].to_numpy(), test["naive_score"].to_numpy()
    cand = candidate("blend_naive_lgbm")
    params = {**cand.grid[0], "num_rounds": 20}
    rule_only = fit(cand, {**params, "w": 0.0}, rows).predict(matrix(test, cand.features))
    assert mdl.ranking(y, rule_only) == pytest.approx(mdl.ranking(y, naive), abs=1e-12)
    model = fit(cand, params, rows)
    pred = model.predict(matrix(test, cand.features))
    assert np.all((0 < pred) & (pred < 1)) and len(np.unique(pred)) > 0.9 * len(pred)  # few ties
    again = FittedModel.from_json(json.loads(json.dumps(model.to_json())))
    np.testing.assert_array_equal(again.predict(matrix(test, cand.features)), pred)


def test_the_kit_serves_only_a_lightgbm_family(monkeypatch):
    from offline.etf import oof
    from offline.etf.frozen import FrozenDesign

    def frozen(family: str, name: str, params: dict) -> FrozenDesign:
        model = {"name": name, "family": family, "features": [], "params": params}
        return FrozenDesign("h", {}, "", model, {"method": "sigmoid"}, 0.1, {}, {})

    monkeypatch.setattr(oof, "load_frozen", lambda: frozen("naive", "naive_rule", {}))
    assert (oof.kit_design()[0].name, oof.kit_design()[1]) == oof.DEFAULT_DESIGN
    stumps = {
        "num_leaves": 2,
        "num_rounds": 5,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "lambda_l2": 1.0,
    }
    monkeypatch.setattr(oof, "load_frozen", lambda: frozen("lgbm", "lgbm_stumps", stumps))
    assert oof.kit_design()[0].name == "lgbm_stumps" and oof.kit_design()[1] == stumps
