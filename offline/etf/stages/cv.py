"""Stage cv: every candidate (and its hyper-parameter grid) by purged walk-forward CV inside the train block.

Inputs: datasets/frame.parquet. Outputs: results/cv.json (CvResult), results/cv.csv. Each fold fits on
train rows before it minus a purge gap of at least the label horizon; the naive rule is scored on
the same fold rows. Survivors beat the rule's mean PR AUC and mean ROC AUC; each survivor's
calibration method is chosen by Brier on its pooled out-of-fold scores.
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

RULE = "survives when its CV-best point's mean PR AUC and mean ROC AUC both exceed the naive rule's"


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
            table.append(
                {
                    "candidate": cand.name,
                    "family": cand.family,
                    "params": params,
                    "pr_auc": float(np.nanmean([p["pr_auc"] for p in per])),
                    "roc_auc": float(np.nanmean([p["roc_auc"] for p in per])),
                    "fold_pr_auc": [p["pr_auc"] for p in per],
                    "fold_roc_auc": [p["roc_auc"] for p in per],
                }
            )
            scores[(cand.name, len(table) - 1)] = oof
    naive = next(r for r in table if r["candidate"] == BASELINE)
    for r in table:
        r["naive_pr_auc"], r["naive_roc_auc"] = naive["pr_auc"], naive["roc_auc"]
    best, best_scores = {}, {}
    for i, r in enumerate(table):
        if r["candidate"] not in best or r["pr_auc"] > best[r["candidate"]]["pr_auc"]:
            best[r["candidate"]], best_scores[r["candidate"]] = r, scores[(r["candidate"], i)]
    survivors = [
        n
        for n, r in best.items()
        if n != BASELINE and r["pr_auc"] > naive["pr_auc"] and r["roc_auc"] > naive["roc_auc"]
    ]
    y_oof = y[oof_idx]
    calibration = {}
    for n in survivors or [BASELINE]:
        cal = mdl.choose_calibration(best_scores[n], y_oof.astype(float))
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
        [
            {k: (str(v) if k == "params" else v) for k, v in r.items() if not k.startswith("fold")}
            for r in result.rows
        ]
    ).write_csv(results_dir(run_dir) / "cv.csv")
    return {
        "best": {n: [round(r["pr_auc"], 3), round(r["roc_auc"], 3)] for n, r in result.best.items()},
        "survivors": result.survivors,
    }
