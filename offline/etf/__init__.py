"""ETF crash prediction and momentum allocation: nine stages, every reported number out of sample.

Stages (`python -m offline etf <stage> --out DIR`, or `all`; functions in offline.etf.stages):
prep, features, regime, hyperopt, train, threshold, evaluate, scan, backtest. Each reads the
previous stages' files from the run directory (config.json, datasets/, models/, results/), so any
stage can be rerun alone. Sources: "sp500" (arch's S&P 500 1999-2018 + VIX 2014-2018; train
through 2010, validation 2011-2014, test 2015-2018) or a competition directory (market = first of
VT/ACWI/... with data, defensive = equal-weight BND/AGG/IEF; splits by date_id fraction).

Crash label: 1 when the maximum drawdown of the close over the next `horizon` (20) trading days
is at or below -`depth` (8%). Model files: models/crash_model.txt (LightGBM text),
models/calibration.json, models/regime.json, models/model_meta.json (feature list).

For the engine: `offline.etf.oof.oof_crash_probability(comp, config=None, params=None)` returns a
polars frame [date_id, etf_crash_prob] of walk-forward probabilities for a competition (or its
directory): each chunk is predicted by a model fit only on earlier, purged rows, so the 424
regressors never train on in-sample probabilities. Feature code for that source lives in
offline/etf/indicators.py as polars expressions.
"""

from offline.etf.config import EtfConfig
from offline.etf.oof import oof_crash_probability

__all__ = ["EtfConfig", "oof_crash_probability"]
