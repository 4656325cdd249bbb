"""`make train`: features -> regime classifier (OOF) -> target mode -> ETF feature -> 424 regressors
(OOF + final) -> candidates -> nested blend -> baselines, ablation, oracle -> report and files.

Each step is a function from typed values to a typed value; `train` is their sequence. Everything a
number in the report rests on is out of fold: the regressors train on the regime model's
out-of-fold probability, and every score is computed on the walk-forward test blocks.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from kaggle_kernel.blend import BlendSpec, tie_groups
from kaggle_kernel.features import ETF_CRASH_PROB, PROBABILITIES, REGIME_PROB, FeatureSpec
from kaggle_kernel.schema import TargetDef
from offline.data.competition import Competition
from offline.data.verify import load_verified
from offline.errors import UserError
from offline.progress import progress
from offline.train import baselines, candidates
from offline.train.blending import nested_blend
from offline.train.checkpoint import CheckpointStore, fingerprint
from offline.train.config import MODES, TrainConfig
from offline.train.cv import Fold, blend_days, oof_mask, walk_forward
from offline.train.dataset import Dataset, build_dataset, with_column
from offline.train.evaluate import decide, decide_score, paired_gain, score_block, target_ics
from offline.train.executors import run_tasks
from offline.train.leaders import leaders
from offline.train.outputs import write_outputs
from offline.train.regime import RegimeResult, train_regime
from offline.train.regressors import TargetResult, TargetTask, fit_target, rank_per_day
from offline.train.run_files import (
    Ablation,
    BlendReport,
    CandidateScores,
    DataInfo,
    EtfDecision,
    Fallback,
    FoldScore,
    OracleScore,
    RegimeScores,
    Scored,
    TargetIcs,
    TargetModeReport,
    TrainReport,
    Tuning,
)
from offline.train.shared import SharedFit, fit_shared

ABLATIONS = {
    "no_regime": lambda spec, t: [REGIME_PROB],
    "no_cross_asset": lambda spec, t: list(spec.key_features),
    "no_own_lags": lambda spec, t: [f"{t.name}_lab{k}" for k in (1, 2, 3)],
}


def make_tasks(
    data: Dataset,
    targets: list[TargetDef],
    folds: list[Fold],
    cfg: TrainConfig,
    drop=None,
    probs: tuple[str, ...] = (REGIME_PROB,),
    final: bool = True,
) -> list[TargetTask]:
    """One task per target: its feature columns (with the stage-1 probabilities `probs`, less what
    `drop` names), folds, parameters and whether to refit on every day (with no folds: only that);
    legs missing from the data make it fall back."""
    col = data.col
    tasks = []
    for t in targets:
        feats = data.spec.target_features(t, list(probs))
        if drop is not None:
            gone = set(drop(data.spec, t))
            feats = [f for f in feats if f not in gone]
        missing = [leg for leg in (t.leg_a, t.leg_b) if leg is not None and leg not in data.price_columns]
        tasks.append(
            TargetTask(
                index=t.index,
                name=t.name,
                columns=[col[f] for f in feats],
                feature_names=feats,
                naive_column=col[f"{t.name}_lab1"],
                folds=folds,
                params=dict(cfg.params),
                seed=cfg.seed,
                min_labels=cfg.min_labels,
                missing_legs=missing,
                final=final,
            )
        )
    return tasks


@dataclass(frozen=True)
class Execution:
    """Where the per-target fits run: local joblib processes or a dask cluster (`run_tasks`'s arguments)."""

    executor: str = "local"
    n_jobs: int | None = None
    scheduler: str | None = None


def data_fingerprint(data: Dataset, Ytrain: np.ndarray, shared: SharedFit) -> str:
    """What every per-target fit of a variant reads besides its task: features, labels, shared model."""
    return fingerprint(data.X, Ytrain, shared.model_text)


def run_variant(
    data_fp: str,
    data: Dataset,
    Ytrain: np.ndarray,
    shared: SharedFit,
    tasks: list[TargetTask],
    store: CheckpointStore,
    variant: dict,
    execution: Execution,
    desc: str,
) -> dict[int, TargetResult]:
    """Fit every task not already checkpointed under the same fingerprint; return all results."""
    results: dict[int, TargetResult] = {}
    todo = []
    fps = {}
    for task in tasks:
        fps[task.index] = fingerprint(variant, data_fp, asdict(task))
        cached = store.load(task.name, fps[task.index])
        if cached is not None:
            results[task.index] = cached
        else:
            todo.append(task)
    label = f"{desc} ({len(results)} checkpointed)" if results else desc
    fitted = run_tasks(
        fit_target, todo, (data.X, Ytrain, shared), execution.executor, execution.n_jobs, execution.scheduler
    )
    for res in progress(fitted, total=len(todo), desc=label, unit="target"):
        store.save(res, fps[res.index])
        results[res.index] = res
    return results


def _oof_matrix(results: dict[int, TargetResult], n_days: int, n_targets: int) -> np.ndarray:
    P = np.full((n_days, n_targets), np.nan)
    for i, r in results.items():
        P[:, i] = r.oof
    return P


# ---- the steps of a training run: each takes typed values and returns one -------------------------
@dataclass(frozen=True)
class Features:
    """The validated competition, its features and labels by day, and the walk-forward folds."""

    comp: Competition
    data: Dataset
    folds: list[Fold]
    mask: np.ndarray  # the days some fold tests


def build_features(data_dir: Path | str, cfg: TrainConfig) -> Features:
    """Load and validate (what `data verify` rejects is rejected here), build features, define folds."""
    comp = load_verified(data_dir)
    spec = FeatureSpec()
    data = build_dataset(comp, spec, cfg.until)
    folds = walk_forward(len(data.date_ids), cfg.n_folds, cfg.gap, cfg.min_train)
    missing = sorted(
        {leg for t in spec.targets for leg in (t.leg_a, t.leg_b) if leg and leg not in data.price_columns}
    )
    if missing:
        warnings.warn(
            f"leg columns missing from {comp.path}: {', '.join(missing)}; their targets fall back to naive",
            stacklevel=1,
        )
    return Features(comp, data, folds, oof_mask(len(data.date_ids), folds))


def fit_regime(data: Dataset, folds: list[Fold], cfg: TrainConfig) -> tuple[RegimeResult, Dataset]:
    """The regime classifier out of fold, and a new Dataset carrying its OOF probability (REGIME_PROB)."""
    names = data.spec.regime_model_features()
    col = data.col
    regime = train_regime(
        data.X[:, [col[f] for f in names]],
        names,
        data.X[:, col["px_ret1"]],
        folds,
        cfg.regime_params,
        cfg.seed,
    )
    return regime, with_column(data, REGIME_PROB, regime.oof_prob)


@dataclass(frozen=True)
class Prepared:
    """Data (with the regime's OOF probability), folds and the regime model: what every stage-2 run
    (train, tune) starts from."""

    comp: Competition
    data: Dataset
    folds: list[Fold]
    mask: np.ndarray
    regime: RegimeResult


def prepare(data_dir: Path | str, cfg: TrainConfig) -> Prepared:
    """Features, folds and the regime classifier out of fold."""
    feats = build_features(data_dir, cfg)
    regime, data = fit_regime(feats.data, feats.folds, cfg)
    return Prepared(feats.comp, data, feats.folds, feats.mask, regime)


@dataclass(frozen=True)
class Stage2:
    """The labels in each target mode, and the shared structural model fit on each mode CV will try."""

    Y: dict[str, np.ndarray]
    shared: dict[str, SharedFit]

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.shared)


