"""`make train`: features -> regime classifier (OOF) -> 424 regressors (OOF + final) -> report.

Everything a number in the report rests on is out of fold: the regressors train on the regime
model's out-of-fold probability, and every score is computed on the walk-forward test blocks.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import polars as pl

from kaggle_kernel.blend import BlendSpec
from kaggle_kernel.features import (
    ETF_CRASH_PROB,
    PROBABILITIES,
    REGIME_PROB,
    FeatureSpec,
    batch_features,
    consecutive,
)
from kaggle_kernel.schema import TargetDef
from offline.data.competition import Competition
from offline.data.targets import labels_from_lag_files
from offline.data.verify import load_verified
from offline.errors import UserError
from offline.progress import progress
from offline.train import baselines, candidates
from offline.train.blending import nested_blend
from offline.train.checkpoint import CheckpointStore, atomic_write, fingerprint
from offline.train.cv import Fold, oof_mask, walk_forward
from offline.train.evaluate import decide, paired_gain, score_block, target_ics
from offline.train.executors import run_tasks
from offline.train.regime import train_regime
from offline.train.regressors import TargetResult, TargetTask, fit_target, rank_per_day
from offline.train.shared import SharedFit, fit_shared

MODES = ("raw", "rank")
ABLATIONS = {
    "no_regime": lambda spec, t: [REGIME_PROB],
    "no_cross_asset": lambda spec, t: list(spec.key_features),
    "no_own_lags": lambda spec, t: [f"{t.name}_lab{k}" for k in (1, 2, 3)],
}


TargetMode = Literal["auto", "raw", "rank"]
EtfFeature = Literal["auto", "on", "off"]


@dataclass
class TrainConfig:
    """Everything that changes a model. Fingerprinted: a changed field retrains the targets.

    Validated on construction: a choice outside its Literal, or a bad number, is a UserError naming
    the field and what it allows."""

    n_folds: int = 4
    gap: int = 5
    min_train: float = 0.4
    seed: int = 0
    params: dict = field(default_factory=dict)
    regime_params: dict = field(default_factory=dict)
    pooled_params: dict = field(default_factory=dict)
    ridge_alpha: float = candidates.RIDGE_ALPHA
    target_mode: TargetMode = "auto"
    targets: list[int] | None = None
    min_labels: int = 200
    until: int | None = None  # train on what is known at the end of this date_id (None: everything)
    etf_feature: EtfFeature = "auto"  # the ETF crash probability as a feature: "auto" (by CV), "on", "off"
    analysis_every: int = 8
    ablation: bool = True
    baselines: bool = True
    tuned_from: str | None = None  # the tuning result (best_params.json) whose parameters this run uses
    tuned_until: int | None = None  # the last date_id that tuning saw

    def __post_init__(self):
        for name, kind in (("target_mode", TargetMode), ("etf_feature", EtfFeature)):
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise UserError(
                    f"TrainConfig.{name}: {getattr(self, name)!r} is not one of {', '.join(map(repr, allowed))}"
                )
        checks = {
            "n_folds": self.n_folds >= 2,
            "gap": self.gap >= 0,
            "min_train": 0 < self.min_train < 1,
            "ridge_alpha": self.ridge_alpha >= 0,
            "min_labels": self.min_labels >= 1,
            "analysis_every": self.analysis_every >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise UserError(f"TrainConfig.{name}: {getattr(self, name)!r} is out of range")

    def model_part(self) -> dict:
        """The fields that change a single target's model (not which analyses run)."""
        return {
            k: getattr(self, k)
            for k in ("n_folds", "gap", "min_train", "seed", "params", "min_labels", "until")
        }


@dataclass
class Dataset:
    date_ids: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    names: list[str]
    spec: FeatureSpec
    price_columns: set[str]

    @property
    def col(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}


