"""`make tune`: an Optuna study of what decides the score now: the per-target corrections' parameters,
the pooled LightGBM's, the ridge penalty, and (through them) the blend. The objective is the nested
blend's OOF competition score on a subset of targets, exactly as `make train` computes it.

Tuning sees only the days before the last walk-forward fold of the full data (`tuned_until`), so
`make train` can report the score on days no trial has seen. Storage is SQLite by default (a rerun
continues the study); any SQLAlchemy URL lets many machines share one study. Uses public functions only.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna

from kaggle_kernel.blend import tie_groups
from offline.data.competition import load_competition
from offline.train import candidates
from offline.train.blending import nested_blend
from offline.train.candidates import CandidateFit
from offline.train.checkpoint import atomic_write
from offline.train.cv import walk_forward
from offline.train.engine import UNTUNED, Prepared, TrainConfig, candidate_fitters, make_tasks, prepare
from offline.train.evaluate import score_block
from offline.train.executors import run_tasks
from offline.train.regressors import DEFAULT_PARAMS, fit_target, rank_per_day
from offline.train.shared import fit_shared

REGRESSOR_KEYS = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "reg_lambda")
POOLED_KEYS = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples")


def mask_url(url: str) -> str:
    """A storage URL safe to print or save: the password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at `url`. Workers started together race to create the schema on a fresh
    database; the loser's error means another worker created it, so it retries (a short backoff)."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def suggest(trial: optuna.Trial) -> dict:
    """One trial's choices: {"params": corrections, "pooled_params": pooled LightGBM, "ridge_alpha": ...}."""
    return {
        "params": {
            "n_estimators": trial.suggest_int("n_estimators", 10, 100, step=5),
            "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.1, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 2, 15),
            "min_child_samples": trial.suggest_int("min_child_samples", 50, 800, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-2, 100.0, log=True),
        },
        "pooled_params": {
            "n_estimators": trial.suggest_int("pooled_n_estimators", 40, 240, step=20),
            "learning_rate": trial.suggest_float("pooled_learning_rate", 0.01, 0.15, log=True),
            "num_leaves": trial.suggest_int("pooled_num_leaves", 4, 63, log=True),
            "min_child_samples": trial.suggest_int("pooled_min_child_samples", 100, 5000, log=True),
        },
        "ridge_alpha": trial.suggest_float("ridge_alpha", 1e-3, 10.0, log=True),
    }


def defaults() -> dict:
    """The untuned configuration as a first trial, so the study never ends below it."""
    out = {k: DEFAULT_PARAMS[k] for k in REGRESSOR_KEYS}
    out.update({f"pooled_{k}": candidates.POOLED_PARAMS[k] for k in POOLED_KEYS})
    out["ridge_alpha"] = candidates.RIDGE_ALPHA
    return out


def objective_factory(
    prep: Prepared, cfg: TrainConfig, mode: str, executor: str, n_jobs: int | None, scheduler: str | None
):
    data, folds, mask = prep.data, prep.folds, prep.mask
    targets = [data.spec.targets[i] for i in cfg.targets] if cfg.targets else list(data.spec.targets[::8])
    idx = [t.index for t in targets]
    Ytrain = rank_per_day(data.Y) if mode == "rank" else data.Y
    # the shared model is not tuned here: fit it once, on every target, as training does
    shared = fit_shared(data.X, Ytrain, data.col, list(data.spec.targets), folds, cfg.seed, n_jobs)

    untuned: dict[str, CandidateFit] = {}  # fit in the first trial, reused by the others

    def objective(trial: optuna.Trial) -> float:
        trial_cfg = replace(cfg, **suggest(trial))
        engine = np.full(data.Y.shape, np.nan)
        tasks = make_tasks(data, targets, folds, trial_cfg, final=False)
        for res in run_tasks(fit_target, tasks, (data.X, Ytrain, shared), executor, n_jobs, scheduler):
            engine[:, res.index] = res.oof
        # the same members as training blends (candidate_fitters), without the refit on every day
        fitters = candidate_fitters(data, Ytrain, idx, folds, trial_cfg, engine, final=False)
        for name in UNTUNED:
            untuned.setdefault(name, fitters[name]())
        members = {name: (untuned[name] if name in untuned else fit()).oof for name, fit in fitters.items()}
        groups = tie_groups([data.spec.targets[i] for i in idx])
        blended = nested_blend({k: v[:, idx] for k, v in members.items()}, data.Y[:, idx], folds, groups)
        for name, P in members.items():
            trial.set_user_attr(name, score_block(P[:, idx], data.Y[:, idx], mask)["score"])
        trial.set_user_attr("weights", blended["weights"])
        return score_block(blended["oof"], data.Y[:, idx], mask)["score"]

    return objective, len(targets)


def tuning_cutoff(data_dir: Path | str, cfg: TrainConfig) -> int:
    """The last date_id tuning may see: the day before the last walk-forward fold of the full data
    (minus the purge gap), so the last fold of `make train` stays unseen by every trial."""
    days = load_competition(data_dir, require_legs=False).prices()["date_id"].sort().to_numpy()
    if cfg.until is not None:
        days = days[days <= cfg.until]
    last = walk_forward(len(days), cfg.n_folds, cfg.gap, cfg.min_train)[-1]
    return int(days[last.train_end - 1])


def _progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    value = "pruned" if trial.value is None else f"{trial.value:.4f}"
    members = ", ".join(f"{k} {v:.3f}" for k, v in trial.user_attrs.items() if k != "weights")
    print(
        f"trial {trial.number}: blend {value} ({members}); best {study.best_value:.4f} (trial {study.best_trial.number})",
        file=sys.stderr,
        flush=True,
    )


def tune(
    data_dir: Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    n_trials: int = 20,
    storage: str | None = None,
    study_name: str = "regressors",
    mode: str = "raw",
    executor: str = "local",
    n_jobs: int | None = None,
    scheduler: str | None = None,
) -> dict:
    """Run (or continue) the study and write best_params.json for `make train`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    cutoff = tuning_cutoff(data_dir, cfg)
    prep = prepare(data_dir, replace(cfg, until=cutoff))
    objective, n_targets = objective_factory(prep, cfg, mode, executor, n_jobs, scheduler)
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage),
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    if not study.trials:
        study.enqueue_trial(defaults())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, callbacks=[_progress])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial
    result = {
        **_split_params(best.params),
        "tuned_until": cutoff,
        "seconds": round(time.perf_counter() - t0, 1),
        "score": best.value,
        "trial": best.number,
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "study": study_name,
        "storage": mask_url(storage),
        "target_mode": mode,
        "n_targets": n_targets,
    }
    atomic_write(out / "best_params.json", json.dumps(result, indent=1))
    return result


def _split_params(flat: dict) -> dict:
    """Optuna's flat parameter names -> TrainConfig's params, pooled_params and ridge_alpha."""
    return {
        "params": {k: v for k, v in flat.items() if k in REGRESSOR_KEYS},
        "pooled_params": {k.removeprefix("pooled_"): v for k, v in flat.items() if k.startswith("pooled_")},
        "ridge_alpha": flat.get("ridge_alpha", candidates.RIDGE_ALPHA),
    }