def fit_stage2(
    data: Dataset, targets: list[TargetDef], folds: list[Fold], cfg: TrainConfig, n_jobs: int | None
) -> Stage2:
    """Raw and per-day-rank labels, and the shared model in each mode `cfg.target_mode` allows."""
    Y = {"raw": data.Y, "rank": rank_per_day(data.Y)}
    modes = MODES if cfg.target_mode == "auto" else (cfg.target_mode,)
    return Stage2(Y, {m: fit_shared(data.X, Y[m], data.col, targets, folds, cfg.seed, n_jobs) for m in modes})


@dataclass(frozen=True)
class SubsetRun:
    """One variant on the analysis subset: its OOF predictions there (days x subset), score, interval."""

    oof: np.ndarray
    score: float
    interval: list[float] | None


@dataclass(frozen=True)
class Runner:
    """Fits one variant of the per-target models, checkpointed under work/<variant>; `analysis` is the
    subset (every cfg.analysis_every-th target) on which the target mode, ETF feature and ablations are decided."""

    cfg: TrainConfig
    folds: list[Fold]
    mask: np.ndarray
    stage2: Stage2
    analysis: list[TargetDef]
    work: Path
    execution: Execution
    data_fps: dict = field(default_factory=dict, repr=False, compare=False)  # (data, mode) hashed once

    @property
    def analysis_idx(self) -> list[int]:
        return [t.index for t in self.analysis]

    def run(
        self,
        name: str,
        data: Dataset,
        mode: str,
        targets: list[TargetDef],
        desc: str,
        folds: list[Fold] | None = None,
        **task_options,
    ) -> dict[int, TargetResult]:
        key = (id(data), mode)  # the entry holds the Dataset, so its id is not reused
        if key not in self.data_fps:
            self.data_fps[key] = (data, data_fingerprint(data, self.stage2.Y[mode], self.stage2.shared[mode]))
        return run_variant(
            self.data_fps[key][1],
            data,
            self.stage2.Y[mode],
            self.stage2.shared[mode],
            make_tasks(data, targets, self.folds if folds is None else folds, self.cfg, **task_options),
            CheckpointStore(self.work / name),
            {"model": self.cfg.model_part(), "mode": mode, "variant": name},
            self.execution,
            desc=desc,
        )

    def run_served(
        self, name: str, data: Dataset, mode: str, targets: list[TargetDef], **task_options
    ) -> dict[int, TargetResult]:
        """`run` for the served variant: the analysis subset's out-of-fold fits are the ones its
        decisions ran (those runs fit no final models), so only their final models are fit here."""
        chosen = {t.index for t in self.analysis}
        rest = [t for t in targets if t.index not in chosen]
        part = [t for t in targets if t.index in chosen]
        results = (
            self.run(name, data, mode, rest, f"train {len(rest)} targets", **task_options) if rest else {}
        )
        desc = f"train {len(part)} analysis targets"
        oof = self.run(name, data, mode, part, f"{desc}: out of fold", final=False, **task_options)
        fit = [t for t in part if oof[t.index].fallback is None]
        finals = (
            self.run(f"{name}/final", data, mode, fit, f"{desc}: final fits", folds=[], **task_options)
            if fit
            else {}
        )
        for i, r in oof.items():
            f = finals.get(i)
            results[i] = r if f is None else replace(r, model_text=f.model_text, fallback=f.fallback)
        return results

    def subset(self, name: str, data: Dataset, mode: str, **task_options) -> SubsetRun:
        """The variant on the analysis subset out of fold, scored by the competition metric."""
        res = self.run(
            name,
            data,
            mode,
            self.analysis,
            f"{name} ({len(self.analysis)} targets)",
            final=False,
            **task_options,
        )
        idx = self.analysis_idx
        P = _oof_matrix(res, len(data.date_ids), len(data.spec.targets))[:, idx]
        block = score_block(P, data.Y[:, idx], self.mask)
        return SubsetRun(P, block["score"], block["interval"])


