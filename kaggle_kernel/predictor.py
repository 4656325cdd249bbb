"""State across gateway calls and predict(test, lag batches) -> one row of 424 predictions.

On Kaggle one exception fails the whole submission, so `predict` never raises: a failing part
(the feature step, the regime model, a target) falls back for that part only -- the last good
prediction or the naive baseline (each target's latest delivered label) -- writes one line to
stderr, and is counted in `self.errors`. The output is never constant, NaN or infinite.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from kaggle_kernel import batches
from kaggle_kernel.artifacts import check_artifacts
from kaggle_kernel.blend import PER_TARGET, Blend, BlendSpec, tie_groups
from kaggle_kernel.crash import CRASH_WINDOW, CrashModel
from kaggle_kernel.features import (
    BOOTSTRAP_DAYS,
    ETF_CRASH_PROB,
    HISTORY_DAYS,
    LABEL_WINDOW,
    REGIME_PROB,
    REPLAY_DAYS,
    WINDOW,
    FeatureInputs,
    FeatureSpec,
    day_features,
    instrument_arrays,
    usable_labels,
    usable_prices,
)
from kaggle_kernel.forest import Forest, Linear
from kaggle_kernel.local import LocalLinear
from kaggle_kernel.manifest import Manifest
from kaggle_kernel.schema import N_TARGETS, feature_columns
from kaggle_kernel.state import HISTORY_MARGIN, History

RAMP = np.linspace(-1.0, 1.0, N_TARGETS) * 1e-9  # deterministic tie-breaker, far below any signal


class Predictor:
    """Serve the packed models one trading day at a time."""

    def __init__(
        self,
        spec: FeatureSpec | None = None,
        forest: Forest | None = None,
        manifest: Manifest | None = None,
        problems: dict[str, str] | None = None,
    ):
        self.spec = spec or FeatureSpec()
        self.names = [t.name for t in self.spec.targets]
        self.columns = self.spec.price_columns(feature_columns())
        self.history = History(self.columns, len(self.names), keep_days=HISTORY_DAYS, ahead_days=REPLAY_DAYS)
        self.bootstrap_days = BOOTSTRAP_DAYS
        self.errors: Counter[str] = Counter()
        self.problems = dict(problems or {})
        self.last_good: np.ndarray | None = None
        self.groups = tie_groups(self.spec.targets)
        self.grouped = np.bincount(self.groups)[self.groups] > 1  # targets whose group has others
        self.tied_by_blend = False  # the day's values are a blend that ties its middle on purpose
        self.col = {n: i for i, n in enumerate(self.spec.all_features())}
        self.naive_cols = np.array([self.col[f"{n}_lab1"] for n in self.names])
        self.stage1: Forest | None = None
        self.stage2: Forest | None = None
        self.stage2_targets = np.zeros(0, dtype=np.int64)
        self.crash: CrashModel | None = None  # the ETF crash model, when the regressors use it
        self.crash_forest: Forest | None = None
        self.crash_history: History | None = None
        self.crash_prob = float("nan")  # the last computed probability (carried over gaps)
        self.blend: Blend | None = None  # the served blend of the candidates, when packaged
        self.served_day: int | None = None  # the day of the last batch (a batch without one follows it)
        if forest is not None:
            self._attach(forest, manifest)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_artifacts(cls, path: str | Path, data_dir: str | Path | None = None) -> Predictor:
        """Verify the manifest hashes, load the forest, bootstrap history; problems degrade, never raise."""
        path = Path(path)
        manifest, problems = check_artifacts(path)
        forest = None
        if manifest is not None and "forest.npz" not in problems:
            try:
                forest = Forest.load(path / "forest.npz")
            except batches.FAILURES as exc:
                problems["forest.npz"] = f"cannot load: {exc}"
        self = cls(forest=forest, manifest=manifest, problems=problems)
        for name, problem in sorted(self.problems.items()):
            self._log("artifacts", f"{name}: {problem}")
        snap = manifest.snapshot if manifest is not None else {}
        for kind in ("prices", "labels"):
            name = snap.get(kind)
            if name and name not in problems:
                self._guarded("bootstrap", self._bootstrap_file, path / name, kind)
        entry = manifest.blend if manifest is not None else None
        if entry:
            self._guarded("blend", self._attach_blend, path, entry, problems)
        entry = manifest.etf_crash if manifest is not None else None
        if entry:
            self._guarded("crash", self._attach_crash, path, entry, problems)
            if self.crash is not None and snap.get("crash_prices") not in (None, *problems):
                self._guarded("bootstrap", self._bootstrap_file, path / snap["crash_prices"], "crash")
        if data_dir is not None:
            data_dir = Path(data_dir)
            self._guarded("bootstrap", self._bootstrap_file, data_dir / "train.csv", "prices")
            self._guarded("bootstrap", self._bootstrap_file, data_dir / "train_labels.csv", "labels")
            if self.crash is not None:
                self._guarded("bootstrap", self._bootstrap_file, data_dir / "train.csv", "crash")
        return self

    def _attach_crash(self, path: Path, entry: dict, problems: dict[str, str]) -> None:
        bad = [f for f in (entry["forest"], entry["model"]) if f in problems]
        if bad:
            raise ValueError(f"{', '.join(bad)} unusable; the crash probability stays missing")
        crash = CrashModel.from_json(json.loads((path / entry["model"]).read_text()))
        forest = Forest.load(path / entry["forest"])
        if list(forest.feature_names) != crash.features:
            raise ValueError("crash.npz and crash.json disagree on the model's inputs")
        self.crash, self.crash_forest = crash, forest
        self.crash_history = History(
            crash.columns, 0, keep_days=CRASH_WINDOW + HISTORY_MARGIN, ahead_days=REPLAY_DAYS
        )

    def _attach_blend(self, path: Path, entry: dict, problems: dict[str, str]) -> None:
        bad = [f for f in entry.values() if f in problems]
        if bad:
            raise ValueError(f"{', '.join(bad)} unusable; serving the two-stage engine alone")
        spec = BlendSpec.from_json(json.loads((path / entry["spec"]).read_text()))
        pooled = Forest.load(path / entry["pooled"])
        ridge = Linear.from_json(json.loads((path / entry["ridge"]).read_text()))
        if list(pooled.feature_names) != self.spec.pooled_features():
            raise ValueError("pooled.npz's features differ from this kernel's pooled rows")
        if list(ridge.feature_names) != self.spec.pooled_features(structural=True):
            raise ValueError("ridge.json's features differ from this kernel's pooled rows")
        per_target = {m: LocalLinear.load(path / entry[m], self.spec) for m in PER_TARGET if entry.get(m)}
        self.blend = Blend(self.spec, spec, pooled, ridge, per_target)

    def _attach(self, forest: Forest, manifest: Manifest | None) -> None:
        try:
            if list(forest.feature_names) != self.spec.all_features():
                raise ValueError("the forest's feature vector differs from this kernel's features")
            stage1 = [m for m in (manifest.stage1 if manifest else ["regime"]) if m in forest.model_names]
            self.stage1 = forest.select(stage1) if stage1 else None
            targets = manifest.targets if manifest else {}
            pairs = [
                (m, int(t.removeprefix("target_"))) for t, m in targets.items() if m in forest.model_names
            ]
            if not targets:  # a forest without a manifest: models named like targets
                pairs = [
                    (m, int(m.removeprefix("target_"))) for m in forest.model_names if m.startswith("target_")
                ]
            if pairs:
                self.stage2 = forest.select([m for m, _ in pairs])
                self.stage2_targets = np.array([i for _, i in pairs], dtype=np.int64)
        except batches.FAILURES as exc:
            self.problems["forest.npz"] = str(exc)
            self._log("artifacts", f"forest.npz: {exc}")

    def _bootstrap_file(self, file: Path, kind: str) -> None:
        if not file.exists():
            return
        if file.suffix == ".parquet":
            frame = pl.read_parquet(file)
        else:
            frame = pl.read_csv(file, infer_schema_length=0)
        frame = frame.tail(
            CRASH_WINDOW + HISTORY_MARGIN + REPLAY_DAYS if kind == "crash" else self.bootstrap_days
        )
        days = batches.date_ids(frame)
        if days is None:
            raise ValueError(f"{file.name} has no date_id")
        if kind == "crash":
            for d, row in batches.combine_days(days, batches.numeric(frame, self.crash.columns)).items():
                self.crash_history.add_prices(d, row)
        elif kind == "prices":
            for d, row in batches.combine_days(days, batches.numeric(frame, self.columns)).items():
                self.history.add_prices(d, row)
        else:
            names, idx = batches.label_columns(frame, len(self.names))
            values = usable_labels(batches.numeric(frame, names))
            for d, row in zip(days, values, strict=True):
                if not np.isnan(d):
                    self.history.add_labels(int(d), idx, row)

    # ---- serving ------------------------------------------------------------------------------
    def predict(
        self,
        test,
        label_lags_1_batch=None,
        label_lags_2_batch=None,
        label_lags_3_batch=None,
        label_lags_4_batch=None,
    ) -> pl.DataFrame:
        """One row, target_0..target_423 float64, for the newest day in `test`."""
        values = None
        self.tied_by_blend = False
        try:
            day = self._update(
                test, (label_lags_1_batch, label_lags_2_batch, label_lags_3_batch, label_lags_4_batch)
            )
            values = self._forecast(day)
        except batches.FAILURES as exc:  # last line of defence; the parts below have their own
            self._count("predict", exc)
        return self._output(values)

    def _update(self, test, lag_batches) -> int:
        frame = batches.as_polars(test)
        days = batches.date_ids(frame)
        rows = usable_prices(self.spec, self.columns, batches.numeric(frame, self.columns))
        if days is None or np.isnan(days).all():
            last = self.history.last_day if self.served_day is None else self.served_day
            days = np.full(len(rows) or 1, (last + 1) if last is not None else 0, dtype=np.float64)
            if not len(rows):
                rows = np.full((1, len(self.columns)), np.nan)
            self.errors["batch"] += 1
            self._log("batch", "test batch without a usable date_id; assuming the next day")
        for d, row in batches.combine_days(days, rows).items():
            self.history.add_prices(d, row)
        day = self.served_day = int(np.nanmax(days))
        if self.crash_history is not None:
            self._guarded("crash", self._add_crash_prices, frame, days, day)
        for lag, lb in enumerate(lag_batches, start=1):
            self._guarded("labels", self._add_labels, lb, lag, day)
        self.history.prune(day)  # relative to the served day: a replayed window keeps its past
        return day

    def _add_crash_prices(self, frame: pl.DataFrame, days: np.ndarray, day: int) -> None:
        rows = batches.numeric(frame, self.crash.columns)
        if len(rows) == len(days):
            for d, row in batches.combine_days(days, rows).items():
                self.crash_history.add_prices(d, row)
        self.crash_history.prune(day)

    def _crash_probability(self, day: int) -> float:
        """The crash model's probability for `day`; the previous one when the day has no inputs."""
        days, values = self.crash_history.price_window(day, CRASH_WINDOW)
        window = pl.DataFrame(
            {"date_id": days, **dict(zip(self.crash.columns, values.T, strict=True))}, nan_to_null=True
        )
        x = self.crash.inputs(window)
        if not np.isnan(x).all():
            self.crash_prob = float(self.crash_forest.predict(x[None, :])[0, 0])
        return self.crash_prob

    def _add_labels(self, batch, lag: int, day: int) -> None:
        frame = batches.as_polars(batch)
        if frame.height == 0:
            return
        names, idx = batches.label_columns(frame, len(self.names))
        label_days = batches.date_ids(frame, "label_date_id")
        if label_days is None:
            sent = batches.date_ids(frame)
            label_days = (sent if sent is not None else np.full(frame.height, float(day))) - lag - 1
        values = usable_labels(batches.numeric(frame, names))  # a corrupt cell never replaces a held label
        for d, row in zip(label_days, values, strict=True):
            if not np.isnan(d):
                self.history.add_labels(int(d), idx, row)

    def _forecast(self, day: int) -> np.ndarray:
        x = self._guarded("features", self._features, day)
        if x is None:
            return self._fallback_values()
        naive = x[self.naive_cols]
        if self.stage1 is not None:
            self._guarded("regime", self._stage1, x)
        if self.crash is not None:
            p = self._guarded("crash", self._crash_probability, day)
            x[self.col[ETF_CRASH_PROB]] = np.nan if p is None else p
        out = naive.copy()
        if self.stage2 is not None:
            pred = self._guarded("regressors", lambda: self.stage2.predict(x[None, :])[0])
            if pred is not None:
                bad = ~np.isfinite(pred)
                if bad.any():
                    self._log("regressors", f"{int(bad.sum())} non-finite prediction(s); naive used for them")
                    pred = np.where(bad, naive[self.stage2_targets], pred)
                out[self.stage2_targets] = pred
        if self.blend is not None:
            blended = self._guarded("blend", self.blend.predict, x, out)
            if blended is not None:
                out = blended
                self.tied_by_blend = self.blend.blend_spec.ties > 0
        return out

    def _features(self, day: int) -> np.ndarray:
        pdays, pvals = self.history.price_window(day, WINDOW)
        ldays, lvals = self.history.label_window(day, LABEL_WINDOW)
        price, volume = instrument_arrays(self.spec, self.columns, pvals)
        return day_features(self.spec, FeatureInputs(pdays, price, volume, int(ldays[0]), lvals.T))

    def _stage1(self, x: np.ndarray) -> None:
        probs = self.stage1.predict(x[None, :])[0]
        for name, p in zip(self.stage1.model_names, probs, strict=True):
            if name == "regime":
                x[self.col[REGIME_PROB]] = p

    def _fallback_values(self) -> np.ndarray:
        if self.last_good is not None:
            return self.last_good.copy()
        return np.zeros(len(self.names))

    def _output(self, values: np.ndarray | None) -> pl.DataFrame:
        try:
            fallback = self._fallback_values()
            v = fallback if values is None else np.where(np.isfinite(values), values, np.nan)
            if values is not None and np.isnan(v).any():
                v = np.where(np.isnan(v), fallback, v)
            v = np.where(np.isfinite(v), v, 0.0)
            scale = max(1.0, float(np.abs(v).max()))
            if np.ptp(v) == 0 or (len(np.unique(v)) < len(v) // 2 and not self.tied_by_blend):
                v = v + RAMP * scale
            elif self.tied_by_blend:  # keep the blend's ties, but no group may be constant
                v = v + np.where(self._flat_groups(v), RAMP * scale, 0.0)
            if values is not None:
                self.last_good = v.copy()
            # one column transposed: ~20x cheaper than building 424 columns one by one
            return pl.DataFrame({"v": v.astype(np.float64)}).transpose(column_names=self.names)
        except batches.FAILURES as exc:  # cannot happen short of memory errors; still never raise
            self._count("output", exc)
            return pl.DataFrame({n: [float(RAMP[i])] for i, n in enumerate(self.names)})

    def _flat_groups(self, v: np.ndarray) -> np.ndarray:
        """Per target, whether its tie group holds fewer than two distinct values: a day that labels
        only that group's targets would see a constant forecast, which fails the metric."""
        order = np.lexsort((v, self.groups))
        g, sorted_v = self.groups[order], v[order]
        new = np.r_[True, (g[1:] != g[:-1]) | (sorted_v[1:] != sorted_v[:-1])]
        distinct = np.bincount(g[new])  # every group has a target, so every group is counted
        return (distinct < 2)[self.groups] & self.grouped

    # ---- error accounting ---------------------------------------------------------------------
    def _guarded(self, part: str, fn, *args):
        try:
            return fn(*args)
        except batches.FAILURES as exc:
            self._count(part, exc)
            return None

    def _count(self, part: str, exc: BaseException) -> None:
        self.errors[part] += 1
        self._log(part, f"{type(exc).__name__}: {exc}")

    def _log(self, part: str, message: str) -> None:
        print(f"[kit] {part}: {message}", file=sys.stderr, flush=True)