def training_frames(comp: Competition, until: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Prices and labels to train on: train.csv/train_labels.csv, else the test window and lag files.

    With `until`, only what is known at the end of that day: prices up to it, and the label cells
    already delivered (label day s of lag L is known on day s + L + 1).
    """
    prices = comp.prices()
    if comp.train_labels is not None:
        labels = comp.train_labels
    elif comp.lagged:
        labels = labels_from_lag_files(comp.lagged)
    else:
        raise UserError(f"{comp.path}: no train_labels.csv and no lagged label files to train on")
    if until is not None:
        if prices.filter(pl.col("date_id") <= until).height < 100:
            raise UserError(f"--until {until}: fewer than 100 days of prices up to it")
        prices = prices.filter(pl.col("date_id") <= until)
        lag = {t.name: t.lag for t in FeatureSpec().targets}
        labels = labels.filter(pl.col("date_id") <= until).with_columns(
            [
                pl.when(pl.col("date_id") + lag[n] + 1 <= until).then(pl.col(n)).alias(n)
                for n in labels.columns
                if n in lag
            ]
        )
    return prices, labels


def build_dataset(comp: Competition, spec: FeatureSpec, until: int | None = None) -> Dataset:
    prices, labels = training_frames(comp, until)
    days, X = batch_features(spec, prices, labels)
    names = [t.name for t in spec.targets]
    wide = consecutive(labels, int(days[0]), int(days[-1]))
    wide = wide.with_columns(
        [pl.lit(None, dtype=pl.Float64).alias(n) for n in names if n not in wide.columns]
    )
    Y = wide.select(names).cast(pl.Float64).to_numpy()
    return Dataset(days, X, Y, spec.all_features(), spec, set(prices.columns))


def make_tasks(
    data: Dataset,
    targets: list[TargetDef],
    folds: list[Fold],
    cfg: TrainConfig,
    drop=None,
    probs: tuple[str, ...] = (REGIME_PROB,),
) -> list[TargetTask]:
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
            )
        )
    return tasks


def run_variant(
    data: Dataset,
    Ytrain: np.ndarray,
    shared: SharedFit,
    tasks: list[TargetTask],
    store: CheckpointStore,
    variant: dict,
    executor: str,
    n_jobs: int | None,
    scheduler: str | None,
    desc: str,
) -> dict[int, TargetResult]:
    """Fit every task not already checkpointed under the same fingerprint; return all results."""
    data_fp = fingerprint(data.X, Ytrain, shared.model_text)
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
    fitted = run_tasks(fit_target, todo, (data.X, Ytrain, shared), executor, n_jobs, scheduler)
    for res in progress(fitted, total=len(todo), desc=label, unit="target"):
        store.save(res, fps[res.index])
        results[res.index] = res
    return results


def _oof_matrix(results: dict[int, TargetResult], n_days: int, n_targets: int) -> np.ndarray:
    P = np.full((n_days, n_targets), np.nan)
    for i, r in results.items():
        P[:, i] = r.oof
    return P


@dataclass
class Prepared:
    """Data, folds and the stage-1 probabilities: what every stage-2 run (train, tune) starts from."""

    comp: Competition
    data: Dataset
    folds: list[Fold]
    mask: np.ndarray
    regime: object


def prepare(data_dir: Path | str, cfg: TrainConfig) -> Prepared:
    """Load and validate, build features, define folds, and fit the regime classifier out of fold."""
    comp = load_verified(data_dir)  # rejects what `data verify` rejects
    spec = FeatureSpec()
    data = build_dataset(comp, spec, cfg.until)
    col = data.col
    folds = walk_forward(len(data.date_ids), cfg.n_folds, cfg.gap, cfg.min_train)
    missing = sorted(
        {leg for t in spec.targets for leg in (t.leg_a, t.leg_b) if leg and leg not in data.price_columns}
    )
    if missing:
        warnings.warn(
            f"leg columns missing from {comp.path}: {', '.join(missing)}; their targets fall back to naive",
            stacklevel=1,
        )
    regime_cols = [col[f] for f in spec.regime_model_features()]
    regime = train_regime(
        data.X[:, regime_cols],
        spec.regime_model_features(),
        data.X[:, col["px_ret1"]],
        folds,
        cfg.regime_params,
        cfg.seed,
    )
    data.X[:, col[REGIME_PROB]] = regime.oof_prob
    return Prepared(comp, data, folds, oof_mask(len(data.date_ids), folds), regime)


def train(
    data_dir: Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    executor: str = "local",
    n_jobs: int | None = None,
    scheduler: str | None = None,
) -> dict:
    """Train both stages, write models, OOF predictions, report.json/report.md and plots to out_dir."""
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        seconds[name] = round(now - clock[0], 2)
        clock[0] = now

    prep = prepare(data_dir, cfg)
    lap("features_and_regime")
    comp, data, folds, mask, regime = prep.comp, prep.data, prep.folds, prep.mask, prep.regime
    spec = data.spec
    n_days = len(data.date_ids)

    targets = [
        spec.targets[i] for i in (cfg.targets if cfg.targets is not None else range(len(spec.targets)))
    ]
    analysis = targets[:: cfg.analysis_every]
    Y_by_mode = {"raw": data.Y, "rank": rank_per_day(data.Y)}
    modes = MODES if cfg.target_mode == "auto" else (cfg.target_mode,)
    shared_by_mode = {
        m: fit_shared(data.X, Y_by_mode[m], data.col, targets, folds, cfg.seed, n_jobs) for m in modes
    }
    lap("shared_model")
    work = out / "work"
    common = dict(executor=executor, n_jobs=n_jobs, scheduler=scheduler)
    variant_base = {"model": cfg.model_part()}

    idx_a = [t.index for t in analysis]

    subset_oof: dict[str, np.ndarray] = {}
    intervals: dict[str, list[float] | None] = {}  # of every subset score, by variant name

    def subset_score(name: str, mode: str, **task_options) -> float:
        """OOF competition score of one variant on the analysis subset (checkpointed under work/name)."""
        res = run_variant(
            data,
            Y_by_mode[mode],
            shared_by_mode[mode],
            make_tasks(data, analysis, folds, cfg, **task_options),
            CheckpointStore(work / name),
            {**variant_base, "mode": mode, "variant": name},
            desc=f"{name} ({len(analysis)} targets)",
            **common,
        )
        P_sub = _oof_matrix(res, n_days, len(spec.targets))[:, idx_a]
        subset_oof[name] = P_sub
        b = score_block(P_sub, data.Y[:, idx_a], mask)
        intervals[name] = b["interval"]
        return b["score"]

    # target transform, decided by CV on the competition score over the analysis subset
    mode_scores = {mode: subset_score(mode, mode) for mode in modes}
    lap("target_mode")
    chosen = max(modes, key=mode_scores.get)
    mode_test = None
    if len(modes) == 2:  # rank vs raw, paired on daily correlations (the higher score is chosen)
        mode_test = decide(paired_gain(subset_oof["rank"], subset_oof["raw"], data.Y[:, idx_a], mask))

    # the ETF pipeline's walk-forward crash probability, offered as one more feature: kept only if
    # the paired daily gain on the analysis subset is two standard errors above zero ("auto")
    etf = _etf_decision(cfg, comp, data, subset_score, subset_oof, chosen, idx_a, mask)
    probs = (REGIME_PROB, ETF_CRASH_PROB) if etf["used"] else (REGIME_PROB,)
    lap("etf_decision")

    # all targets in the chosen mode (the analysis subset is reused from its checkpoints)
    t_fit = time.perf_counter()
    main_name = "with_etf" if etf["used"] else chosen
    results = run_variant(
        data,
        Y_by_mode[chosen],
        shared_by_mode[chosen],
        make_tasks(data, targets, folds, cfg, probs=probs),
        CheckpointStore(work / main_name),
        {**variant_base, "mode": chosen, "variant": main_name},
        desc=f"train {len(targets)} targets",
        **common,
    )
    fit_seconds = time.perf_counter() - t_fit
    idx = [t.index for t in targets]
    P = _oof_matrix(results, n_days, len(spec.targets))
    main = score_block(P[:, idx], data.Y[:, idx], mask, folds)
    P_shared = _shared_oof(shared_by_mode[chosen], folds)

    report: dict = {
        "engine_oof_score": main["score"],
        "engine_interval": main["interval"],
        "engine_per_fold": main["per_fold"],
        "n_targets": len(targets),
        "n_days": n_days,
        "n_oof_days": int(main["n_days"]),
        "target_mode": {
            "chosen": chosen,
            **mode_scores,
            "intervals": {m: intervals[m] for m in modes},
            "rank_vs_raw": mode_test,
            "decided_on_targets": len(analysis),
        },
        **_scored("shared_only", score_block(P_shared[:, idx], data.Y[:, idx], mask)),
        "etf_crash_prob": etf,
        "regime": {**regime.overall, "folds": regime.folds},
        "fallbacks": [
            {"target": r.name, "reason": r.fallback}
            for r in sorted(results.values(), key=lambda r: r.index)
            if r.fallback
        ],
        "ic": target_ics(P[:, idx], data.Y[:, idx], mask),
        "fit_seconds": fit_seconds,
    }
    lap("regressors")
    fits = fit_candidates(data, Y_by_mode[chosen], idx, folds, cfg)
    report["local_alphas"] = fits["local"].info["alphas"]
    lap("candidates")
    engine_oof = P
    members = {
        "prior": fits["prior"].oof,
        "pooled": fits["pooled"].oof,
        "engine": engine_oof,
        "ridge": fits["ridge"].oof,
        "local": fits["local"].oof,
    }
    blended = nested_blend({k: v[:, idx] for k, v in members.items()}, data.Y[:, idx], folds)
    P_blend = np.full(P.shape, np.nan)
    P_blend[:, idx] = blended["oof"]
    lap("blend")
    if cfg.tuned_from:
        unseen = mask & (data.date_ids > (cfg.tuned_until if cfg.tuned_until is not None else -1))
        report["tuned_from"] = cfg.tuned_from
        report["tuning"] = {
            "from": cfg.tuned_from,
            "tuned_until": cfg.tuned_until,
            "params": cfg.params,
            "pooled_params": cfg.pooled_params,
            "ridge_alpha": cfg.ridge_alpha,
            "blend_on_days_tuning_never_saw": score_block(P_blend[:, idx], data.Y[:, idx], unseen),
        }
    report.update(blend_report(members, P_blend, blended, data.Y, idx, mask, folds))
    blend_spec = BlendSpec(
        tuple(blended["members"]),
        tuple(blended["weights"][m] for m in blended["members"]),
        tuple(idx),
        tuple(None if np.isnan(v) else float(v) for v in fits["prior"].final),
    )
    if cfg.baselines:
        report["baselines"] = baselines.all_baselines(
            data, Y_by_mode[chosen], targets, folds, mask, cfg, n_jobs
        )
        lap("baselines")
    if cfg.ablation:
        full = score_block(P[:, idx_a], data.Y[:, idx_a], mask)["score"]
        abl = {"targets": len(analysis), "full": full}
        for name, drop in ABLATIONS.items():
            abl[name] = subset_score(name + ("_etf" if etf["used"] else ""), chosen, drop=drop, probs=probs)
        if "with" in etf:
            abl["with_etf_crash_prob" if not etf["used"] else "without_etf_crash_prob"] = etf[
                "without" if etf["used"] else "with"
            ]
        abl["intervals"] = {k: intervals.get(k + ("_etf" if etf["used"] else "")) for k in ABLATIONS}
        report["ablation"] = abl
        lap("ablation")
    oracle, oracle_interval = _oracle_score(
        comp, data, idx, mask & (np.arange(n_days) >= folds[1].test_start)
    )
    if oracle is not None:
        report["oracle_score"] = oracle
        report["oracle_fraction"] = report["oof_score"] / oracle if oracle else None
        report["oracle_interval"] = oracle_interval
    report["train_seconds"] = time.perf_counter() - t_start
    report["config"] = asdict(cfg)
    report["data"] = {
        "dir": str(comp.path),
        "until": cfg.until,
        "fingerprint": fingerprint(data.X[:, : len(data.names) - len(PROBABILITIES)], data.Y),
        "first_date_id": int(data.date_ids[0]),
        "last_date_id": int(data.date_ids[-1]),
    }

    report["seconds"] = seconds  # per step, up to the report itself
    _write_outputs(out, data, regime, results, targets, P_blend, report, folds, fits, blend_spec, members)
    return report


def _etf_decision(cfg, comp, data, subset_score, subset_oof, chosen, idx, mask) -> dict:
    """Whether the regressors get the ETF crash probability; leaves it in data.X only if they do."""
    col = data.col[ETF_CRASH_PROB]
    if cfg.etf_feature == "off":
        return {"used": False, "decided_by": "off"}
    try:
        data.X[:, col] = _etf_probability(comp, data.date_ids)
    except (UserError, ValueError) as exc:  # no market ETF in the data, too few crashes, ...
        data.X[:, col] = np.nan
        return {"used": False, "decided_by": cfg.etf_feature, "unavailable": str(exc)}
    with_etf = subset_score("with_etf", chosen, probs=(REGIME_PROB, ETF_CRASH_PROB))
    gain = paired_gain(subset_oof["with_etf"], subset_oof[chosen], data.Y[:, idx], mask)
    gain = decide(gain)
    used = cfg.etf_feature == "on" or gain["t"] >= 2.0
    if not used:
        data.X[:, col] = np.nan
    return {
        "used": used,
        "decided_by": cfg.etf_feature,
        "with": with_etf,
        "without": score_block(subset_oof[chosen], data.Y[:, idx], mask)["score"],
        "gain": gain,
        "targets": len(idx),
    }


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


def _write_outputs(
    out: Path,
    data: Dataset,
    regime,
    results: dict[int, TargetResult],
    targets: list[TargetDef],
    P: np.ndarray,
    report: dict,
    folds: list[Fold],
    fits: dict,
    blend_spec: BlendSpec,
    members: dict[str, np.ndarray],
) -> None:
    from offline.release.forest_export import write_npz
    from offline.train.report import write_plots, write_report_md

    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir(parents=True)
    atomic_write(models / "regime.txt", regime.model_text)
    manifest = {
        "regime": {"file": "models/regime.txt", "features": regime.features, "kind": "classifier"},
        "targets": {},
    }
    for t in targets:
        r = results[t.index]
        entry = {"index": t.index, "lag": t.lag, "pair": t.pair, "fallback": r.fallback}
        if r.model_text is not None:
            atomic_write(models / f"{t.name}.txt", r.model_text)
            entry["file"] = f"models/{t.name}.txt"
        manifest["targets"][t.name] = entry
    if report["etf_crash_prob"]["used"]:
        from offline.etf.export import final_crash_model

        crash, text = final_crash_model(report["data"]["dir"], until=report["data"]["until"])
        atomic_write(models / "etf_crash.txt", text)
        atomic_write(models / "etf_crash.json", json.dumps(crash.to_json(), indent=1))
        manifest["etf_crash"] = {"file": "models/etf_crash.txt", "model": "models/etf_crash.json"}
    atomic_write(models / "pooled.txt", fits["pooled"].final)
    atomic_write(models / "ridge.json", json.dumps(fits["ridge"].final.to_json(), indent=1))
    atomic_write(models / "blend.json", json.dumps(blend_spec.to_json(), indent=1))
    write_npz(models / "local.npz", fits["local"].final.arrays())
    manifest["blend"] = {
        "spec": "models/blend.json",
        "pooled": "models/pooled.txt",
        "ridge": "models/ridge.json",
        "local": "models/local.npz",
    }
    manifest["target_mode"] = report["target_mode"]["chosen"]
    manifest["data"] = report["data"]
    manifest["cv"] = {"oof_score": report["oof_score"], "regime_roc_auc": report["regime"]["roc_auc"]}
    atomic_write(out / "models.json", json.dumps(manifest, indent=1))
    names = {t.index: t.name for t in targets}
    oof = pl.DataFrame(
        {"date_id": data.date_ids, REGIME_PROB: regime.oof_prob, **{names[i]: P[:, i] for i in sorted(names)}}
    ).with_columns(pl.all().fill_nan(None))
    oof.write_parquet(out / "oof.parquet")
    for name, P_member in members.items():  # each candidate's OOF predictions, for compare and re-blending
        frame = {"date_id": data.date_ids, **{names[i]: P_member[:, i] for i in sorted(names)}}
        pl.DataFrame(frame).with_columns(pl.all().fill_nan(None)).write_parquet(out / f"oof_{name}.parquet")
    atomic_write(out / "report.json", json.dumps(report, indent=1, default=_json_default))
    write_plots(out / "plots", data, regime, P, report, folds)
    write_report_md(out / "report.md", report)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def fit_candidates(
    data: Dataset, Ytrain: np.ndarray, idx: list[int], folds: list[Fold], cfg: TrainConfig
) -> dict:
    """The prior (on the raw labels' daily ranks), pooled LightGBM, ridge and the per-target ridges
    (on the chosen mode's labels; the local penalty chosen on the raw labels' competition score)."""
    spec = data.spec
    return {
        "prior": candidates.prior(data.Y, idx, folds),
        "pooled": candidates.pooled(spec, data.X, Ytrain, idx, folds, cfg.seed, cfg.pooled_params),
        "ridge": candidates.ridge(spec, data.X, Ytrain, idx, folds, cfg.ridge_alpha),
        "local": candidates.local(spec, data.X, Ytrain, data.Y, idx, folds, cfg.gap),
    }


def blend_report(members: dict, P_blend: np.ndarray, blended: dict, Y: np.ndarray, idx, mask, folds) -> dict:
    """The blend and every candidate on the blend days (folds 1..: each blended with weights from the
    folds before it), with intervals; each candidate on every OOF day too; paired tests blend vs member."""
    Yi = Y[:, idx]
    days = mask & (np.arange(len(mask)) >= folds[1].test_start)
    later = folds[1:]
    scores = {}
    for name, P in members.items():
        b = score_block(P[:, idx], Yi, days, later)
        every = score_block(P[:, idx], Yi, mask, folds)
        scores[name] = {
            "score": b["score"],
            "interval": b["interval"],
            "per_fold": [f["score"] for f in b["per_fold"]],
            "all_oof_days": {"score": every["score"], "interval": every["interval"]},
        }
    main = score_block(P_blend[:, idx], Yi, days, later)
    tests = {name: decide(paired_gain(P_blend[:, idx], P[:, idx], Yi, days)) for name, P in members.items()}
    return {
        "oof_score": main["score"],
        "oof_interval": main["interval"],
        "oof_mean_daily_corr": main["mean"],
        "per_fold": main["per_fold"],
        "n_blend_days": main["n_days"],
        "candidates": scores,
        "blend": {
            "weights": blended["weights"],
            "per_fold_weights": blended["per_fold"],
            "vs_members": tests,
        },
    }


def _scored(name: str, block: dict) -> dict:
    """A score and its interval as two report keys: name and name_interval."""
    return {name: block["score"], f"{name}_interval": block["interval"]}
