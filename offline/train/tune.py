"""`make tune`: an Optuna study of regressor parameters; objective the OOF competition score on a
subset of targets. Storage is SQLite by default (a rerun continues the study); any SQLAlchemy URL
lets many machines share one study. Pruning after each walk-forward fold."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna

from offline.train.checkpoint import atomic_write
from offline.train.engine import Prepared, TrainConfig, _make_tasks, prepare
from offline.train.evaluate import score_block
from offline.train.executors import run_tasks
from offline.train.regressors import DEFAULT_PARAMS, fit_target, rank_per_day
from offline.train.shared import fit_shared


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
    return {
        "n_estimators": trial.suggest_int("n_estimators", 10, 100, step=5),
        "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.1, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 2, 15),
        "min_child_samples": trial.suggest_int("min_child_samples", 50, 800, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-2, 100.0, log=True),
    }


def objective_factory(
    prep: Prepared, cfg: TrainConfig, mode: str, executor: str, n_jobs: int | None, scheduler: str | None
):
    data, folds, mask = prep.data, prep.folds, prep.mask
    targets = [data.spec.targets[i] for i in cfg.targets] if cfg.targets else list(data.spec.targets[::8])
    idx = [t.index for t in targets]
    Ytrain = rank_per_day(data.Y) if mode == "rank" else data.Y
    # the shared model is not tuned here: fit it once, on every target, as training does
    shared = fit_shared(data.X, Ytrain, data.col, list(data.spec.targets), folds, cfg.seed, n_jobs)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        P = np.full(data.Y.shape, np.nan)
        seen = np.zeros(len(data.date_ids), dtype=bool)
        score = float("nan")
        for k, fold in enumerate(folds):
            tasks = [
                replace(t, folds=[fold], fold_ids=[k], final=False)
                for t in _make_tasks(data, targets, folds, replace(cfg, params=params))
            ]
            for res in run_tasks(fit_target, tasks, (data.X, Ytrain, shared), executor, n_jobs, scheduler):
                P[fold.test_start : fold.test_end, res.index] = res.oof[fold.test_start : fold.test_end]
            seen[fold.test_start : fold.test_end] = True
            score = score_block(P[:, idx], data.Y[:, idx], mask & seen)["score"]
            trial.report(score, step=k)
            if k < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return score

    return objective, len(targets)


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
    prep = prepare(data_dir, cfg)
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
        study.enqueue_trial(
            {
                k: DEFAULT_PARAMS[k]
                for k in (
                    "n_estimators",
                    "learning_rate",
                    "num_leaves",
                    "min_child_samples",
                    "subsample",
                    "colsample_bytree",
                    "reg_lambda",
                )
            }
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n_trials, show_progress_bar=sys.stderr.isatty())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial
    result = {
        "params": {**best.params, "subsample_freq": 1},
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
