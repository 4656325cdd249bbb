"""results/report.json and report.md from the stage files of a run directory."""

from __future__ import annotations

from pathlib import Path

from offline.etf.candidates import BASELINE
from offline.etf.config import EtfConfig
from offline.etf.files import (
    CV_SUMMARY_KEYS,
    Backtest,
    ChosenModel,
    CvResult,
    Evaluation,
    ScanResult,
    SourceInfo,
    ThresholdChoice,
    write_json,
)
from offline.etf.frozen import code_hash, load_frozen

PERF = ("sharpe", "sortino", "max_drawdown", "calmar", "cagr", "volatility")


def _backtest(bt: Backtest) -> dict:
    s = bt.runs["strategy"]
    out = {k: s[k] for k in (*PERF, "turnover", "hit_rate", "exposure")}
    for prefix, name in (
        ("bh", "buy_and_hold"),
        ("no_signal", "no_signal"),
        ("ma_210", "ma_210"),
        ("momentum_126", "momentum_126"),
    ):
        out |= {f"{prefix}_{k}": bt.runs[name][k] for k in PERF}
    return out | {"params": bt.params, "cost_bps": bt.cost_bps}


def goals(test: dict, naive: dict, backtest: dict) -> dict:
    """The issue's held-out goals, each with its value, target and whether it is met."""
    rows = {
        "pr_auc_at_least_naive": (test["pr_auc"], naive["pr_auc"], test["pr_auc"] >= naive["pr_auc"]),
        "roc_auc_at_least_naive": (test["roc_auc"], naive["roc_auc"], test["roc_auc"] >= naive["roc_auc"]),
        "pr_auc_at_least_1.5x_base_rate": (
            test["pr_auc"],
            1.5 * test["base_rate"],
            test["pr_auc"] >= 1.5 * test["base_rate"],
        ),
        "sharpe_at_least_bh": (
            backtest["sharpe"],
            backtest["bh_sharpe"],
            backtest["sharpe"] >= backtest["bh_sharpe"],
        ),
        "max_drawdown_at_most_half_of_bh": (
            backtest["max_drawdown"],
            backtest["bh_max_drawdown"] / 2,
            abs(backtest["max_drawdown"]) <= abs(backtest["bh_max_drawdown"]) / 2,
        ),
    }
    return {k: {"value": v, "target": t, "met": bool(m)} for k, (v, t, m) in rows.items()}


def warnings(
    model: str,
    model_val: dict,
    naive_val: dict,
    chosen: dict,
    blocks: dict,
    test: dict | None,
    naive: dict | None,
) -> list[str]:
    """Plain-language flags a reader of the figures should not miss."""
    out = []
    if model == BASELINE:
        out.append(
            "the crash model is the naive rule itself: no candidate beat it on both PR AUC and ROC AUC "
            "on the design's validation block, so the design fell back to it (calibrated)"
        )
    elif model_val["pr_auc"] <= naive_val["pr_auc"] or model_val["roc_auc"] <= naive_val["roc_auc"]:
        out.append(
            f"on validation the crash model does not beat the naive rule on both rankings (PR AUC "
            f"{model_val['pr_auc']:.3f} vs {naive_val['pr_auc']:.3f}, ROC AUC {model_val['roc_auc']:.3f} vs {naive_val['roc_auc']:.3f})"
        )
    if test is not None and test["pr_auc"] < naive["pr_auc"]:
        out.append(
            f"the crash model ranks test crash days worse than the naive rule (PR AUC {test['pr_auc']:.3f} vs {naive['pr_auc']:.3f})"
        )
    if chosen["beta"] == 0:
        out.append(
            "the allocation chosen on validation does not use the crash signal (beta = 0): the backtest measures the momentum rule alone"
        )
    episodes = blocks["validation"]["episodes"]
    if episodes <= 2:
        out.append(
            f"the validation block holds {episodes} crash episode(s): calibration, threshold and allocation rest on them"
        )
    return out


def write_report(run_dir: Path, cfg: EtfConfig, stopped: str | None = None) -> dict:
    run_dir = Path(run_dir)
    source, chosen = SourceInfo.load(run_dir), ChosenModel.load(run_dir)
    thr, sc = ThresholdChoice.load(run_dir), ScanResult.load(run_dir)
    frozen = load_frozen(cfg.frozen) if cfg.frozen else None
    cv = None if cfg.frozen else CvResult.load(run_dir)
    model = chosen.model
    report = {
        "source": source.to_json(),
        "label": source.label,
        "config": cfg.to_json(),
        "code_hash": code_hash(),
        "frozen_hash": frozen.code_hash if frozen else None,
        "design": {
            "model": {k: model[k] for k in ("name", "family", "features", "params")},
            "chosen_by": chosen.chosen_by,
            "calibration": {k: chosen.calibration[k] for k in ("method", "brier", "rows")},
            "cv": ([{k: r[k] for k in CV_SUMMARY_KEYS} for r in cv.rows] if cv else frozen.design["cv"]),
            "survivors": cv.survivors if cv else frozen.design["survivors"],
        },
        "validation": {
            "model": chosen.validation[model["name"]],
            "naive": chosen.naive_validation,
            "candidates": chosen.validation,
            "threshold": thr.to_json(),
            "allocation": sc.validation,
        },
        "allocation": {"chosen": sc.chosen, "rule": sc.rule, "threshold": sc.threshold},
        "stopped": stopped,
    }
    test = naive = None
    if stopped is None:
        ev = Evaluation.load(run_dir)
        test, naive = ev.test, ev.naive
        report["test"], report["naive"], report["backtest"] = test, naive, _backtest(Backtest.load(run_dir))
        report["goals"] = goals(test, naive, report["backtest"])
    report["warnings"] = warnings(
        model["name"],
        report["validation"]["model"],
        chosen.naive_validation,
        sc.chosen,
        source.blocks,
        test,
        naive,
    )
    report["plots"] = sorted(p.name for p in (run_dir / "results").glob("*.png"))
    write_json(run_dir / "results" / "report.json", report)
    (run_dir / "results" / "report.md").write_text(markdown(report))
    return report


