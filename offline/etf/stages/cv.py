"""Stage cv: every candidate (and its hyper-parameter grid) by purged walk-forward CV inside the train block.

Inputs: datasets/frame.parquet. Outputs: results/cv.json (CvResult), results/cv.csv. Each fold fits on
train rows before it minus a purge gap of at least the label horizon; the naive rule is scored on
the same fold rows. The survival rule (RULE) was written before any validation figure of this pass:
a fold with fewer than MIN_FOLD_CRASH_DAYS crash days is not informative (its AUCs hinge on a
handful of days; the train block's last fold, 2012-2014, has one) and counts in no vote; over the
informative folds a candidate must beat the naive rule on PR AUC and ROC AUC in a strict majority of
them, and on both means. Each candidate's CV-best point is the one whose worse relative gain over the
rule (min of mean PR AUC / rule's, mean ROC AUC / rule's) is highest. The naive rule always
survives, so the final choice (stage fit) can fall back to it. Calibration is the rank-keeping
sigmoid (offline/etf/model.py); its Brier on the pooled out-of-fold scores is recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from offline.errors import UserError
from offline.etf import model as mdl
from offline.etf.candidates import BASELINE, CANDIDATES, fit, matrix
from offline.etf.config import EtfConfig
from offline.etf.files import CvResult
from offline.etf.splits import expanding_folds
from offline.etf.stages.common import FRAME, labelled, read_frame, results_dir

MIN_FOLD_CRASH_DAYS = 10
RULE = (
    f"survives when, over the folds with at least {MIN_FOLD_CRASH_DAYS} crash days, its CV-best point beats "
    "the naive rule on both PR AUC and ROC AUC in a strict majority of those folds and on both means; "
    "the naive rule always survives"
)


def relative_gain(row: dict, naive: dict) -> float:
    """The worse of a CV row's two relative gains over the naive rule (1.0 = the rule's own figures)."""
    return min(row["pr_auc"] / naive["pr_auc"], row["roc_auc"] / naive["roc_auc"])


def survives(row: dict, naive: dict) -> bool:
    """RULE for one CV row against the naive rule's row (per-fold figures over the informative folds)."""
    wins = [
        p > np_ and r > nr
        for p, r, np_, nr in zip(
            row["fold_pr_auc"], row["fold_roc_auc"], naive["fold_pr_auc"], naive["fold_roc_auc"], strict=True
        )
    ]
    means = row["pr_auc"] > naive["pr_auc"] and row["roc_auc"] > naive["roc_auc"]
    return means and 2 * sum(wins) > len(wins)


def cross_validate(rows: pl.DataFrame, cfg: EtfConfig) -> tuple[CvResult, dict[str, np.ndarray]]:
    """CvResult over `rows` (labelled train rows in time order) and each CV-best point's OOF scores."""
    y = rows["crash"].to_numpy().astype(int)
    # a fold whose training part holds one class only cannot fit a classifier: it is left out
    folds = [
        (tr, va) for tr, va in expanding_folds(rows.height, cfg.folds, cfg.purge) if 0 < y[tr].sum() < len(tr)
    ]
    if not folds:
        raise UserError(
            "no walk-forward fold of the train block has crash days to learn from: move --train-end"
        )
    informative = [int(y[va].sum()) >= MIN_FOLD_CRASH_DAYS for _, va in folds]
    if not any(informative):
        raise UserError(
            f"no walk-forward fold of the train block has {MIN_FOLD_CRASH_DAYS} crash days to score "
            "candidates on: move --train-end or add history"
        )
    oof_idx = np.concatenate([va for _, va in folds])
    table, scores = [], {}
    for cand in CANDIDATES:
        for params in cand.grid:
            oof = np.concatenate(
                [
                    fit(cand, params, rows[tr], cfg.seed, cfg.threads).predict(
                        matrix(rows[va], cand.features)
                    )
                    for tr, va in folds
                ]
            )
            per = [mdl.ranking(y[va], oof[np.isin(oof_idx, va)]) for _, va in folds]
            kept = [p for p, ok in zip(per, informative, strict=True) if ok]
            table.append(
                {
                    "candidate": cand.name,
                    "family": cand.family,
                    "params": params,
                    "pr_auc": float(np.mean([p["pr_auc"] for p in kept])),
                    "roc_auc": float(np.mean([p["roc_auc"] for p in kept])),
                    "fold_pr_auc": [p["pr_auc"] for p in kept],
                    "fold_roc_auc": [p["roc_auc"] for p in kept],
                    "all_fold_pr_auc": [p["pr_auc"] for p in per],
                    "all_fold_roc_auc": [p["roc_auc"] for p in per],
                }
            )
            scores[(cand.name, len(table) - 1)] = oof
    naive = next(r for r in table if r["candidate"] == BASELINE)
    for r in table:
        r["naive_pr_auc"], r["naive_roc_auc"] = naive["pr_auc"], naive["roc_auc"]
        r["relative_gain"] = relative_gain(r, naive)
        r["survives"] = r["candidate"] == BASELINE or survives(r, naive)
    best, best_scores = {}, {}
    for i, r in enumerate(table):
        if r["candidate"] not in best or r["relative_gain"] > best[r["candidate"]]["relative_gain"]:
            best[r["candidate"]], best_scores[r["candidate"]] = r, scores[(r["candidate"], i)]
    survivors = [n for n, r in best.items() if n != BASELINE and r["survives"]]
    y_oof = y[oof_idx].astype(float)
    calibration = {}
    for n in [BASELINE, *survivors]:
        cal = mdl.calibrate(best_scores[n], y_oof)
        calibration[n] = {"method": cal["method"], "brier": cal["brier"]}
    result = CvResult(
        rows=table,
        best=best,
        survivors=survivors,
        calibration=calibration,
        folds=len(folds),
        purge_rows=cfg.purge,
        train_rows=rows.height,
        rule=RULE,
    )
    return result, best_scores


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    rows = labelled(read_frame(run_dir, FRAME), "train")
    result, _ = cross_validate(rows, cfg)
    result.save(run_dir)
    pl.DataFrame(
        [{k: (str(v) if k == "params" else v) for k, v in r.items() if "fold" not in k} for r in result.rows]
    ).write_csv(results_dir(run_dir) / "cv.csv")
    return {
        "best": {n: [round(r["pr_auc"], 3), round(r["roc_auc"], 3)] for n, r in result.best.items()},
        "informative_folds": len(result.best[BASELINE]["fold_pr_auc"]),
        "survivors": result.survivors,
    }
