"""What a training run leaves in its directory: models/ and models.json (what `make package` packs),
the OOF predictions (blend and each candidate), report.json, report.md and the plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from kaggle_kernel.blend import PER_TARGET
from kaggle_kernel.features import REGIME_PROB
from kaggle_kernel.schema import TargetDef
from offline.release.forest_export import write_npz
from offline.train.checkpoint import atomic_write
from offline.train.cv import Fold
from offline.train.dataset import Dataset
from offline.train.regime import RegimeResult
from offline.train.run_files import (
    BlendFiles,
    CvScores,
    EtfCrashFiles,
    ModelsFile,
    RegimeFile,
    TargetFile,
    TrainReport,
)

if TYPE_CHECKING:
    from offline.data.competition import Competition
    from offline.train.engine import Blend, Candidates, Regressors


def write_outputs(
    out: Path,
    data: Dataset,
    regime: RegimeResult,
    regressors: Regressors,
    targets: list[TargetDef],
    cands: Candidates,
    blend: Blend,
    report: TrainReport,
    folds: list[Fold],
    comp: Competition,
) -> None:
    """models/ and models.json (what `make package` packs), the OOF parquet files, report.json/.md, plots;
    `comp` is the loaded data (the ETF crash model's final fit reads its prices)."""
    from offline.train.report import write_plots, write_report_md

    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir(parents=True)
    atomic_write(models / "regime.txt", regime.model_text)
    entries = {}
    for t in targets:
        r = regressors.results[t.index]
        file = None
        if r.model_text is not None:
            file = f"models/{t.name}.txt"
            atomic_write(out / file, r.model_text)
        entries[t.name] = TargetFile(t.index, t.lag, t.pair, r.fallback, file)
    etf_files = None
    if report.etf_crash_prob.used:
        from offline.etf.export import final_crash_model

        crash, text = final_crash_model(comp, until=report.data.until)
        etf_files = EtfCrashFiles("models/etf_crash.txt", "models/etf_crash.json")
        atomic_write(out / etf_files.file, text)
        atomic_write(out / etf_files.model, json.dumps(crash.to_json(), indent=1))
    files = BlendFiles(
        "models/blend.json",
        "models/pooled.txt",
        "models/ridge.json",
        "models/local.npz",
        "models/leaders.npz",
    )
    for member in PER_TARGET:
        write_npz(out / getattr(files, member), cands.fits[member].final.arrays())
    atomic_write(out / files.pooled, cands.fits["pooled"].final)
    atomic_write(out / files.ridge, json.dumps(cands.fits["ridge"].final.to_json(), indent=1))
    atomic_write(out / files.spec, json.dumps(blend.spec.to_json(), indent=1))
    ModelsFile(
        regime=RegimeFile("models/regime.txt", regime.features, "classifier"),
        targets=entries,
        blend=files,
        target_mode=report.target_mode.chosen,
        data=report.data,
        cv=CvScores(report.oof_score, report.regime.roc_auc),
        etf_crash=etf_files,
    ).write(out)
    names = {t.index: t.name for t in targets}
    oof = pl.DataFrame(
        {
            "date_id": data.date_ids,
            REGIME_PROB: regime.oof_prob,
            **{names[i]: blend.oof[:, i] for i in sorted(names)},
        }
    ).with_columns(pl.all().fill_nan(None))
    oof.write_parquet(out / "oof.parquet")
    # each candidate's OOF predictions, for compare and re-blending
    for name, P_member in cands.oof().items():
        frame = {"date_id": data.date_ids, **{names[i]: P_member[:, i] for i in sorted(names)}}
        pl.DataFrame(frame).with_columns(pl.all().fill_nan(None)).write_parquet(out / f"oof_{name}.parquet")
    report.write(out)
    write_plots(out / "plots", data, regime, report, folds)
    write_report_md(out / "report.md", report)
