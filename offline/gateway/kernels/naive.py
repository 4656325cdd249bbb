"""Naive baseline kernel: each target's most recently delivered label, plus a tiny tie-breaker.

State across calls: the latest label per target (by label_date_id) from the lag batches. Targets
never seen yet count as 0. A deterministic offset of 1e-9 * (i + 1) / n for target i breaks
ties, so the row is never constant (the metric fails on a constant day), even on the first day.
Kaggle's notebook convention: define predict, build the server, serve() on a rerun.
"""

import os

import kaggle_evaluation.mitsui_inference_server
import numpy as np
import polars as pl

TIE_BREAK = 1e-9
KAGGLE_DATA = "/kaggle/input/mitsui-commodity-prediction-challenge/"

_names: list[str] = []
_latest = np.zeros(0)
_latest_date = np.zeros(0)


def _target_names(batches) -> list[str]:
    names = [c for b in batches for c in b.columns if c.startswith("target_")]
    return sorted(names, key=lambda n: int(n.removeprefix("target_")))


def predict(test, label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch):
    global _names, _latest, _latest_date
    batches = (label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch)
    if not _names:
        _names = _target_names(batches)
        _latest = np.full(len(_names), np.nan)
        _latest_date = np.full(len(_names), -np.inf)
    position = {n: i for i, n in enumerate(_names)}
    for batch in batches:
        cols = [c for c in batch.columns if c.startswith("target_")]
        if batch.height == 0 or not cols:
            continue
        idx = np.array([position[c] for c in cols])
        values = batch.select(pl.col(cols).cast(pl.Float64)).to_numpy()
        dates = batch["label_date_id"].cast(pl.Float64).to_numpy()
        for row, date in zip(values, dates, strict=True):
            fresh = ~np.isnan(row) & (date >= _latest_date[idx])
            _latest[idx[fresh]] = row[fresh]
            _latest_date[idx[fresh]] = date
    n = len(_names)
    offsets = TIE_BREAK * (np.arange(n) + 1) / n
    values = np.where(np.isnan(_latest), 0.0, _latest) + offsets
    if np.ptp(values) == 0:  # only if the labels exactly cancel the offsets
        values = values + offsets * 1e3
    return pl.DataFrame({name: [float(v)] for name, v in zip(_names, values, strict=True)})


inference_server = kaggle_evaluation.mitsui_inference_server.MitsuiInferenceServer(predict)

if os.getenv("KAGGLE_IS_COMPETITION_RERUN"):
    inference_server.serve()
else:
    inference_server.run_local_gateway((os.environ.get("KAGGLE_KIT_DATA_DIR", KAGGLE_DATA),))
