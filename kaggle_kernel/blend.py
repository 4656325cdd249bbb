"""The served blend: each member's predictions put on one scale across targets per day (ranks, or
z-scores where training found them better), weighted, then made neutral to the labels' leading factors.

Ranking puts members on one scale (the metric only sees ranks), but it spreads a member that is
confident on a few targets evenly over all of them; a day's z-scores keep how far each target
stands out, which is what a sparse signal (a lead-lag that moves a handful of followers) is.
The labels' daily ranks share a few common factors (targets that move together); a forecast exposed to one gains or loses with that
factor's daily sign, which widens the spread of the daily correlations more than it moves their
mean, so the blend leaves its exposure to the factors training chose (`neutralize`). Where the
forecast's information sits in a few targets, ranking the rest adds only noise, so the share of
each day's targets nearest its median that training chose is tied (`tie_middle`). Training scores
exactly these functions on out-of-fold predictions and the kernel serves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kaggle_kernel.features import FeatureSpec, day_ranks, pooled_rows
from kaggle_kernel.forest import Forest, Linear
from kaggle_kernel.local import LocalLinear
from kaggle_kernel.schema import TargetDef

MEMBERS = ("prior", "pooled", "engine", "ridge", "local", "leaders", "recent")
PER_TARGET = ("local", "leaders")  # members served as a LocalLinear (one npz each)
RECENT_STAT = "lrank"  # the recent member: each target's own mean daily rank over its newest delivered labels


def recent_index(spec: FeatureSpec) -> np.ndarray:
    """Positions, in the global feature vector, of every target's RECENT_STAT (its online label prior)."""
    return np.array([spec.positions[f"{t.name}_{RECENT_STAT}"] for t in spec.targets], dtype=np.int64)


SCALES = ("rank", "z")  # how members enter the mix: day ranks, or day z-scores (`day_scores`)
Z_CLIP = 3.0  # a day's z-scores are clipped here: one target's outlier cannot take the day
RANK_SD = float(np.sqrt(1 / 12))  # the spread of a day's ranks on [-0.5, 0.5]; z-scores are put on it


def day_scores(values: np.ndarray) -> np.ndarray:
    """Each row centred and divided by its spread over its finite values, clipped at +-Z_CLIP and
    scaled by RANK_SD (so a mix weighs it as it would ranks); non-finite cells and rows with fewer
    than two finite values NaN, a row without spread 0."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    ok = np.isfinite(v)
    n = ok.sum(axis=-1, keepdims=True)
    c = np.where(ok, v, 0.0)
    c = np.where(ok, c - c.sum(axis=-1, keepdims=True) / np.maximum(n, 1), 0.0)
    sd = np.sqrt((c**2).sum(axis=-1, keepdims=True) / np.maximum(n, 1))
    z = np.clip(c / np.where(sd > 0, sd, 1.0), -Z_CLIP, Z_CLIP) * RANK_SD
    return np.where(ok & (n >= 2), z, np.nan).reshape(np.shape(values))


def on_scale(values: np.ndarray, scale: str) -> np.ndarray:
    """A member's predictions on the blend's scale: `day_ranks` or `day_scores` (NaN stays NaN)."""
    return day_scores(values) if scale == "z" else day_ranks(values)


def blend(preds: Sequence[np.ndarray], weights: Sequence[float], scale: str = "rank") -> np.ndarray:
    """sum_k w_k * scaled_k across the last axis (targets), `on_scale`; a missing prediction contributes 0."""
    out = np.zeros(np.shape(preds[0]), dtype=np.float64)
    for p, w in zip(preds, weights, strict=True):
        if w:
            out += w * np.nan_to_num(on_scale(p, scale), nan=0.0)
    return out


def exposure_free(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Each row, centred, minus its projection on the factors (targets x k, orthonormal columns)."""
    p = values - values.mean(axis=-1, keepdims=True)
    return p - (p @ factors) @ factors.T