@dataclass(frozen=True)
class ModeChoice:
    """The target transform (raw labels or daily ranks) chosen by OOF score on the analysis subset."""

    report: TargetModeReport
    runs: dict[str, SubsetRun]

    @property
    def chosen(self) -> str:
        return self.report.chosen


def choose_target_mode(runner: Runner, data: Dataset) -> ModeChoice:
    """Each mode on the analysis subset; the higher OOF score wins, with the paired test beside it."""
    modes = runner.stage2.modes
    runs = {m: runner.subset(m, data, m) for m in modes}
    chosen = max(modes, key=lambda m: runs[m].score)
    test = None
    if len(modes) == 2:  # rank vs raw, paired on daily correlations (the higher score is chosen)
        Y = data.Y[:, runner.analysis_idx]
        test = decide(paired_gain(runs["rank"].oof, runs["raw"].oof, Y, runner.mask))
    report = TargetModeReport(
        chosen,
        {m: runs[m].score for m in modes},
        {m: runs[m].interval for m in modes},
        test,
        len(runner.analysis),
    )
    return ModeChoice(report, runs)


@dataclass(frozen=True)
class EtfStep:
    """The ETF decision, and the Dataset the later steps use: with the crash probability only if used."""

    decision: EtfDecision
    data: Dataset

    @property
    def probs(self) -> tuple[str, ...]:
        return (REGIME_PROB, ETF_CRASH_PROB) if self.decision.used else (REGIME_PROB,)

    @property
    def variant(self) -> str | None:
        """The checkpoint directory of the regressors with the crash probability (None: without it)."""
        return "with_etf" if self.decision.used else None


