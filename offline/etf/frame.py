"""The market frame every stage reads: indicators, the naive rule, the crash label, blocks and purged rows."""

from __future__ import annotations

import polars as pl

from offline.errors import UserError
from offline.etf import indicators as ind
from offline.etf.config import EtfConfig
from offline.etf.sources import RAW_COLUMNS
from offline.etf.splits import BLOCKS, assign_blocks, mark_label_rows


def label_text(cfg: EtfConfig) -> str:
    return (
        f"crash = 1 when the maximum drawdown of the close over the next {cfg.horizon} trading days "
        f"is at or below -{cfg.depth:.0%}"
    )


def build_frame(raw: pl.DataFrame, cfg: EtfConfig) -> pl.DataFrame:
    """Indicators, naive rule, interactions, crash label and blocks; warm-up rows dropped; `label_ok` purged."""
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise UserError(f"raw market frame lacks columns {missing}")
    if raw.height == 0 or (raw["close"] <= 0).any():
        raise UserError("raw market frame is empty or has non-positive closes")
    frame = ind.feature_frame(raw)
    if frame.height == 0:
        raise UserError(
            f"{raw.height} market days: the indicators' warm-up alone takes {ind.WARMUP}; add history"
        )
    close = pl.col("close")
    labels = ind.crash_label(raw.select("date_id", "close").sort("date_id"), cfg.horizon, cfg.depth).select(
        "date_id",
        "fwd_mdd",
        "crash",
        # the allocation's and the timing benchmarks' signals, on the whole history (no warm-up cut)
        (close / close.shift(cfg.momentum_window) - 1).alias("alloc_momentum"),
        (close / close.rolling_mean(cfg.ma_timing_window) - 1).alias("ma_gap"),
    )
    frame = frame.join(labels, on="date_id", how="left")
    return mark_label_rows(assign_blocks(frame, cfg), cfg.purge)


def block_summary(frame: pl.DataFrame, horizon: int) -> dict:
    """Rows, labelled rows, crash days, independent episodes and date range of each block."""
    out = {}
    for block in BLOCKS:
        part = frame.filter(pl.col("block") == block)
        lab = part.filter(pl.col("label_ok"))
        dated = part.height and part["date"].null_count() == 0
        out[block] = {
            "rows": part.height,
            "labelled_rows": lab.height,
            "crash_days": int(lab["crash"].sum() or 0),
            "base_rate": float(lab["crash"].mean()) if lab.height else None,
            "episodes": ind.crash_episodes(lab["crash"], horizon),
            "first": (str(part["date"][0]) if dated else int(part["date_id"][0])) if part.height else None,
            "last": (str(part["date"][-1]) if dated else int(part["date_id"][-1])) if part.height else None,
        }
    return out


def check_blocks(frame: pl.DataFrame, min_rows: int = 30) -> None:
    """Train and validation need labelled rows and crash days; an empty test block is allowed."""
    counts = dict(frame.filter(pl.col("label_ok")).group_by("block").len().iter_rows())
    for block, need in (("train", 5), ("validation", 3)):
        if counts.get(block, 0) < min_rows:
            raise UserError(
                f"the {block} block has {counts.get(block, 0)} labelled rows after warm-up and purge; "
                f"need at least {min_rows}: widen the data or move --train-end/--valid-end"
            )
        positives = frame.filter(pl.col("label_ok") & (pl.col("block") == block))["crash"].sum()
        if positives < need:
            raise UserError(
                f"the {block} block has {positives} crash days (need {need} to fit and calibrate); "
                "move --train-end/--valid-end or add data"
            )
