"""The nine stages. Each reads the previous stages' files from a run directory and writes its own.

Run directory: config.json, datasets/ (parquet + feature list), models/ (regime JSON, Optuna SQLite,
LightGBM text, calibration JSON), results/ (JSON, CSV, markdown, PNG).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

from offline.errors import UserError
from offline.etf import indicators as ind
from offline.etf import model as mdl
from offline.etf import plots, strategy
from offline.etf.config import EtfConfig, load_config, save_config
from offline.etf.regime import RegimeModel, fit_regime
from offline.etf.sources import RAW_COLUMNS, load_source
from offline.etf.splits import assign_blocks, check_blocks, expanding_folds, mark_label_rows

STAGES = ("prep", "features", "regime", "hyperopt", "train", "threshold", "evaluate", "scan", "backtest")
META_COLUMNS = {
    "date_id",
    "date",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vix",
    "def_ret",
    "ret_simple",
    "block",
    "crash",
    "fwd_mdd",
    "naive_score",
    "naive_flag",
    "label_ok",
}
STUDY = "etf_crash"


def _dirs(run_dir: Path) -> tuple[Path, Path, Path]:
    out = tuple(Path(run_dir) / d for d in ("datasets", "models", "results"))
    for d in out:
        d.mkdir(parents=True, exist_ok=True)
    return out


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise UserError(f"{path} is missing: run the earlier etf stages first (python -m offline etf all)")
    return pl.read_parquet(path)


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise UserError(f"{path} is missing: run the earlier etf stages first (python -m offline etf all)")
    return json.loads(path.read_text())


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def _label_text(cfg: EtfConfig) -> str:
    return (
        f"crash = 1 when the maximum drawdown of the close over the next {cfg.horizon} trading days "
        f"is at or below -{cfg.depth:.0%}"
    )


# --- 1. prep ----------------------------------------------------------------------------------


def build_prep_frame(raw: pl.DataFrame, cfg: EtfConfig) -> pl.DataFrame:
    """Indicators, naive rule, crash label, blocks; warm-up rows dropped; `label_ok` marks purged labels."""
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise UserError(f"raw market frame lacks columns {missing}")
    if raw.height == 0 or (raw["close"] <= 0).any():
        raise UserError("raw market frame is empty or has non-positive closes")
    frame = raw.select(RAW_COLUMNS).sort("date_id")
    frame = ind.base_indicators(frame)
    frame = ind.defensive_indicators(frame)
    frame = ind.naive_rule(frame)
    frame = ind.crash_label(frame, cfg.horizon, cfg.depth)
    frame = assign_blocks(frame, cfg).slice(ind.WARMUP)
    return mark_label_rows(frame, cfg.purge)


def block_summary(frame: pl.DataFrame, horizon: int) -> dict:
    out = {}
    for block in ("train", "validation", "test"):
        part = frame.filter(pl.col("block") == block)
        lab = part.filter(pl.col("label_ok"))
        first, last = (
            (part["date"][0], part["date"][-1])
            if part["date"].null_count() == 0 and part.height
            else (None, None)
        )
        out[block] = {
            "rows": part.height,
            "labelled_rows": lab.height,
            "crash_days": int(lab["crash"].sum()),
            "base_rate": float(lab["crash"].mean()) if lab.height else float("nan"),
            "episodes": ind.crash_episodes(lab["crash"], horizon),
            "first_date_id": int(part["date_id"][0]) if part.height else None,
            "last_date_id": int(part["date_id"][-1]) if part.height else None,
            "first_date": str(first) if first else None,
            "last_date": str(last) if last else None,
        }
    return out


def prep(run_dir: Path, cfg: EtfConfig, raw: pl.DataFrame | None = None) -> dict:
    """Stage 1: daily data -> indicators + crash label + fixed blocks; writes config.json."""
    cfg.validate()
    datasets, _, _ = _dirs(run_dir)
    if raw is None:
        raw, info = load_source(cfg.source, cfg)
    else:
        info = {"source": "frame given by the caller", "defensive": []}
    frame = build_prep_frame(raw, cfg)
    check_blocks(frame)
    save_config(Path(run_dir), cfg)
    frame.write_parquet(datasets / "prep.parquet")
    summary = {
        **info,
        "label": _label_text(cfg),
        "blocks": block_summary(frame, cfg.horizon),
        "has_defensive": bool(frame["def_ret"].null_count() < frame.height),
    }
    _write_json(datasets / "source.json", summary)
    return summary


# --- 2. features ------------------------------------------------------------------------------


def feature_columns(frame: pl.DataFrame, cfg: EtfConfig) -> tuple[list[str], dict[str, str]]:
    """Model inputs: numeric non-meta columns with data in train; VIX features only if train has VIX."""
    train = frame.filter(pl.col("block") == "train")
    dropped = {}
    coverage = 1 - train["vix"].null_count() / max(train.height, 1)
    cols = []
    for c, dtype in frame.schema.items():
        if c in META_COLUMNS or not dtype.is_numeric():
            continue
        if train[c].null_count() == train.height:
            dropped[c] = "no data in the train block"
        elif c in ind.VIX_FEATURES and coverage < cfg.min_vix_coverage:
            dropped[c] = f"VIX covers {coverage:.0%} of the train block (< {cfg.min_vix_coverage:.0%})"
        else:
            cols.append(c)
    return cols, dropped


def features(run_dir: Path) -> dict:
    """Stage 2: interactions and the model's feature list."""
    cfg = load_config(run_dir)
    datasets, _, _ = _dirs(run_dir)
    frame = ind.interactions(_read(datasets / "prep.parquet"))
    cols, dropped = feature_columns(frame, cfg)
    frame.write_parquet(datasets / "features.parquet")
    _write_json(datasets / "features.json", {"features": cols, "dropped": dropped})
    return {"features": len(cols), "dropped": dropped}