def decide_etf(runner: Runner, comp: Competition, data: Dataset, mode: ModeChoice) -> EtfStep:
    """The ETF pipeline's walk-forward crash probability, offered as one more feature: kept only if the
    paired daily gain on the analysis subset is two standard errors above zero ("auto"), or if "on"."""
    setting = runner.cfg.etf_feature
    if setting == "off":
        return EtfStep(EtfDecision(False, "off"), data)
    try:
        with_etf = with_column(data, ETF_CRASH_PROB, _etf_probability(comp, data.date_ids))
    except (UserError, ValueError) as exc:  # no market ETF in the data, too few crashes, ...
        return EtfStep(EtfDecision(False, setting, unavailable=str(exc)), data)
    run = runner.subset("with_etf", with_etf, mode.chosen, probs=(REGIME_PROB, ETF_CRASH_PROB))
    base = mode.runs[mode.chosen]
    gain = decide(paired_gain(run.oof, base.oof, data.Y[:, runner.analysis_idx], runner.mask))
    used = setting == "on" or gain["t"] >= 2.0
    decision = EtfDecision(
        used, setting, with_score=run.score, without_score=base.score, gain=gain, targets=len(runner.analysis)
    )
    return EtfStep(decision, with_etf if used else data)


@dataclass(frozen=True)
class Regressors:
    """Every target's model in the chosen mode: results by target index, their OOF matrix (days x 424)."""

    results: dict[int, TargetResult]
    oof: np.ndarray
    fit_seconds: float

    @property
    def fallbacks(self) -> list[Fallback]:
        ordered = sorted(self.results.values(), key=lambda r: r.index)
        return [Fallback(r.name, r.fallback) for r in ordered if r.fallback]


def fit_regressors(runner: Runner, etf: EtfStep, mode: str, targets: list[TargetDef]) -> Regressors:
    """All targets (the analysis subset's out-of-fold fits are reused from its checkpoints)."""
    t0 = time.perf_counter()
    name = etf.variant or mode
    results = runner.run_served(name, etf.data, mode, targets, probs=etf.probs)
    fit_seconds = time.perf_counter() - t0
    return Regressors(
        results, _oof_matrix(results, len(etf.data.date_ids), len(etf.data.spec.targets)), fit_seconds
    )


@dataclass(frozen=True)
class Candidates:
    """The blend's members by name, in blend order (a tie in the blend goes to the earlier member)."""

    fits: dict[str, candidates.CandidateFit]

    def oof(self) -> dict[str, np.ndarray]:
        return {name: fit.oof for name, fit in self.fits.items()}


UNTUNED = (
    "prior",
    "local",
    "leaders",
    "recent",
)  # members no tuned parameter changes (tuning fits them once)