def _f(v, fmt: str = ".3f") -> str:
    return "" if v is None else format(v, fmt)


def markdown(r: dict) -> str:
    src, d, v = r["source"], r["design"], r["validation"]
    lines = [
        "# ETF crash prediction and momentum: report",
        "",
        f"Source: {src['source']} (market: {src['market']}; defensive: {', '.join(src['defensive']) or 'cash'}).",
        f"Label: {r['label']}.",
        f"Code hash {r['code_hash'][:16]}; frozen design hash {(r['frozen_hash'] or 'none (design run)')[:16]}.",
        "",
    ]
    if src["stand_ins"]:
        lines += [
            "Stand-ins for missing columns:",
            "",
            *(f"- {k}: {t}" for k, t in src["stand_ins"].items()),
            "",
        ]
    lines += [
        "| block | rows | labelled | crash days | episodes | base rate | from | to |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, b in src["blocks"].items():
        lines.append(
            f"| {k} | {b['rows']} | {b['labelled_rows']} | {b['crash_days']} | {b['episodes']} | {_f(b['base_rate'])} | {b['first'] or ''} | {b['last'] or ''} |"
        )
    lines += [
        "",
        "## Design: purged walk-forward CV inside the train block",
        "",
        "PR AUC and ROC AUC per informative fold, then their means; the naive rule's on the same rows.",
        "",
        "| candidate | params | PR AUC per fold | ROC AUC per fold | PR AUC | ROC AUC | naive PR AUC | naive ROC AUC | survives |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in d["cv"]:
        folds = [" ".join(f"{x:.3f}" for x in row.get(k, [])) for k in ("fold_pr_auc", "fold_roc_auc")]
        lines.append(
            f"| {row['candidate']} | {row['params']} | {folds[0]} | {folds[1]} | {row['pr_auc']:.3f} | {row['roc_auc']:.3f} | {row['naive_pr_auc']:.3f} | {row['naive_roc_auc']:.3f} | {row.get('survives', '')} |"
        )
    m, n = v["model"], v["naive"]
    lines += [
        "",
        f"Survivors: {', '.join(d['survivors']) or 'none'}. Chosen: {d['model']['name']} {d['model']['params']} ({d['chosen_by']}); "
        f"calibration {d['calibration']['method']} fit on validation.",
        "",
        "## Validation block (chose threshold, allocation and the model among survivors)",
        "",
        f"Raw scores, same days: crash model PR AUC {m['pr_auc']:.3f}, ROC AUC {m['roc_auc']:.3f}; naive rule PR AUC {n['pr_auc']:.3f}, ROC AUC {n['roc_auc']:.3f}. "
        f"Threshold {v['threshold']['threshold']:.3f} (F2 {v['threshold']['f2']:.3f}). Allocation {r['allocation']['chosen']}.",
        "",
        *_perf_table(v["allocation"]),
    ]
    if r["stopped"]:
        lines += ["", f"**Stopped:** {r['stopped']}."]
    else:
        t, nv, b = r["test"], r["naive"], r["backtest"]
        lines += [
            "",
            "## Test block",
            "",
            "| | PR AUC | ROC AUC | F2 | precision | recall |",
            "|---|---|---|---|---|---|",
            f"| crash model | {t['pr_auc']:.3f} | {t['roc_auc']:.3f} | {t['f2']:.3f} | {t['precision']:.3f} | {t['recall']:.3f} |",
            f"| naive rule | {nv['pr_auc']:.3f} | {nv['roc_auc']:.3f} | {nv['f2']:.3f} | {nv['precision']:.3f} | {nv['recall']:.3f} |",
            f"| base rate | {t['base_rate']:.3f} | 0.500 | | | |",
            "",
            *_perf_table(
                {
                    k: {p: b[f"{pre}{p}"] for p in PERF}
                    for k, pre in (
                        ("strategy", ""),
                        ("no_signal", "no_signal_"),
                        ("buy_and_hold", "bh_"),
                        ("ma_210", "ma_210_"),
                        ("momentum_126", "momentum_126_"),
                    )
                }
            ),
            "",
            "## Goals",
            "",
            *(
                f"- {k}: {g['value']:.4f} vs {g['target']:.4f} -> {'met' if g['met'] else 'NOT met'}"
                for k, g in r["goals"].items()
            ),
        ]
    if r["warnings"]:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in r["warnings"])]
    lines += ["", "Plots: " + (", ".join(r["plots"]) or "none"), ""]
    return "\n".join(lines)


def _perf_table(figures: dict) -> list[str]:
    out = ["| | CAGR | vol | Sharpe | Sortino | max DD | Calmar |", "|---|---|---|---|---|---|---|"]
    for name, p in figures.items():
        out.append(
            f"| {name} | {p['cagr']:.2%} | {p['volatility']:.2%} | {p['sharpe']:.2f} | {p['sortino']:.2f} | {p['max_drawdown']:.2%} | {p['calmar']:.2f} |"
        )
    return out
