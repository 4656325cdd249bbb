"""Scores a synthetic directory's models should be set beside: the oracle, an informed linear yardstick
and the simple baselines, all on the engine's blend days (the OOF days of folds 1.., where the
engine's blend and every candidate are scored).

The yardstick is a pooled ridge regression over every (day, target) row whose features are the
profile's planted effects, computed from observable prices and delivered labels only: per window
effect, the target's sum over its days of the effect's planted mean with the latest observed windows
(times the filtered P(stressed) as well where the coefficient depends on the regime); the stress drift
times the filtered P(stressed) minus its long-run share; the target's expanding mean of delivered
labels and its mean daily rank (centred, times the labels' root mean square) for a persistent drift. It is fit by walk-forward on the engine's folds (n_folds=4, gap=5,
min_train=0.4) and scored by the engine's rule on the blend days.

The engine's blend is made neutral to the labels' leading factors and ties the middle of each day,
which raises its score well above the raw conditional mean's; so the oracle and the yardstick are
also scored after the same steps (the blend's nested rule applied to that one forecast: "neutral"),
to be compared with the blend like for like.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from kaggle_kernel.schema import target_defs
from offline.data.competition import load_competition
from offline.errors import UserError
from offline.metric import average_ranks
from offline.train.cv import blend_days, oof_mask, walk_forward
from offline.train.evaluate import score_block

N_FOLDS, GAP, MIN_TRAIN = 4, 5, 0.4  # the engine's walk-forward defaults
RIDGE_ALPHA = 1.0  # on standardised features; hundreds of thousands of rows, a handful of features
YARDSTICK_FILE = "yardstick.json"


@dataclass(frozen=True)
class Yardstick:
    """yardstick.json: what a model of this market should be compared with (the engine's blend days)."""

    profile: str
    seed: int
    n_days: int
    blend_days: int
    oracle: float
    yardstick: float
    naive: float
    mean_rank: float
    features: list[str]
    coefficients: list[list[float]]  # per fold, on standardised features
    oracle_neutral: float | None = None  # after the blend's nested rule (None: written before it)
    yardstick_neutral: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Yardstick:
        return cls(**json.loads(text))


def engine_oof_mask(n_days: int) -> np.ndarray:
    """The days the engine predicts out of fold with its default walk-forward."""
    return oof_mask(n_days, walk_forward(n_days, N_FOLDS, GAP, MIN_TRAIN))


def engine_blend_mask(n_days: int) -> np.ndarray:
    """The engine's blend days with its default walk-forward: what its report scores."""
    return blend_days(engine_oof_mask(n_days), walk_forward(n_days, N_FOLDS, GAP, MIN_TRAIN))


def _lags() -> np.ndarray:
    return np.array([t.lag for t in target_defs()])


def delivered_mean(Y: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """(days, targets): mean of `values` (default Y) over the days whose label of the target is delivered by t.

    A lag-L label of day s arrives on day s + L + 1, so day t averages days s <= t - L - 1; NaN before.
    """
    values = Y if values is None else values
    ok = ~np.isnan(Y) & ~np.isnan(values)
    csum = np.cumsum(np.where(ok, values, 0.0), axis=0)
    count = np.cumsum(ok, axis=0)
    out = np.full(Y.shape, np.nan)
    for lag in np.unique(_lags()):
        cols = _lags() == lag
        shift = int(lag) + 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[shift:, cols] = csum[:-shift, cols] / count[:-shift, cols]
    return out


def mean_rank_prior(Y: np.ndarray) -> np.ndarray:
    """Each target's mean daily rank (0..1) over its delivered labels: the competition's stable prior."""
    count = (~np.isnan(Y)).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ranks = (average_ranks(Y) - 0.5) / count
    return delivered_mean(Y, ranks)


def oof_score(pred: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> float:
    """The score of pred against Y (days x targets) on the masked days by the engine's own rule
    (`score_block`): NaN predictions count as 0 and a constant day as correlation 0, so a forecast
    with no information on some day (an effect whose window is empty) is scored, not refused, and
    one with none on any day (a market without planted effects) scores 0."""
    value = score_block(pred, Y, mask)["score"]
    return 0.0 if np.isnan(value) else value


def neutral_score(pred: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> float:
    """oof_score of pred after the blend's own nested rule (`nested_blend` with pred as its one
    member: each fold's factor count and tied share chosen on the folds before)."""
    from kaggle_kernel.blend import tie_groups
    from offline.train.blending import nested_blend

    folds = walk_forward(Y.shape[0], N_FOLDS, GAP, MIN_TRAIN)
    groups = tie_groups(target_defs())
    return oof_score(nested_blend({"forecast": np.nan_to_num(pred)}, Y, folds, groups)["oof"], Y, mask)


def _target_matrix(leg_cols: list[str]) -> np.ndarray:
    """(legs, targets): +1 for leg A, -1 for leg B."""
    col = {c: j for j, c in enumerate(leg_cols)}
    out = np.zeros((len(leg_cols), len(target_defs())))
    for k, t in enumerate(target_defs()):
        out[col[t.leg_a], k] += 1
        if t.leg_b is not None:
            out[col[t.leg_b], k] -= 1
    return out


def effect_features(market) -> tuple[list[str], np.ndarray]:
    """(names, (days, targets, features)) of the planted effects from observable data (see module docstring)."""
    from offline.data.synthetic.filter import observed_z
    from offline.data.synthetic.universe import build_universe

    universe = build_universe()
    dyn = market.dynamics
    days = market.config.days
    prices = market.prices.filter(pl.col("date_id") < days)
    z = np.nan_to_num(observed_z(prices, universe))
    leg_cols = sorted({c for t in target_defs() for c in (t.leg_a, t.leg_b) if c is not None})
    to_targets = universe.leg_matrix(leg_cols) @ _target_matrix(leg_cols)  # (assets, targets)
    lags = _lags()
    p = market.regimes["p_stressed_filtered"].to_numpy()
    csum = np.vstack([np.zeros((1, z.shape[1])), np.cumsum(z, axis=0)])
    names, feats = [], []
    for term in dyn.terms:
        # planted mean (per target, one day) of the window ending on e, for every e
        end = np.arange(days) + 1
        window = csum[end] - csum[np.clip(end - term.window, 0, None)]
        per_day = (window @ term.matrix.T / term.window) @ to_targets  # (days, targets)
        x = np.zeros((days, lags.size))
        for j in range(2, int(lags.max()) + 2):  # target day t + j, window ending t + j - delay (or t)
            back = max(term.delay - j, 0)
            shifted = np.zeros_like(per_day)
            shifted[back:] = per_day[: days - back]
            x += np.where(lags[None, :] + 1 >= j, shifted, 0.0)
        names.append(term.name)
        feats.append(x)
        if term.calm != term.stressed:
            names.append(f"{term.name}_x_p_stressed")
            feats.append(x * p[:, None])
    if np.any(dyn.drift):
        names.append("stress_drift")
        feats.append((p - dyn.pi)[:, None] * (lags * (dyn.drift @ to_targets))[None, :])
    if np.any(dyn.alpha):
        Y = _labels(market)
        names += ["delivered_mean", "mean_rank"]
        rms = np.sqrt(delivered_mean(Y, Y * Y))  # the prior's rank offset in return units
        feats += [np.nan_to_num(delivered_mean(Y)), np.nan_to_num((mean_rank_prior(Y) - 0.5) * rms)]
    if not feats:  # nothing planted: the yardstick has nothing to be handed
        return names, np.zeros((days, lags.size, 0))
    return names, np.stack(feats, axis=2)


def _labels(market) -> np.ndarray:
    return market.labels.select([t.name for t in target_defs()]).cast(pl.Float64).to_numpy()


def ridge_walk_forward(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, list[list[float]]]:
    """OOF predictions (days, targets) of one pooled ridge per fold, fit on the fold's training days only."""
    from sklearn.linear_model import Ridge

    days, n_targets, n_feat = X.shape
    pred = np.full((days, n_targets), np.nan)
    coefs = []
    if n_feat == 0:  # no features: no information, the constant forecast
        return np.zeros((days, n_targets)), coefs
    for fold in walk_forward(days, N_FOLDS, GAP, MIN_TRAIN):
        xtr = X[: fold.train_end].reshape(-1, n_feat)
        ytr = Y[: fold.train_end].ravel()
        ok = ~np.isnan(ytr)
        mean, std = xtr[ok].mean(axis=0), xtr[ok].std(axis=0) + 1e-12
        model = Ridge(alpha=RIDGE_ALPHA).fit((xtr[ok] - mean) / std, ytr[ok])
        xte = X[fold.test_start : fold.test_end].reshape(-1, n_feat)
        pred[fold.test_start : fold.test_end] = model.predict((xte - mean) / std).reshape(-1, n_targets)
        coefs.append([round(float(c), 8) for c in model.coef_])
    return pred, coefs


def measure(market) -> Yardstick:
    """Oracle, yardstick and baseline scores of a generated market on the engine's blend days."""
    from offline.data.synthetic.directory import naive_predictions

    Y = _labels(market)
    days = Y.shape[0]
    mask = engine_blend_mask(days)
    names, X = effect_features(market)
    pred, coefs = ridge_walk_forward(X, Y)
    oracle = market.oracle.select([t.name for t in target_defs()]).to_numpy()
    naive = naive_predictions(market.labels, list(range(days))).drop("date_id").to_numpy()
    return Yardstick(
        profile=market.config.profile,
        seed=market.config.seed,
        n_days=days,
        blend_days=int(mask.sum()),
        oracle=oof_score(oracle, Y, mask),
        yardstick=oof_score(pred, Y, mask),
        naive=oof_score(naive, Y, mask),
        mean_rank=oof_score(mean_rank_prior(Y), Y, mask),
        features=names,
        coefficients=coefs,
        oracle_neutral=neutral_score(oracle, Y, mask),
        yardstick_neutral=neutral_score(pred, Y, mask),
    )


def write_yardstick(directory: Path | str) -> Yardstick:
    """Regenerate the market of a synthetic directory from its synthetic_truth.json, check it, write yardstick.json."""
    from offline.data.synthetic.directory import TRUTH_FILE, SynthConfig, generate

    directory = Path(directory)
    truth_path = directory / TRUTH_FILE
    if not truth_path.exists():
        raise UserError(f"{truth_path} not found: the yardstick needs a directory written by `data synth`")
    cfg = SynthConfig(**json.loads(truth_path.read_text())["config"])
    market = generate(cfg)
    written = load_competition(directory).train_labels
    if written is None or not written.equals(market.labels):
        raise UserError(f"{directory}/train_labels.csv differs from the market its {TRUTH_FILE} describes")
    result = measure(market)
    (directory / YARDSTICK_FILE).write_text(result.to_json())
    return result