def candidate_fitters(
    data: Dataset,
    Ytrain: np.ndarray,
    idx: list[int],
    folds: list[Fold],
    cfg: TrainConfig,
    engine_oof: np.ndarray,
    final: bool = True,
) -> dict[str, Callable[[], candidates.CandidateFit]]:
    """Each blend member's fit, by name in blend order, not yet run: the prior (on the raw labels'
    daily ranks), pooled LightGBM, ridge and the per-target ridges (on the chosen mode's labels; the
    local and leaders penalties picked on the raw labels' score) beside the engine's per-target OOF predictions,
    and the online label prior (`recent`, read from the features).
    One line per member; training and tuning both blend these (final=False: no refit on every day)."""
    spec = data.spec
    return {
        "prior": lambda: candidates.prior(data.Y, idx, folds),
        "pooled": lambda: candidates.pooled(
            spec, data.X, Ytrain, idx, folds, cfg.seed, cfg.pooled_params, final
        ),
        "engine": lambda: candidates.CandidateFit("engine", engine_oof, None),
        "ridge": lambda: candidates.ridge(spec, data.X, Ytrain, idx, folds, cfg.ridge_alpha, final),
        "local": lambda: candidates.local(spec, data.X, Ytrain, data.Y, idx, folds, cfg.gap, final=final),
        "leaders": lambda: leaders(spec, data.X, Ytrain, data.Y, idx, folds, cfg.gap, final=final),
        "recent": lambda: candidates.recent(spec, data.X, idx, folds),
    }


def fit_candidates(
    data: Dataset,
    Ytrain: np.ndarray,
    idx: list[int],
    folds: list[Fold],
    cfg: TrainConfig,
    engine_oof: np.ndarray,
    final: bool = True,
) -> Candidates:
    """Every member of `candidate_fitters`, fitted."""
    fitters = candidate_fitters(data, Ytrain, idx, folds, cfg, engine_oof, final)
    return Candidates({name: fit() for name, fit in fitters.items()})


@dataclass(frozen=True)
class Blend:
    """The nested OOF blend (days x 424, NaN off the trained targets), nested_blend's result, the served spec."""

    oof: np.ndarray
    nested: dict
    spec: BlendSpec


def fit_blend(cands: Candidates, Y: np.ndarray, targets: list[TargetDef], folds: list[Fold]) -> Blend:
    """The nested blend of the members on the trained targets, and the spec the kernel serves."""
    idx = [t.index for t in targets]
    nested = nested_blend(
        {k: v[:, idx] for k, v in cands.oof().items()}, Y[:, idx], folds, tie_groups(targets)
    )
    P = np.full(Y.shape, np.nan)
    P[:, idx] = nested["oof"]
    spec = BlendSpec(
        tuple(nested["members"]),
        tuple(nested["weights"][m] for m in nested["members"]),
        tuple(idx),
        tuple(None if np.isnan(v) else float(v) for v in cands.fits["prior"].final),
        tuple(tuple(map(float, f)) for f in nested["factors"].T),
        nested["ties"],
        tuple(nested["counts"]),
        nested["scale"],
    )
    return Blend(P, nested, spec)


@dataclass(frozen=True)
class BlendScores:
    """The blend on the blend days (folds 1..: each blended with weights from the folds before it),
    every member there and on every OOF day, and paired tests blend vs member."""

    main: dict  # score_block of the blend, per fold
    candidates: dict[str, CandidateScores]
    blend: BlendReport


def score_blend(
    cands: Candidates, blend: Blend, Y: np.ndarray, idx: list[int], mask: np.ndarray, folds: list[Fold]
) -> BlendScores:
    Yi = Y[:, idx]
    days = blend_days(mask, folds)
    later = folds[1:]
    scores = {}
    for name, P in cands.oof().items():
        b = score_block(P[:, idx], Yi, days, later)
        every = score_block(P[:, idx], Yi, mask, folds)
        scores[name] = CandidateScores(
            b["score"],
            b["interval"],
            [f["score"] for f in b["per_fold"]],
            Scored(every["score"], every["interval"]),
            cands.fits[name].info,
        )
    main = score_block(blend.oof[:, idx], Yi, days, later)
    tests = {
        name: decide_score(paired_gain(blend.oof[:, idx], P[:, idx], Yi, days))
        for name, P in cands.oof().items()
    }
    return BlendScores(
        main,
        scores,
        BlendReport(
            blend.nested["weights"],
            blend.nested["per_fold"],
            tests,
            len(blend.spec.factors),
            blend.spec.ties,
            list(blend.spec.factor_counts()),
            blend.spec.scale,
        ),
    )


