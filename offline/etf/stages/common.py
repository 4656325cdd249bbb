"""Run-directory paths and frame I/O shared by the stages."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from offline.errors import UserError

FRAME = "datasets/frame.parquet"
PREDICTIONS = "datasets/predictions.parquet"


def read_frame(run_dir: Path, rel: str) -> pl.DataFrame:
    path = Path(run_dir) / rel
    if not path.exists():
        raise UserError(f"{path} is missing: run the earlier etf stages first (python -m offline etf all)")
    return pl.read_parquet(path)


def write_frame(frame: pl.DataFrame, run_dir: Path, rel: str) -> None:
    path = Path(run_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def results_dir(run_dir: Path) -> Path:
    path = Path(run_dir) / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def labelled(frame: pl.DataFrame, block: str) -> pl.DataFrame:
    return frame.filter((pl.col("block") == block) & pl.col("label_ok"))