def _feature_list(datasets: Path) -> list[str]:
    return _read_json(datasets / "features.json")["features"]


# --- 3. regime --------------------------------------------------------------------------------


def regime(run_dir: Path) -> dict:
    """Stage 3: PCA + KMeans regimes fit on the train block, applied to every row."""
    cfg = load_config(run_dir)
    datasets, models, _ = _dirs(run_dir)
    frame = _read(datasets / "features.parquet")
    rm = fit_regime(frame.filter(pl.col("block") == "train"), cfg.pca_components, cfg.regimes, cfg.seed)
    rm.save(models / "regime.json")
    frame = rm.transform(frame)
    frame.write_parquet(datasets / "regime.parquet")
    share = {}
    for block in ("train", "validation", "test"):
        part = frame.filter(pl.col("block") == block)
        share[block] = {n: float(part[f"regime_is_{n}"].mean()) for n in rm.names}
    return {
        "names": rm.names,
        "mean_trailing_21d_return": dict(zip(rm.names, rm.mean_return, strict=True)),
        "share": share,
    }


# --- 4. hyperopt ------------------------------------------------------------------------------


def suggest(trial, max_rounds: int) -> dict:
    return {
        "num_rounds": trial.suggest_int("num_rounds", 30, max_rounds, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 48, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 300, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        "scale_pos_weight": trial.suggest_float("scale_pos_weight", 1.0, 10.0, log=True),
    }


def fold_matrices(rows: pl.DataFrame, feats: list[str], cfg: EtfConfig):
    """Per purged fold: regimes fit on the fold's training part only, then (x_tr, y_tr, x_va, y_va)."""
    out = []
    for tr, va in expanding_folds(rows.height, cfg.folds, cfg.purge):
        part_tr, part_va = rows[tr], rows[va]
        rm = fit_regime(part_tr, cfg.pca_components, cfg.regimes, cfg.seed)
        cols = [*feats, *rm.output_columns]
        x_tr = rm.transform(part_tr).select(cols).to_numpy().astype(float)
        x_va = rm.transform(part_va).select(cols).to_numpy().astype(float)
        out.append((x_tr, part_tr["crash"].to_numpy(), x_va, part_va["crash"].to_numpy(), cols))
    return out


def hyperopt(run_dir: Path, progress: bool = True) -> dict:
    """Stage 4: Optuna TPE over LightGBM, objective mean F2 over purged expanding folds of the train block."""
    import optuna
    from tqdm import tqdm

    cfg = load_config(run_dir)
    datasets, models, _ = _dirs(run_dir)
    frame = _read(datasets / "features.parquet")
    rows = frame.filter((pl.col("block") == "train") & pl.col("label_ok"))
    folds = fold_matrices(rows, _feature_list(datasets), cfg)

    def objective(trial) -> float:
        params = suggest(trial, cfg.max_rounds)
        scores = []
        for x_tr, y_tr, x_va, y_va, cols in folds:
            booster = mdl.fit_booster(x_tr, y_tr, params, cfg.seed, cfg.threads, cols)
            scores.append(mdl.best_f2(y_va, booster.predict(x_va)))
        trial.set_user_attr("fold_f2", scores)
        valid = [s for s in scores if not math.isnan(s)]
        return float(np.mean(valid)) if valid else 0.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = (models / "optuna.sqlite3").resolve()
    storage = f"sqlite:///{db}"
    try:  # a rerun starts a fresh study so it is reproducible
        optuna.delete_study(study_name=STUDY, storage=storage)
    except KeyError:
        pass
    study = optuna.create_study(
        study_name=STUDY,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
    )
    bar = tqdm(total=cfg.trials, desc="hyperopt trials", file=sys.stderr, disable=not progress, leave=False)

    def tick(study, trial) -> None:
        bar.update(1)
        bar.set_postfix(best=f"{study.best_value:.3f}")

    study.optimize(objective, n_trials=cfg.trials, callbacks=[tick])
    bar.close()
    best = study.best_trial
    result = {
        "params": best.params,
        "value": best.value,
        "fold_f2": best.user_attrs["fold_f2"],
        "trial": best.number,
        "trials": len(study.trials),
        "study_file": db.name,
        "study": STUDY,
        "folds": cfg.folds,
        "purge_rows": cfg.purge,
        "rows": rows.height,
        "objective": "mean over purged expanding folds of the best F2 over thresholds",
    }
    _write_json(models / "best_params.json", result)
    return {"best_f2_cv": best.value, "trials": len(study.trials)}


# --- 5. train ---------------------------------------------------------------------------------


def train(run_dir: Path) -> dict:
    """Stage 5: final LightGBM on the train block, calibration chosen by Brier on the validation block."""
    cfg = load_config(run_dir)
    datasets, models, _ = _dirs(run_dir)
    frame = _read(datasets / "regime.parquet")
    rm = RegimeModel.load(models / "regime.json")
    cols = [*_feature_list(datasets), *rm.output_columns]
    best = _read_json(models / "best_params.json")
    fit_rows = frame.filter((pl.col("block") == "train") & pl.col("label_ok"))
    booster = mdl.fit_booster(
        fit_rows.select(cols).to_numpy().astype(float),
        fit_rows["crash"].to_numpy(),
        best["params"],
        cfg.seed,
        cfg.threads,
        cols,
    )
    booster.save_model(str(models / "crash_model.txt"))
    raw = booster.predict(frame.select(cols).to_numpy().astype(float))
    frame = frame.with_columns(pl.Series("prob_raw", raw))
    cal_rows = frame.filter((pl.col("block") == "validation") & pl.col("label_ok"))
    cal = mdl.choose_calibration(cal_rows["prob_raw"].to_numpy(), cal_rows["crash"].to_numpy().astype(float))
    cal["block"] = "validation"
    _write_json(models / "calibration.json", cal)
    frame = frame.with_columns(pl.Series("prob", mdl.apply_calibration(cal, raw)))
    mom = f"mom_{cfg.momentum_window}"
    keep = [
        "date_id",
        "date",
        "block",
        "label_ok",
        "crash",
        "fwd_mdd",
        "prob_raw",
        "prob",
        "naive_score",
        "naive_flag",
        "close",
        "ret_simple",
        "def_ret",
    ]
    frame.with_columns((pl.col("close") / pl.col("close").shift(cfg.momentum_window) - 1).alias(mom)).select(
        [*keep, mom]
    ).write_parquet(datasets / "predictions.parquet")
    importance = dict(zip(cols, booster.feature_importance("gain").tolist(), strict=True))
    top = dict(sorted(importance.items(), key=lambda kv: -kv[1])[:15])
    _write_json(
        models / "model_meta.json",
        {
            "features": cols,
            "params": best["params"],
            "train_rows": fit_rows.height,
            "train_base_rate": float(fit_rows["crash"].mean()),
            "label": _label_text(cfg),
            "model_file": "crash_model.txt",
            "calibration_file": "calibration.json",
            "top_gain": top,
        },
    )
    return {
        "calibration": cal["method"],
        "brier_raw": cal["brier"]["raw"],
        "brier_calibrated": cal["brier"]["calibrated"],
    }


# --- 6. threshold -----------------------------------------------------------------------------

THRESHOLDS = np.round(np.arange(0.005, 1.0, 0.005), 3)


def pick_threshold(curve: dict[str, np.ndarray]) -> int:
    """Index of the F2-best threshold; ties go to the middle of the tied thresholds."""
    f2 = curve["f2"]
    tied = np.flatnonzero(np.isclose(f2, f2.max(), rtol=0, atol=1e-12))
    return int(tied[len(tied) // 2])


def threshold(run_dir: Path) -> dict:
    """Stage 6: scan thresholds on calibrated validation probabilities; keep the F2-best and the curve."""
    datasets, _, results = _dirs(run_dir)
    pred = _read(datasets / "predictions.parquet").filter(
        (pl.col("block") == "validation") & pl.col("label_ok")
    )
    y, p = pred["crash"].to_numpy(), pred["prob"].to_numpy()
    curve = mdl.threshold_curve(y, p, THRESHOLDS)
    i = pick_threshold(curve)
    pl.DataFrame(curve).write_csv(results / "threshold_curve.csv")
    best = {
        "threshold": float(THRESHOLDS[i]),
        "f2": float(curve["f2"][i]),
        "precision": float(curve["precision"][i]),
        "recall": float(curve["recall"][i]),
        "rows": len(y),
        "positives": int(y.sum()),
        "block": "validation",
    }
    _write_json(results / "threshold.json", best)
    plots.threshold_curve(curve, best["threshold"], results / "threshold.png")
    return best


# --- 7. evaluate ------------------------------------------------------------------------------


def evaluate(run_dir: Path) -> dict:
    """Stage 7: the untouched test block: ranking and threshold metrics vs base rate and the naive rule."""
    datasets, _, results = _dirs(run_dir)
    thr = _read_json(results / "threshold.json")["threshold"]
    test = _read(datasets / "predictions.parquet").filter((pl.col("block") == "test") & pl.col("label_ok"))
    y = test["crash"].to_numpy()
    p, raw = test["prob"].to_numpy(), test["prob_raw"].to_numpy()
    naive_score = np.nan_to_num(test["naive_score"].to_numpy().astype(float))
    naive_flag = test["naive_flag"].fill_null(0).to_numpy().astype(float)
    model = {
        **mdl.ranking(y, p),
        **mdl.classification(y, p, thr),
        "base_rate": float(y.mean()),
        "rows": len(y),
        "positives": int(y.sum()),
        "brier": mdl.brier(y, p),
        "pr_auc_raw": mdl.ranking(y, raw)["pr_auc"],
        "roc_auc_raw": mdl.ranking(y, raw)["roc_auc"],
    }
    naive = {
        "rule": "21-day realized volatility above the 80th percentile of its previous 252 days",
        **mdl.classification(y, naive_flag, 0.5),
        "pr_auc": mdl.ranking(y, naive_score)["pr_auc"],
        "roc_auc": mdl.ranking(y, naive_score)["roc_auc"],
        "pr_auc_flag": mdl.ranking(y, naive_flag)["pr_auc"],
    }
    if 0 < y.sum() < len(y):
        plots.pr_roc(
            y,
            {"crash model (calibrated)": p, "naive: rv21 / trailing q80": naive_score},
            results / "pr_curve.png",
            results / "roc_curve.png",
        )
    val = _read(datasets / "predictions.parquet").filter(
        (pl.col("block") == "validation") & pl.col("label_ok")
    )
    yv = val["crash"].to_numpy()
    # raw scores only: the calibration map was fit on this block
    validation = {
        **mdl.ranking(yv, val["prob_raw"].to_numpy()),
        "base_rate": float(yv.mean()),
        "naive_pr_auc": mdl.ranking(yv, np.nan_to_num(val["naive_score"].to_numpy().astype(float)))["pr_auc"],
    }
    out = {"test": model, "naive": naive, "validation": validation}
    _write_json(results / "evaluation.json", out)
    return {k: model[k] for k in ("pr_auc", "roc_auc", "base_rate", "f2", "precision", "recall")}


# --- 8. scan / 9. backtest --------------------------------------------------------------------


def _market_inputs(pred: pl.DataFrame, cfg: EtfConfig) -> dict[str, np.ndarray]:
    return {
        "momentum": pred[f"mom_{cfg.momentum_window}"].to_numpy().astype(float),
        "prob": pred["prob"].to_numpy().astype(float),
        "ret_market": pred["ret_simple"].fill_null(0).to_numpy().astype(float),
        "ret_defensive": pred["def_ret"].fill_null(0).to_numpy().astype(float),
        "block": pred["block"].to_numpy(),
    }


def simulate(
    inputs: dict,
    block: str,
    threshold_: float,
    core: float,
    alpha: float,
    beta: float,
    core2: float,
    cost_bps: float,
) -> dict:
    """Decide weights on every row, hold them the next day, then run the block's rows only."""
    m, d = strategy.target_weights(inputs["momentum"], inputs["prob"], threshold_, core, alpha, beta, core2)
    mask = inputs["block"] == block
    return strategy.run(
        inputs["ret_market"][mask],
        inputs["ret_defensive"][mask],
        strategy.held(m)[mask],
        strategy.held(d)[mask],
        cost_bps,
    )


def buy_and_hold(inputs: dict, block: str, cost_bps: float) -> dict:
    n = int(np.sum(inputs["block"] == block))
    ones = np.ones(n)
    return strategy.run(
        inputs["ret_market"][inputs["block"] == block], np.zeros(n), ones, np.zeros(n), cost_bps
    )


def _perf(run: dict) -> dict:
    return strategy.metrics(run["net"], run["turnover"], run["exposure"])


def scan(run_dir: Path) -> dict:
    """Stage 8: grid over core/alpha/beta/core2 on the validation block; pick by the config's rule."""
    cfg = load_config(run_dir)
    datasets, _, results = _dirs(run_dir)
    pred = _read(datasets / "predictions.parquet")
    thr = _read_json(results / "threshold.json")["threshold"]
    has_def = pred["def_ret"].null_count() < pred.height
    inputs = _market_inputs(pred, cfg)
    core2_grid = cfg.grid_core2 if has_def else (0.0,)
    rows = []
    for core in cfg.grid_core:
        for alpha in cfg.grid_alpha:
            for beta in cfg.grid_beta:
                for core2 in core2_grid:
                    perf = _perf(simulate(inputs, "validation", thr, core, alpha, beta, core2, cfg.cost_bps))
                    rows.append({"core": core, "alpha": alpha, "beta": beta, "core2": core2, **perf})
    table = pl.DataFrame(rows)
    table.write_csv(results / "scan.csv")
    bh = _perf(buy_and_hold(inputs, "validation", cfg.cost_bps))
    cap = cfg.scan_drawdown_ratio * bh["max_drawdown"]  # both negative
    qualified = table.filter(pl.col("max_drawdown") >= cap)
    pool = qualified if qualified.height else table
    best = pool.sort(["sharpe", "turnover"], descending=[True, False], maintain_order=True).row(0, named=True)
    chosen = {k: best[k] for k in ("core", "alpha", "beta", "core2")}
    no_signal = _perf(
        simulate(
            inputs, "validation", thr, chosen["core"], chosen["alpha"], 0.0, chosen["core2"], cfg.cost_bps
        )
    )
    out = {
        "chosen": chosen,
        "block": "validation",
        "points": table.height,
        "qualified": qualified.height,
        "rule": (
            f"highest validation Sharpe among points with max drawdown at most "
            f"{cfg.scan_drawdown_ratio:.0%} of buy-and-hold's ({cap:.3f}); best Sharpe overall if none"
        ),
        "validation": {k: best[k] for k in best if k not in chosen},
        "validation_buy_and_hold": bh,
        "validation_no_signal": no_signal,
        "threshold": thr,
        "defensive": bool(has_def),
    }
    _write_json(results / "scan.json", out)
    return {
        **chosen,
        "val_sharpe": best["sharpe"],
        "val_max_drawdown": best["max_drawdown"],
        "val_bh_max_drawdown": bh["max_drawdown"],
    }


def backtest(run_dir: Path) -> dict:
    """Stage 9: the chosen allocation on the test block vs buy-and-hold and vs no crash signal; the report."""
    cfg = load_config(run_dir)
    datasets, _, results = _dirs(run_dir)
    pred = _read(datasets / "predictions.parquet")
    sc = _read_json(results / "scan.json")
    thr, c = sc["threshold"], sc["chosen"]
    inputs = _market_inputs(pred, cfg)
    runs = {
        "strategy": simulate(inputs, "test", thr, c["core"], c["alpha"], c["beta"], c["core2"], cfg.cost_bps),
        "no_signal": simulate(inputs, "test", thr, c["core"], c["alpha"], 0.0, c["core2"], cfg.cost_bps),
        "buy_and_hold": buy_and_hold(inputs, "test", cfg.cost_bps),
    }
    perf = {k: _perf(v) for k, v in runs.items()}
    test = pred.filter(pl.col("block") == "test")
    x = test["date"].to_numpy() if test["date"].null_count() == 0 else test["date_id"].to_numpy()
    daily = test.select("date_id", "date", "prob", "crash").with_columns(
        *(pl.Series(f"{k}_net", v["net"]) for k, v in runs.items()),
        pl.Series("market_weight", runs["strategy"]["market"]),
        pl.Series("defensive_weight", runs["strategy"]["defensive"]),
        pl.Series("turnover", runs["strategy"]["turnover"]),
    )
    daily.write_parquet(results / "backtest_daily.parquet")
    names = {"strategy": "strategy", "no_signal": "without crash signal", "buy_and_hold": "buy and hold"}
    plots.backtest(
        x,
        {names[k]: np.cumprod(1 + v["net"]) for k, v in runs.items()},
        {names[k]: strategy.drawdown(v["net"]) for k, v in runs.items()},
        runs["strategy"]["exposure"],
        test["prob"].to_numpy(),
        thr,
        test["crash"].to_numpy(),
        results / "backtest.png",
        "date" if test["date"].null_count() == 0 else "date_id",
    )
    out = {"params": c, "threshold": thr, "cost_bps": cfg.cost_bps, **perf}
    _write_json(results / "backtest.json", out)
    report = write_report(run_dir)
    return {
        k: report["backtest"][k]
        for k in ("sharpe", "max_drawdown", "cagr", "bh_sharpe", "bh_max_drawdown", "no_signal_sharpe")
    }


# --- report -----------------------------------------------------------------------------------


def write_report(run_dir: Path) -> dict:
    """results/report.json and report.md from every stage's outputs."""
    cfg = load_config(run_dir)
    datasets, models, results = _dirs(run_dir)
    source = _read_json(datasets / "source.json")
    ev = _read_json(results / "evaluation.json")
    bt = _read_json(results / "backtest.json")
    sc = _read_json(results / "scan.json")
    cal = _read_json(models / "calibration.json")
    hp = _read_json(models / "best_params.json")
    thr = _read_json(results / "threshold.json")
    s, bh, ns = bt["strategy"], bt["buy_and_hold"], bt["no_signal"]
    t = ev["test"]
    backtest_ = {
        **{
            k: s[k]
            for k in (
                "sharpe",
                "sortino",
                "max_drawdown",
                "calmar",
                "cagr",
                "volatility",
                "turnover",
                "hit_rate",
                "exposure",
            )
        },
        **{f"bh_{k}": bh[k] for k in ("sharpe", "sortino", "max_drawdown", "calmar", "cagr", "volatility")},
        **{
            f"no_signal_{k}": ns[k]
            for k in ("sharpe", "sortino", "max_drawdown", "calmar", "cagr", "turnover")
        },
        "params": bt["params"],
        "cost_bps": bt["cost_bps"],
    }
    goals = {
        "pr_auc_at_least_twice_base_rate": {
            "value": t["pr_auc"],
            "target": 2 * t["base_rate"],
            "met": bool(t["pr_auc"] >= 2 * t["base_rate"]),
        },
        "max_drawdown_at_most_half_of_bh": {
            "value": s["max_drawdown"],
            "target": bh["max_drawdown"] / 2,
            "met": bool(abs(s["max_drawdown"]) <= abs(bh["max_drawdown"]) / 2),
        },
        "sharpe_at_least_bh": {
            "value": s["sharpe"],
            "target": bh["sharpe"],
            "met": bool(s["sharpe"] >= bh["sharpe"]),
        },
    }
    plot_files = [p.name for p in sorted(results.glob("*.png"))]
    report = {
        "source": source,
        "label": _label_text(cfg),
        "config": cfg.to_json(),
        "test": {
            k: t[k]
            for k in (
                "pr_auc",
                "roc_auc",
                "base_rate",
                "f2",
                "precision",
                "recall",
                "threshold",
                "confusion",
                "rows",
                "positives",
                "brier",
                "pr_auc_raw",
                "roc_auc_raw",
            )
        },
        "naive": ev["naive"],
        "validation": {
            "threshold": thr,
            "calibration": {k: cal[k] for k in ("method", "brier", "rows")},
            "ranking_raw": ev["validation"],
        },
        "hyperopt": {"cv_f2": hp["value"], "params": hp["params"], "trials": hp["trials"]},
        "scan": {
            "chosen": sc["chosen"],
            "rule": sc["rule"],
            "validation": sc["validation"],
            "validation_buy_and_hold": sc["validation_buy_and_hold"],
        },
        "backtest": backtest_,
        "goals": goals,
        "warnings": warnings(t, ev["naive"], sc["chosen"], source["blocks"]),
        "plots": plot_files,
    }
    _write_json(results / "report.json", report)
    (results / "report.md").write_text(_markdown(report))
    return report


def warnings(test: dict, naive: dict, chosen: dict, blocks: dict) -> list[str]:
    """Plain-language flags a reader of the figures should not miss."""
    out = []
    if test["pr_auc"] < naive["pr_auc"]:
        out.append(
            f"the crash model ranks test crash days worse than the naive rule "
            f"(PR AUC {test['pr_auc']:.3f} vs {naive['pr_auc']:.3f})"
        )
    if chosen["beta"] == 0:
        out.append(
            "the allocation chosen on validation does not use the crash signal (beta = 0): "
            "the backtest measures the momentum rule alone"
        )
    episodes = blocks["validation"].get("episodes")
    if episodes is not None and episodes <= 2:
        out.append(
            f"the validation block holds {episodes} crash episode(s): calibration, threshold and "
            "allocation rest on them"
        )
    return out


def _markdown(r: dict) -> str:
    t, n, b, blocks = r["test"], r["naive"], r["backtest"], r["source"]["blocks"]
    lines = [
        "# ETF crash prediction and momentum: out-of-sample report",
        "",
        f"Source: {r['source']['source']} (market: {r['source'].get('market')}; defensive: "
        f"{', '.join(r['source'].get('defensive') or []) or 'cash'}).",
        "",
        f"Label: {r['label']}.",
        "",
        "| block | rows | labelled | crash days | episodes | base rate | from | to |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, v in blocks.items():
        lines.append(
            f"| {k} | {v['rows']} | {v['labelled_rows']} | {v['crash_days']} | {v.get('episodes', '')} | "
            f"{v['base_rate']:.3f} | "
            f"{v['first_date'] or v['first_date_id']} | {v['last_date'] or v['last_date_id']} |"
        )
    cal = r["validation"]["calibration"]
    lines += [
        "",
        "Every choice (hyper-parameters, calibration, threshold, allocation) uses the train and validation "
        "blocks only; the numbers below are on the test block.",
        "",
        f"Hyperopt: {r['hyperopt']['trials']} trials, CV F2 {r['hyperopt']['cv_f2']:.3f}. Calibration: "
        f"{cal['method']} (validation Brier raw {cal['brier']['raw']:.4f} -> {cal['brier']['calibrated']:.4f}). "
        f"Threshold {t['threshold']:.3f} (validation F2 {r['validation']['threshold']['f2']:.3f}). "
        f"Validation ranking of the raw model score (the block calibration was fit on): PR AUC "
        f"{r['validation']['ranking_raw']['pr_auc']:.3f} vs base rate {r['validation']['ranking_raw']['base_rate']:.3f}, "
        f"ROC AUC {r['validation']['ranking_raw']['roc_auc']:.3f}.",
        "",
        "## Test block classification",
        "",
        "| | PR AUC | ROC AUC | F2 | precision | recall |",
        "|---|---|---|---|---|---|",
        f"| crash model | {t['pr_auc']:.3f} | {t['roc_auc']:.3f} | {t['f2']:.3f} | {t['precision']:.3f} | "
        f"{t['recall']:.3f} |",
        f"| naive rule | {n['pr_auc']:.3f} | {n['roc_auc']:.3f} | {n['f2']:.3f} | {n['precision']:.3f} | "
        f"{n['recall']:.3f} |",
        f"| base rate | {t['base_rate']:.3f} | 0.500 | | | |",
        "",
        f"Confusion matrix at the threshold: {t['confusion']}. Naive rule: {n['rule']}.",
        "",
        "## Test block backtest",
        "",
        f"Allocation {b['params']} (chosen on validation), costs {b['cost_bps']} bp per unit turnover.",
        "",
        "| | CAGR | vol | Sharpe | Sortino | max DD | Calmar |",
        "|---|---|---|---|---|---|---|",
        f"| strategy | {b['cagr']:.2%} | {b['volatility']:.2%} | {b['sharpe']:.2f} | {b['sortino']:.2f} | "
        f"{b['max_drawdown']:.2%} | {b['calmar']:.2f} |",
        f"| without crash signal | {b['no_signal_cagr']:.2%} | | {b['no_signal_sharpe']:.2f} | "
        f"{b['no_signal_sortino']:.2f} | {b['no_signal_max_drawdown']:.2%} | {b['no_signal_calmar']:.2f} |",
        f"| buy and hold | {b['bh_cagr']:.2%} | {b['bh_volatility']:.2%} | {b['bh_sharpe']:.2f} | "
        f"{b['bh_sortino']:.2f} | {b['bh_max_drawdown']:.2%} | {b['bh_calmar']:.2f} |",
        "",
        f"Strategy turnover {b['turnover']:.2f}/year, hit rate {b['hit_rate']:.1%}, mean exposure "
        f"{b['exposure']:.2f}.",
        "",
        "## Goals",
        "",
    ]
    for name, g in r["goals"].items():
        lines.append(f"- {name}: {g['value']:.4f} vs {g['target']:.4f} -> {'met' if g['met'] else 'NOT met'}")
    if r.get("warnings"):
        lines += ["", "## Warnings", "", *(f"- {w}" for w in r["warnings"])]
    lines += ["", "Plots: " + ", ".join(r["plots"]), ""]
    return "\n".join(lines)


STAGE_FUNCTIONS = {
    "features": features,
    "regime": regime,
    "hyperopt": hyperopt,
    "train": train,
    "threshold": threshold,
    "evaluate": evaluate,
    "scan": scan,
    "backtest": backtest,
}