def ablate(runner: Runner, etf: EtfStep, mode: str, regressors: Regressors) -> Ablation:
    """The analysis subset without the regime probability, the cross-asset features, the own lags;
    and the ETF decision's other side (with or without the crash probability)."""
    data, idx = etf.data, runner.analysis_idx
    suffix = "_etf" if etf.decision.used else ""
    scores = {"full": score_block(regressors.oof[:, idx], data.Y[:, idx], runner.mask)["score"]}
    intervals = {}
    for name, drop in ABLATIONS.items():
        run = runner.subset(name + suffix, data, mode, drop=drop, probs=etf.probs)
        scores[name], intervals[name] = run.score, run.interval
    d = etf.decision
    if d.with_score is not None:
        if d.used:
            scores["without_etf_crash_prob"] = d.without_score
        else:
            scores["with_etf_crash_prob"] = d.with_score
    return Ablation(len(runner.analysis), scores, intervals)


def score_oracle(
    comp: Competition, data: Dataset, idx: list[int], mask: np.ndarray, folds: list[Fold], blend_score: float
) -> OracleScore | None:
    """The synthetic market's true expected returns on the blend days (None for data without oracle.parquet)."""
    score, iv = _oracle_score(comp, data, idx, blend_days(mask, folds))
    if score is None:
        return None
    return OracleScore(score, blend_score / score if score else None, iv)


def score_tuning(
    cfg: TrainConfig, data: Dataset, blend: Blend, idx: list[int], mask: np.ndarray
) -> Tuning | None:
    """Where the parameters came from, and the blend on the OOF days tuning never saw."""
    if not cfg.tuned_from:
        return None
    unseen = mask & (data.date_ids > (cfg.tuned_until if cfg.tuned_until is not None else -1))
    return Tuning(
        cfg.tuned_from,
        cfg.tuned_until,
        cfg.params,
        cfg.pooled_params,
        cfg.ridge_alpha,
        score_block(blend.oof[:, idx], data.Y[:, idx], unseen),
    )


