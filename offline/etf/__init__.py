"""ETF crash prediction and momentum allocation, designed on data through 2018 and frozen.

Stages (`python -m offline etf <stage> --out DIR`, or `all`; one module each in offline/etf/stages):
prep, cv, fit, threshold, scan, test. A design run (`--search`) scores every candidate of
offline/etf/candidates.py by purged walk-forward CV inside the train block against the naive
volatility rule; validation picks the model among the survivors, its calibration map, the
threshold and the allocation; `python -m offline etf freeze` writes offline/etf/frozen.json. Every
later run follows that frozen design: it refits the weights (train), calibration and threshold
(validation) and evaluates the test block once. Sources: "sp500", "nasdaq" (arch's indexes), a
CSV file (Date, Close, optional Open/High/Low/Volume/VIX) or a competition directory.

For the engine: `offline.etf.oof_crash_probability(comp)` returns a polars frame [date_id,
etf_crash_prob] of walk-forward probabilities of the frozen model family on a competition's market
ETF; offline.etf.export.final_crash_model gives the served model.
"""

from offline.etf.config import EtfConfig
from offline.etf.oof import oof_crash_probability

__all__ = ["EtfConfig", "oof_crash_probability"]