def neutralize(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Each row (a day's blend over the targets) made exposure-free and ranked again; no factors:
    the rows unchanged."""
    return day_ranks(exposure_free(values, factors)) if factors.shape[1] else values


def neutral_mix(values: np.ndarray, factors: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """`neutralize` to the first k factors for each k in counts, the results summed and ranked again
    (one count: that neutralize alone). Where several counts score alike in training, their average
    is steadier than any one of them, whose pick is noise (README: averaging the factor counts)."""
    if len(counts) == 1:
        return neutralize(values, factors[:, : counts[0]])
    return day_ranks(sum(neutralize(values, factors[:, :k]) for k in counts))


KEEP_PER_GROUP = 1  # values of every tie group that stay untied, whatever the share (README: 1 against 2, 3)


def tie_groups(targets: Sequence[TargetDef]) -> np.ndarray:
    """Per target, a code for (the exchanges of its legs, its lag). A day's labels go missing by these
    groups (an exchange holiday empties every target with a leg there, lag by lag): on the public
    window some scored days label only the FX-JPX targets."""
    keys = [(tuple(sorted({leg.split("_")[0] for leg in (t.leg_a, t.leg_b) if leg})), t.lag) for t in targets]
    codes = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.array([codes[k] for k in keys], dtype=np.int64)


def tie_middle(values: np.ndarray, share: float, groups: np.ndarray | None = None) -> np.ndarray:
    """Each row's `share` of values nearest its median set to the median. The metric ranks them as
    one tie, which adds nothing to a day's correlation, where ranking them by a forecast's noise
    would add noise: a forecast confident on a few targets keeps its edge. The KEEP_PER_GROUP values
    of each group farthest from the median stay untied, so a day that labels only some groups
    never sees a constant forecast (the metric raises on one). share 0: unchanged."""
    if share <= 0:
        return values
    rows = np.atleast_2d(values)
    mid = np.median(rows, axis=-1, keepdims=True)
    dist = np.abs(rows - mid)
    tied = dist <= np.quantile(dist, share, axis=-1, keepdims=True)
    if groups is not None:
        # each row's columns by group, then farthest first (the lower column on equal distances)
        n = rows.shape[-1]
        order = np.lexsort(
            (np.broadcast_to(np.arange(n), rows.shape), -dist, np.broadcast_to(groups, rows.shape))
        )
        sizes = np.bincount(groups)
        rank = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)  # place within its group
        np.put_along_axis(
            tied, order, np.take_along_axis(tied, order, axis=-1) & (rank >= KEEP_PER_GROUP), axis=-1
        )
    return np.where(tied, mid, rows).reshape(np.shape(values))


@dataclass(frozen=True)
class BlendSpec:
    """Members (in MEMBERS), their weights, the targets blended, the prior vector (one per target),
    the label factors the blend is made neutral to (k vectors over the blended targets), the factor
    counts whose neutral blends are averaged (`neutral_mix`; none: all k), the share of each
    day's blended targets tied at its median (`tie_middle`) and the members' scale (SCALES)."""

    members: tuple[str, ...]
    weights: tuple[float, ...]
    targets: tuple[int, ...]
    prior: tuple[float | None, ...]
    factors: tuple[tuple[float, ...], ...] = ()
    ties: float = 0.0
    counts: tuple[int, ...] = ()
    scale: str = "rank"

    def to_json(self) -> dict:
        return {
            "members": list(self.members),
            "weights": list(self.weights),
            "targets": list(self.targets),
            "prior": list(self.prior),
            "factors": [list(f) for f in self.factors],
            "ties": self.ties,
            "counts": list(self.counts),
            "scale": self.scale,
        }

    @classmethod
    def from_json(cls, d: Mapping) -> BlendSpec:
        members = tuple(d["members"])
        unknown = [m for m in members if m not in MEMBERS]
        if unknown or len(d["weights"]) != len(members):
            raise ValueError(f"blend: unknown members {unknown} or weights not one per member")
        targets = tuple(int(t) for t in d["targets"])
        factors = tuple(tuple(float(v) for v in f) for f in d.get("factors", ()))
        if any(len(f) != len(targets) for f in factors):
            raise ValueError(f"blend: a factor without one value per blended target ({len(targets)})")
        ties = float(d.get("ties", 0.0))  # a blend from before the tie step has none
        if not 0 <= ties < 1:
            raise ValueError(f"blend: ties must be a share in [0, 1), got {ties!r}")
        counts = tuple(int(k) for k in d.get("counts", ()))  # nor one from before the averaged counts
        if counts and (list(counts) != sorted(set(counts)) or counts[0] < 0 or counts[-1] != len(factors)):
            raise ValueError(
                f"blend: counts must increase from 0 or more up to the {len(factors)} factors, got {list(counts)}"
            )
        scale = d.get("scale", "rank")  # nor one from before the z-scores
        if scale not in SCALES:
            raise ValueError(f"blend: scale must be one of {list(SCALES)}, got {scale!r}")
        return cls(
            members,
            tuple(float(w) for w in d["weights"]),
            targets,
            tuple(None if v is None else float(v) for v in d["prior"]),
            factors,
            ties,
            counts,
            scale,
        )

    def prior_vector(self) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in self.prior], dtype=np.float64)

    def factor_matrix(self) -> np.ndarray:
        """(blended targets, k): the factors as the columns `neutralize` takes."""
        return np.array(self.factors, dtype=np.float64).reshape(len(self.factors), len(self.targets)).T

    def factor_counts(self) -> tuple[int, ...]:
        """The counts `neutral_mix` averages: a spec without them is neutral to all its factors."""
        return self.counts or (len(self.factors),)


class Blend:
    """Serves the blend for one day from its global feature vector and the engine's predictions."""

    def __init__(
        self,
        spec: FeatureSpec,
        blend_spec: BlendSpec,
        pooled: Forest,
        ridge: Linear,
        per_target: Mapping[str, LocalLinear] | None = None,
    ):
        self.spec, self.blend_spec, self.ridge = spec, blend_spec, ridge
        self.pooled = pooled.sharing(spec.pooled_context())  # one day's rows share the context
        self.per_target = dict(per_target or {})
        self.targets = np.array(blend_spec.targets, dtype=np.int64)
        self.prior = blend_spec.prior_vector()
        self.factors = blend_spec.factor_matrix()
        self.counts = blend_spec.factor_counts()
        if not np.isfinite(self.factors).all():
            raise ValueError("blend: a factor value is not finite")
        if len(self.prior) != len(spec.targets):
            raise ValueError(f"blend: {len(self.prior)} prior values for {len(spec.targets)} targets")
        weights = dict(zip(blend_spec.members, blend_spec.weights, strict=True))
        self.active = [m for m in blend_spec.members if weights[m]]
        self.weights = [weights[m] for m in self.active]
        missing = [m for m in self.active if m in PER_TARGET and m not in self.per_target]
        if missing:
            raise ValueError(f"blend: the {', '.join(missing)} member is weighted but no model was given")
        self.index = {False: spec.pooled_index(), True: spec.pooled_index(structural=True)}
        self.local_index = spec.local_index() if self.per_target else None
        self.recent_index = recent_index(spec)
        self.tie_groups = tie_groups([spec.targets[i] for i in self.targets])

    def members(self, x: np.ndarray, engine: np.ndarray) -> dict[str, np.ndarray]:
        """Each weighted member's predictions for every target (only the weighted ones are computed)."""
        out = {}
        gathered = None  # local_layout's values of every target, gathered once for the per-target members
        for m in self.active:
            if m == "prior":
                out[m] = self.prior
            elif m == "engine":
                out[m] = engine
            elif m == "pooled":
                out[m] = self.pooled.predict(pooled_rows(self.spec, x[None, :], self.index[False]))[:, 0]
            elif m in PER_TARGET:
                if gathered is None:
                    gathered = np.asarray(x, dtype=np.float64)[self.local_index]
                out[m] = self.per_target[m].predict_values(gathered)
            elif m == "recent":
                out[m] = x[self.recent_index]
            else:
                out[m] = self.ridge.predict(pooled_rows(self.spec, x[None, :], self.index[True]))
        return out

    def predict(self, x: np.ndarray, engine: np.ndarray) -> np.ndarray:
        """The blend on its targets; `engine` (the two-stage predictions, naive elsewhere) on the others."""
        preds = self.members(x, engine)
        rows = [preds[m][self.targets] for m in self.active]
        out = np.asarray(engine, dtype=np.float64).copy()
        mixed = neutral_mix(blend(rows, self.weights, self.blend_spec.scale), self.factors, self.counts)
        out[self.targets] = tie_middle(mixed, self.blend_spec.ties, self.tie_groups)
        return out
