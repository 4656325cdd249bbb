"""The straightforward kernel the packed one is measured against: pandas history, pandas features,
one `lightgbm.Booster.predict` per model, the ridge and the rank blend in numpy.

Same contract as `kaggle_kernel.predictor.Predictor` (predict(test, lag1..lag4) -> 1 x 424) and the
same feature definitions as `kaggle_kernel.features`, written again in wide pandas (one column per
series) from the definitions rather than from that code, so agreement of the two kernels checks
both. Only the state policy is shared on purpose (bootstrap BOOTSTRAP_DAYS of the artifacts'
snapshot, keep HISTORY_DAYS before the newest day), since predictions depend on what history is kept.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import polars as pl

from kaggle_kernel import structure
from kaggle_kernel.blend import KEEP_PER_GROUP, RANK_SD, Z_CLIP
from kaggle_kernel.crash import CRASH_WINDOW, CrashModel
from kaggle_kernel.features import (
    ANNUAL,
    BOOTSTRAP_DAYS,
    CONTEXT_KEY_STATS,
    DEFAULT_KEY,
    DEFAULT_PROXY,
    FFILL_LIMIT,
    GENERIC_OWN,
    HISTORY_DAYS,
    KEY_LAGGED,
    KEY_STATS,
    LABEL_WINDOW,
    LEG_STATS,
    LSD_STATS,
    MARKET_FEATURES,
    PRIOR_DAYS,
    PRIOR_MIN,
    REGIME_FEATURES,
    RZ_DAYS,
    SCALED,
    SPREAD_STATS,
    STRUCT_STATS,
    VOL_STATS,
    WINDOW,
    WINDOWS,
)
from kaggle_kernel.schema import N_TARGETS, feature_columns, target_defs

KEEP_DAYS = HISTORY_DAYS  # the kernel's History keep_days
RAMP = np.linspace(-1.0, 1.0, N_TARGETS) * 1e-9  # the kernel's tie-breaker for constant rows


def _volume_of(col: str) -> str | None:
    if col.startswith("US_Stock_") and col.endswith("_adj_close"):
        return col[: -len("_close")] + "_volume"
    if col.startswith("JPX_") and col.endswith("_Close"):
        return col[: -len("_Close")] + "_Volume"
    return None


def _short(col: str) -> str:
    for prefix in ("US_Stock_",):
        col = col.removeprefix(prefix)
    for suffix in ("_adj_close", "_Close"):
        col = col.removesuffix(suffix)
    return col


def _to_pandas(frame) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame()
    return frame.to_pandas() if isinstance(frame, pl.DataFrame) else pd.DataFrame(frame)


def _numeric_rows(frame: pd.DataFrame, day_column: str, columns: list[str]) -> pd.DataFrame:
    """Float rows of `columns` (absent or unparseable -> NaN) indexed by the integer `day_column`."""
    block = frame.reindex(columns=[day_column, *columns])
    text = [c for c, dtype in block.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    if text:
        block[text] = block[text].apply(pd.to_numeric, errors="coerce")
    values = block.to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~np.isnan(values[:, 0])
    return pd.DataFrame(values[keep, 1:], index=pd.Index(values[keep, 0].astype(np.int64)), columns=columns)


def _coalesce(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    out = frame[columns[0]]
    for c in columns[1:]:
        out = out.combine_first(frame[c])
    return out


def _rank_rows(block: pd.DataFrame) -> pd.DataFrame:
    """Per row, the average rank among the non-NaN cells scaled to [-0.5, 0.5]; NaN with fewer than two."""
    count = block.notna().sum(axis=1)
    scaled = block.rank(axis=1, method="average").sub(0.5).div(count, axis=0) - 0.5
    return scaled.where(count >= 2, axis=0)


def _z_rows(block: pd.DataFrame) -> pd.DataFrame:
    """Per row, the finite cells' z-scores (population spread) clipped at Z_CLIP, times RANK_SD;
    NaN elsewhere and in rows with fewer than two, 0 in a row without spread."""
    block = block.where(np.isfinite(block))
    count = block.notna().sum(axis=1)
    centred = block.sub(block.mean(axis=1), axis=0)
    spread = block.std(axis=1, ddof=0)
    z = centred.div(spread.where(spread > 0, np.inf), axis=0)  # no spread: 0
    return (z.clip(-Z_CLIP, Z_CLIP) * RANK_SD).where(count >= 2, axis=0)


class NaiveKernel:
    """Per day: pandas rolling windows over the last WINDOW days, then every LightGBM model in turn."""

    def __init__(self, artifacts: str | Path, num_threads: int = 1):
        self.root = Path(artifacts)
        self.manifest = json.loads((self.root / "manifest.json").read_text())
        self.targets = target_defs()
        self.names = [t.name for t in self.targets]
        self.by_lag = {
            lag: [t.name for t in self.targets if t.lag == lag]
            for lag in sorted({t.lag for t in self.targets})
        }
        legs = [leg for t in self.targets for leg in (t.leg_a, t.leg_b) if leg]
        self.legs = list(dict.fromkeys(legs))
        self.instruments = list(dict.fromkeys([*self.legs, *DEFAULT_KEY, *DEFAULT_PROXY]))
        self._relate()
        have = set(feature_columns())
        vols = [_volume_of(c) for c in self.instruments]
        self.volume_columns = [
            v or f"<no volume for {c}>" for c, v in zip(self.instruments, vols, strict=True)
        ]
        self.columns = [c for c in dict.fromkeys([*self.instruments, *(v for v in vols if v)]) if c in have]
        self.boosters = {
            name: lgb.Booster(
                model_str=gzip.decompress((self.root / "models" / f"{name}.txt.gz").read_bytes()).decode()
            )
            for name in self.manifest["models"]
        }
        self.inputs = {name: b.feature_name() for name, b in self.boosters.items()}
        self.predict_params = {"num_threads": num_threads}
        self.stage1 = [m for m in self.manifest.get("stage1", []) if m in self.boosters]
        self.target_models = self.manifest.get("targets", {})
        self.prices = pd.DataFrame(columns=self.columns, dtype="float64")
        self.labels = pd.DataFrame(columns=self.names, dtype="float64")
        self.last_good: np.ndarray | None = None
        snap = self.manifest.get("snapshot", {})
        self.blend = None
        if entry := self.manifest.get(
            "blend"
        ):  # the candidates' blend: LightGBM's pooled booster, numpy ridge
            self.blend = json.loads((self.root / entry["spec"]).read_text())
            text = gzip.decompress((self.root / "models" / "pooled.txt.gz").read_bytes()).decode()
            self.pooled = lgb.Booster(model_str=text)
            self.ridge = json.loads((self.root / entry["ridge"]).read_text())
            self.per_target = {}  # the per-target linear members (local, leaders), by name
            for member in ("local", "leaders"):
                if entry.get(member):
                    with np.load(self.root / entry[member]) as z:
                        self.per_target[member] = {k: z[k] for k in z.files}
            self.classes = [
                (
                    float(structure.asset_class(t.leg_a)),
                    float(structure.asset_class(t.leg_b)) if t.leg_b else -1.0,
                )
                for t in self.targets
            ]
        self.crash = None
        if self.manifest.get("etf_crash"):  # the ETF crash model: the kernel's inputs, LightGBM's booster
            self.crash = CrashModel.from_json(json.loads((self.root / "crash.json").read_text()))
            text = gzip.decompress((self.root / "models" / "etf_crash.txt.gz").read_bytes()).decode()
            self.crash_booster = lgb.Booster(model_str=text)
            self.crash_prob = float("nan")
            frame = pd.read_parquet(self.root / snap["crash_prices"])
            self.crash_prices = frame.set_index("date_id")[self.crash.columns].astype("float64")
        if snap.get("prices"):
            frame = pd.read_parquet(self.root / snap["prices"]).tail(BOOTSTRAP_DAYS)
            self._add_prices(frame)
        if snap.get("labels"):
            frame = pd.read_parquet(self.root / snap["labels"]).tail(BOOTSTRAP_DAYS)
            self._add_labels(frame.rename(columns={"date_id": "label_date_id"}))

    def _relate(self) -> None:
        """Structural partners by name (structure.py), kept only where the partner is an instrument."""
        have = set(self.instruments)
        self.benchmark = {
            c: b for c in self.instruments if (b := structure.class_benchmark(c)) in have and b != c
        }
        self.residual = [c for c in self.benchmark if structure.has_residual(c)]
        self.peers: dict[str, list[str]] = {}
        for c in self.instruments:
            if group := structure.peer_group(c):
                self.peers.setdefault(group, []).append(c)
        self.metal = {c: m for c in self.instruments if (m := structure.related_metal(c)) in have}

    # ---- state ------------------------------------------------------------------------------
    def _add_prices(self, frame: pd.DataFrame) -> None:
        # one row per day; within a batch the later non-null cells of a day win
        rows = _numeric_rows(frame, "date_id", self.columns).groupby(level=0).last()
        kept = self.prices.drop(index=rows.index, errors="ignore")
        self.prices = pd.concat([kept, rows]).sort_index() if len(kept) else rows.sort_index()

    def _add_labels(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        new = _numeric_rows(frame, "label_date_id", self.names).groupby(level=0).last()
        days = self.labels.index.union(new.index)
        new, old = new.reindex(days), self.labels.reindex(days)
        self.labels = new.where(new.notna(), old)  # delivered cells fill in, the rest stay

    def _prune(self, day: int) -> None:
        """Forget days older than KEEP_DAYS before the served day (later days are kept)."""
        if len(self.prices):
            cutoff = day - KEEP_DAYS
            self.prices = self.prices[self.prices.index >= cutoff]
            self.labels = self.labels[self.labels.index >= cutoff]

    # ---- features ---------------------------------------------------------------------------
    def features(self, day: int) -> dict[str, float]:
        """Every feature of `day` by name (probabilities NaN), from the kept history."""
        window = self.prices.reindex(index=pd.RangeIndex(day - WINDOW + 1, day + 1))
        price = window.reindex(columns=self.instruments)
        volume = window.reindex(columns=self.volume_columns).set_axis(self.instruments, axis=1)
        logp = np.log(price).ffill(limit=FFILL_LIMIT)
        ret = {k: logp - logp.shift(k) for k in (1, *RZ_DAYS)}
        logv = np.log1p(volume)
        roll_v = logv.rolling(21, min_periods=10)
        volz = (logv - roll_v.mean()) / roll_v.std()
        r1 = ret[1]
        std21 = r1.rolling(21, min_periods=14).std()
        # the market: the first proxy's return, else the next one's, day by day
        market = _coalesce(ret[1], DEFAULT_PROXY)
        # returns net of the class benchmark (undefined without one, e.g. for VT itself)
        own, bench = list(self.benchmark), list(self.benchmark.values())
        b = {k: ret[k][bench].set_axis(own, axis=1) for k in (1, *RZ_DAYS)}
        beta = r1[own].rolling(63, min_periods=40).cov(b[1]) / b[1].rolling(63, min_periods=40).var()
        resid = {k: ret[k][own] - beta * b[k] for k in RZ_DAYS}
        # the last day's stats per instrument: window returns (log price `end` days back minus
        # `begin` days back), volatility now and lagged, returns in 21-day-vol units
        last: dict[str, pd.Series] = {}
        for name, (end, begin) in {**WINDOWS, **KEY_LAGGED}.items():
            last[name] = logp.iloc[-1 - end] - logp.iloc[-1 - begin]
        last["volz"] = volz.iloc[-1]
        last["std5"] = r1.rolling(5, min_periods=3).std().iloc[-1]
        for name, back in zip(VOL_STATS, (0, 5, 21), strict=True):
            last[name] = std21.iloc[-1 - back]
        for zname, rname in SCALED.items():
            end, begin = WINDOWS[rname]
            last[zname] = last[rname] / (last["std21"] * (begin - end) ** 0.5)
        for k in RZ_DAYS:
            scale = last["std21"] * k**0.5
            last[f"rz{k}"] = (resid[k].iloc[-1] / scale[own]).reindex(self.instruments)
        f: dict[str, float] = {}
        f.update(self._regime(market))
        for c in DEFAULT_KEY:
            for stat in (*KEY_STATS, *KEY_LAGGED):
                f[f"key_{_short(c)}_{stat}"] = last[stat][c]
        for leg in self.legs:
            for stat in LEG_STATS:
                f[f"leg_{leg}_{stat}"] = last[stat][leg]
        struct = self._structural(ret, r1, resid)
        f.update(self._own(day, {stat: last[stat] for stat in SPREAD_STATS}, struct))
        f["regime_prob"] = np.nan
        f["etf_crash_prob"] = np.nan
        return {k: float(v) for k, v in f.items()}

    @staticmethod
    def _regime(r: pd.Series) -> dict[str, float]:
        level = r.fillna(0.0).cumsum()
        rv5 = r.rolling(5, min_periods=4).std() * ANNUAL
        rv21 = r.rolling(21, min_periods=15).std() * ANNUAL
        rv63 = r.rolling(63, min_periods=40).std() * ANNUAL
        out = {
            "px_ret1": r,
            "px_rv5": rv5,
            "px_rv21": rv21,
            "px_rv63": rv63,
            "px_ts_5_21": rv5 / rv21,
            "px_ts_21_63": rv21 / rv63,
            "px_vov21": rv5.rolling(21, min_periods=15).std(),
            "px_dd63": level - level.rolling(63, min_periods=1).max(),
            "px_rv21_L5": rv21.shift(5),
            "px_rv21_L21": rv21.shift(21),
        }
        assert set(out) == {*REGIME_FEATURES, *MARKET_FEATURES}
        return {k: v.iloc[-1] for k, v in out.items()}

    def _structural(
        self, ret: dict[int, pd.DataFrame], r1: pd.DataFrame, resid: dict[int, pd.DataFrame]
    ) -> dict[str, pd.Series]:
        """Per STRUCT_STATS name, each instrument's value on the last day (lagged ones k days before).

        res5/res21/res63: the return net of beta x the class benchmark's return; peer5: the 5-day return in
        63-day vols minus the peers' mean of it, back in the instrument's vol; leadlag: the related
        metal's 5-day return in its own 63-day vols, times the instrument's vol, per day (/5).
        0 wherever undefined or not finite.
        """
        vol = r1.rolling(63, min_periods=40).std()
        z5 = ret[5] / vol
        parts = {f"res{k}": [resid[k][self.residual]] for k in RZ_DAYS}
        parts["peer5"] = [
            vol[cols] * z5[cols].sub(z5[cols].mean(axis=1), axis=0) for cols in self.peers.values()
        ]
        users, metals = list(self.metal), list(self.metal.values())
        parts["leadlag"] = [vol[users] * z5[metals].set_axis(users, axis=1) / 5]
        base = {}
        for stat, frames in parts.items():
            wide = pd.concat([r1.iloc[:, :0], *frames], axis=1).reindex(columns=self.instruments)
            base[stat] = wide.where(np.isfinite(wide), 0.0)
        out = {}
        for name in STRUCT_STATS:
            stat, _, lag = name.partition("_L")
            out[name] = base[stat].iloc[-1 - int(lag or 0)]
        return out

    def _own(self, day: int, last: dict[str, pd.Series], struct: dict[str, pd.Series]) -> dict[str, float]:
        labels = self.labels.reindex(index=pd.RangeIndex(day - LABEL_WINDOW + 1, day + 1), columns=self.names)
        values: dict[str, np.ndarray] = {}
        for k in (1, 2, 3):
            lab = pd.concat([labels[cols].shift(lag + k).iloc[-1] for lag, cols in self.by_lag.items()])
            values[f"lab{k}"] = lab.reindex(self.names).to_numpy()
        # the prior: over the PRIOR_DAYS newest delivered label days (day-L-PRIOR_DAYS .. day-L-1),
        # the mean label and the mean of its daily rank among the targets of the same lag
        means, ranks = [], []
        for lag, cols in self.by_lag.items():
            block = labels[cols].loc[day - lag - PRIOR_DAYS : day - lag - 1]
            for out, v in ((means, block), (ranks, _rank_rows(block))):
                out.append(v.mean().where(v.notna().sum() >= PRIOR_MIN))
        values["lmean"] = pd.concat(means).reindex(self.names).to_numpy()
        values["lrank"] = pd.concat(ranks).reindex(self.names).to_numpy()
        leg_a = [t.leg_a for t in self.targets]
        # a single-leg target has no leg b: the kernel leaves its spread stats null, and so do we
        leg_b = [t.leg_b or "" for t in self.targets]
        for stat, row in last.items():
            values[f"s{stat}"] = row.reindex(leg_a).to_numpy() - row.reindex(leg_b).to_numpy()
        # structural stats: horizon x (leg a - leg b), a missing leg b counting as 0
        lags = np.array([t.lag for t in self.targets], dtype=np.float64)
        for stat, row in struct.items():
            spread = row.reindex(leg_a).to_numpy() - row.reindex(leg_b, fill_value=0.0).to_numpy()
            values[f"lsd_{stat}"] = lags * spread
        return {f"{name}_{stat}": v[i] for stat, v in values.items() for i, name in enumerate(self.names)}

    def _pooled_row(self, t, f: dict[str, float], cls: tuple[float, float]) -> dict[str, float]:
        """One target's pooled row by name: own stats, leg A's and B's stats, the day's context, constants."""
        row = {f"own_{s}": f[f"{t.name}_{s}"] for s in (*GENERIC_OWN, *LSD_STATS)}
        for side, leg in (("a", t.leg_a), ("b", t.leg_b)):
            row.update({f"{side}_{s}": f[f"leg_{leg}_{s}"] if leg else np.nan for s in LEG_STATS})
        context = [*REGIME_FEATURES, *MARKET_FEATURES, "regime_prob"]
        context += [f"key_{_short(c)}_{s}" for c in DEFAULT_KEY for s in CONTEXT_KEY_STATS]
        row.update({n: f[n] for n in context})
        row.update({"lag": float(t.lag), "class_a": cls[0], "class_b": cls[1]})
        return row

    # ---- serving ----------------------------------------------------------------------------
    def _predict_one(self, name: str, f: dict[str, float]) -> float:
        row = np.array([[f[n] for n in self.inputs[name]]], dtype=np.float64)
        return float(self.boosters[name].predict(row, **self.predict_params)[0])

    def predict(
        self,
        test,
        label_lags_1_batch=None,
        label_lags_2_batch=None,
        label_lags_3_batch=None,
        label_lags_4_batch=None,
    ) -> pd.DataFrame:
        """One row, target_0..target_423, for the newest day in `test`."""
        test = _to_pandas(test)
        self._add_prices(test)
        day = int(pd.to_numeric(test["date_id"]).max())
        for lag, batch in enumerate(
            (label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch), 1
        ):
            frame = _to_pandas(batch)
            if not frame.empty and "label_date_id" not in frame:
                frame = frame.assign(label_date_id=pd.to_numeric(frame["date_id"]) - lag - 1)
            self._add_labels(frame)
        self._prune(day)
        f = self.features(day)
        if self.crash is not None:
            f["etf_crash_prob"] = self._crash_probability(test, day)
        for name in self.stage1:
            f[f"{name}_prob"] = self._predict_one(name, f)
        naive = np.array([f[f"{n}_lab1"] for n in self.names])
        values = naive.copy()
        for i, name in enumerate(self.names):
            model = self.target_models.get(name)
            if model in self.boosters:
                pred = self._predict_one(model, f)
                values[i] = pred if np.isfinite(pred) else naive[i]
        if self.blend is not None:
            values = self._blend(f, values)
        return self._output(values)

    def _blend(self, f: dict[str, float], engine: np.ndarray) -> np.ndarray:
        """Each weighted member's predictions ranked (or z-scored) across the blend's targets, weighted
        and summed."""
        rows = [self._pooled_row(t, f, c) for t, c in zip(self.targets, self.classes, strict=True)]
        frame = pd.DataFrame(rows)
        members = {
            "prior": lambda: np.array(
                [np.nan if v is None else v for v in self.blend["prior"]], dtype=np.float64
            ),
            "engine": lambda: engine,
            "pooled": lambda: self.pooled.predict(
                frame[self.pooled.feature_name()].to_numpy(dtype=np.float64), **self.predict_params
            ),
            "ridge": lambda: self._ridge(frame),
            "local": lambda: self._per_target("local", f),
            "leaders": lambda: self._per_target("leaders", f),
            "recent": lambda: np.array([f[f"{t.name}_lrank"] for t in self.targets], dtype=np.float64),
        }
        targets = list(self.blend["targets"])
        total = pd.Series(0.0, index=targets)
        scale = _z_rows if self.blend.get("scale", "rank") == "z" else _rank_rows
        for m, w in zip(self.blend["members"], self.blend["weights"], strict=True):
            if w:
                pred = pd.Series(members[m](), dtype=np.float64)[targets]
                total += w * scale(pred.to_frame().T).iloc[0].fillna(0.0)
        factors = self.blend.get("factors", [])
        counts = self.blend.get("counts") or [len(factors)]
        parts = []
        for k in counts:  # per count, one factor at a time: the residual of its projection, ranked again
            resid = total - total.mean()
            for f in factors[:k]:
                resid = resid - float(np.dot(resid.to_numpy(), f)) * pd.Series(f, index=targets)
            parts.append(_rank_rows(resid.to_frame().T).iloc[0] if k else total)
        total = parts[0] if len(parts) == 1 else _rank_rows(sum(parts).to_frame().T).iloc[0]
        share = float(self.blend.get("ties", 0.0))
        if share > 0:
            total = self._tie_middle(total, share)
        out = np.asarray(engine, dtype=np.float64).copy()
        out[targets] = total.to_numpy()
        return out

    def _tie_middle(self, total: pd.Series, share: float) -> pd.Series:
        """The share of values nearest the median set to it, but the KEEP_PER_GROUP farthest of each
        (exchanges of the legs, lag) group kept."""
        mid = float(total.median())
        dist = (total - mid).abs()
        tied = dist <= float(dist.quantile(share))
        groups: dict[tuple, list[int]] = {}
        for t in total.index:
            d = self.targets[t]
            legs = [d.leg_a] + ([d.leg_b] if d.leg_b else [])
            groups.setdefault((tuple(sorted({leg.split("_")[0] for leg in legs})), d.lag), []).append(t)
        for members in groups.values():
            for t in sorted(members, key=lambda t: (-dist[t], t))[:KEEP_PER_GROUP]:
                tied[t] = False
        return total.where(~tied, mid)

    def _ridge(self, frame: pd.DataFrame) -> np.ndarray:
        r = self.ridge
        z = (frame[r["feature_names"]].to_numpy(dtype=np.float64) - np.array(r["mean"])) / np.array(
            r["scale"]
        )
        z = np.nan_to_num(np.clip(z, -r["clip"], r["clip"]), nan=0.0)
        return z @ np.array(r["coef"]) + r["intercept"]

    def _per_target(self, member: str, f: dict[str, float]) -> np.ndarray:
        """Each target's own linear model: its layout's features by name, standardized and clipped."""
        m = self.per_target[member]
        x = np.array(
            [[f.get(name.format(target=t.name), np.nan) for name in m["layout"]] for t in self.targets],
            dtype=np.float64,
        )
        z = np.nan_to_num(np.clip((x - m["mean"]) / m["scale"], -m["clip"], m["clip"]), nan=0.0)
        return (z * m["coef"]).sum(axis=1) + m["intercept"]

    def _crash_probability(self, test: pd.DataFrame, day: int) -> float:
        rows = _numeric_rows(test, "date_id", self.crash.columns).groupby(level=0).last()
        kept = self.crash_prices.drop(index=rows.index, errors="ignore")
        self.crash_prices = pd.concat([kept, rows]).sort_index().loc[day - CRASH_WINDOW - 16 :]
        window = self.crash_prices.reindex(pd.RangeIndex(day - CRASH_WINDOW + 1, day + 1))
        frame = pl.from_pandas(window.rename_axis("date_id").reset_index(), nan_to_null=True)
        x = self.crash.inputs(frame.with_columns(pl.col("date_id").cast(pl.Int64)))
        if not np.isnan(x).all():
            self.crash_prob = float(self.crash_booster.predict(x[None, :])[0])
        return self.crash_prob

    def _output(self, values: np.ndarray) -> pd.DataFrame:
        fallback = self.last_good if self.last_good is not None else np.zeros(N_TARGETS)
        v = np.where(np.isfinite(values), values, fallback)
        if np.ptp(v) == 0 or len(np.unique(v)) < len(v) // 2:
            v = v + RAMP * max(1.0, float(np.abs(v).max()))
        self.last_good = v.copy()
        return pd.DataFrame([v], columns=self.names)