class StepClock:
    """Seconds per named step, in the order they ran (report.json's `seconds`)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 2)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.start


def train(
    data_dir: Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    executor: str = "local",
    n_jobs: int | None = None,
    scheduler: str | None = None,
) -> TrainReport:
    """Train both stages, write models, OOF predictions, report.json/report.md and plots to out_dir."""
    clock = StepClock()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prep = prepare(data_dir, cfg)
    clock.lap("features_and_regime")
    folds, mask = prep.folds, prep.mask
    spec = prep.data.spec
    targets = [spec.targets[i] for i in cfg.targets] if cfg.targets is not None else list(spec.targets)
    idx = [t.index for t in targets]
    stage2 = fit_stage2(prep.data, targets, folds, cfg, n_jobs)
    clock.lap("shared_model")
    execution = Execution(executor, n_jobs, scheduler)
    runner = Runner(cfg, folds, mask, stage2, targets[:: cfg.analysis_every], out / "work", execution)
    mode = choose_target_mode(runner, prep.data)
    clock.lap("target_mode")
    etf = decide_etf(runner, prep.comp, prep.data, mode)
    clock.lap("etf_decision")
    data, Ytrain = etf.data, stage2.Y[mode.chosen]
    regressors = fit_regressors(runner, etf, mode.chosen, targets)
    clock.lap("regressors")
    cands = fit_candidates(data, Ytrain, idx, folds, cfg, regressors.oof)
    clock.lap("candidates")
    blend = fit_blend(cands, data.Y, targets, folds)
    scored = score_blend(cands, blend, data.Y, idx, mask, folds)
    clock.lap("blend")
    base = None
    if cfg.baselines:
        base = baselines.all_baselines(data, Ytrain, targets, folds, mask, cfg, n_jobs)
        clock.lap("baselines")
    ablation = None
    if cfg.ablation:
        ablation = ablate(runner, etf, mode.chosen, regressors)
        clock.lap("ablation")
    report = build_report(
        cfg,
        prep,
        data,
        idx,
        mode=mode,
        etf=etf,
        regressors=regressors,
        shared=stage2.shared[mode.chosen],
        scored=scored,
        tuning=score_tuning(cfg, data, blend, idx, mask),
        base=base,
        ablation=ablation,
        oracle=score_oracle(prep.comp, data, idx, mask, folds, scored.main["score"]),
        clock=clock,
    )
    write_outputs(out, data, prep.regime, regressors, targets, cands, blend, report, folds, prep.comp)
    return report


def build_report(
    cfg: TrainConfig,
    prep: Prepared,
    data: Dataset,
    idx: list[int],
    *,
    mode: ModeChoice,
    etf: EtfStep,
    regressors: Regressors,
    shared: SharedFit,
    scored: BlendScores,
    tuning: Tuning | None,
    base: dict | None,
    ablation: Ablation | None,
    oracle: OracleScore | None,
    clock: StepClock,
) -> TrainReport:
    """report.json's value from the steps' results; every score in it is out of fold."""
    mask, folds = prep.mask, prep.folds
    P, Y = regressors.oof[:, idx], data.Y[:, idx]
    engine = score_block(P, Y, mask, folds)
    shared_only = score_block(_shared_oof(shared, folds)[:, idx], Y, mask)
    main = scored.main
    return TrainReport(
        engine_oof_score=engine["score"],
        engine_interval=engine["interval"],
        engine_per_fold=[FoldScore(**f) for f in engine["per_fold"]],
        n_targets=len(idx),
        n_days=len(data.date_ids),
        n_oof_days=int(engine["n_days"]),
        target_mode=mode.report,
        shared_only=shared_only["score"],
        shared_only_interval=shared_only["interval"],
        etf_crash_prob=etf.decision,
        regime=RegimeScores(**prep.regime.overall, folds=prep.regime.folds),
        fallbacks=regressors.fallbacks,
        ic=TargetIcs(**target_ics(P, Y, mask)),
        fit_seconds=regressors.fit_seconds,
        oof_score=main["score"],
        oof_interval=main["interval"],
        oof_mean_daily_corr=main["mean"],
        per_fold=[FoldScore(**f) for f in main["per_fold"]],
        n_blend_days=main["n_days"],
        candidates=scored.candidates,
        blend=scored.blend,
        train_seconds=clock.total(),
        config=cfg,
        data=DataInfo(
            dir=str(prep.comp.path),
            until=cfg.until,
            fingerprint=fingerprint(data.X[:, : len(data.names) - len(PROBABILITIES)], data.Y),
            first_date_id=int(data.date_ids[0]),
            last_date_id=int(data.date_ids[-1]),
        ),
        seconds=clock.seconds,  # per step, up to the report itself
        tuning=tuning,
        baselines=base,
        ablation=ablation,
        oracle=oracle,
    )


def _shared_oof(shared: SharedFit, folds: list[Fold]) -> np.ndarray:
    """The shared model alone, out of fold: each test block from the model fit for that fold."""
    P = np.full(shared.margins.shape[1:], np.nan)
    for i, f in enumerate(folds):
        P[f.test_start : f.test_end] = shared.margins[i][f.test_start : f.test_end]
    return P


def _etf_probability(comp: Competition, date_ids: np.ndarray) -> np.ndarray:
    from offline.etf import oof_crash_probability  # the ETF pipeline's walk-forward crash probability

    frame = oof_crash_probability(comp)
    joined = pl.DataFrame({"date_id": date_ids}).join(frame, on="date_id", how="left")
    return joined[ETF_CRASH_PROB].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _oracle_score(comp: Competition, data: Dataset, idx: list[int], mask: np.ndarray):
    path = comp.path / "oracle.parquet"
    if not path.exists():
        return None, None
    oracle = pl.read_parquet(path)
    names = [f"target_{i}" for i in range(len(data.spec.targets))]
    wide = pl.DataFrame({"date_id": data.date_ids}).join(oracle, on="date_id", how="left")
    expected = wide.select(names).cast(pl.Float64).to_numpy()
    block = score_block(expected[:, idx], data.Y[:, idx], mask)
    return block["score"], block["interval"]
