"""Stage prep: daily data -> indicators, naive rule, crash label and fixed blocks; writes config.json.

Inputs: cfg.source. Outputs: config.json, datasets/frame.parquet, datasets/source.json (SourceInfo).
"""

from __future__ import annotations

from pathlib import Path

from offline.etf.config import EtfConfig, save_config
from offline.etf.files import SourceInfo
from offline.etf.frame import block_summary, build_frame, check_blocks, label_text
from offline.etf.sources import load_source
from offline.etf.stages.common import FRAME, write_frame


def run(run_dir: Path, cfg: EtfConfig) -> dict:
    cfg.validate()
    raw, info = load_source(cfg.source, cfg)
    frame = build_frame(raw, cfg)
    check_blocks(frame)
    save_config(run_dir, cfg)
    write_frame(frame, run_dir, FRAME)
    source = SourceInfo(
        source=info["source"],
        market=info["market"],
        defensive=list(info["defensive"]),
        stand_ins=info.get("stand_ins", {}),
        label=label_text(cfg),
        blocks=block_summary(frame, cfg.horizon),
        has_defensive=bool(frame["def_ret"].null_count() < frame.height),
    )
    source.save(run_dir)
    return {"blocks": {k: v["rows"] for k, v in source.blocks.items()}, "stand_ins": sorted(source.stand_ins)}
