"""Named synthetic markets: the default and other effect mixes, each with its own planted effects.

Coefficients are calibrated so that the filtered oracle scores roughly 1.0-1.2 over the engine's
out-of-fold days (4-fold walk-forward, the last 60% of days), far weaker than the first version's 1.9
but still above the best real private score (0.64). `python -m offline data yardstick DIR` scores the
oracle, the informed linear yardstick and the simple baselines of a written directory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from offline.data.synthetic.market import HORIZON, WIDE_LEAD_LAG, Effects
from offline.errors import UserError

# Effects fields `data synth --effects` may override: every coefficient, window and delay, and
# which assets lead which (`strength` has its own option).
WINDOWS = ("lead_lag_window", "momentum_window")
DELAYS = ("lead_lag_delay",)
PAIRS = "lead_lag_pairs"  # {"source asset": ["follower", ...], ...}: base asset names of the universe
EffectValue = float | dict[str, list[str]]  # a number, or the lead-lag pairs
OVERRIDABLE = tuple(f.name for f in fields(Effects) if f.name != "strength")


@dataclass(frozen=True)
class Profile:
    """A named effect mix and a one-line statement of what it plants."""

    name: str
    about: str
    effects: Effects


_NO_EFFECTS = dict(
    lead_lag=0.0,
    reversal=0.0,
    spread_reversal=0.0,
    momentum_calm=0.0,
    momentum_stressed=0.0,
    stress_drift=0.0,
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "default",
            "short lead-lag LME -> US miners, residual and spread reversal, regime-dependent 21-day "
            "momentum, stress drift, persistent per-asset drift",
            Effects(
                lead_lag=0.3,
                reversal=-0.4,
                spread_reversal=-0.5,
                momentum_calm=0.5,
                momentum_stressed=-0.6,
                stress_drift=0.35,
                persistent_drift=0.06,
            ),
        ),
        Profile(
            "drift_momentum",
            "slow (63-day) residual momentum, the same in both regimes, and a persistent per-asset drift",
            Effects(
                **{**_NO_EFFECTS, "momentum_calm": 0.6, "momentum_stressed": 0.6},
                momentum_window=63,
                persistent_drift=0.025,
            ),
        ),
        Profile(
            "leadlag_flight",
            "LME -> US lead-lag delayed 8-17 days (more than a week) and a volatility-state flight to "
            "quality (strong stress drift); no reversal, no momentum, no persistent drift",
            Effects(
                **{**_NO_EFFECTS, "lead_lag": 1.8, "stress_drift": 1.2},
                lead_lag_window=10,
                lead_lag_delay=8,
                lead_lag_pairs=WIDE_LEAD_LAG,
            ),
        ),
    )
}


def profile(name: str) -> Profile:
    """The named profile; an unknown name is a UserError listing the known ones."""
    if name not in PROFILES:
        raise UserError(f"unknown synthetic profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def with_overrides(effects: Effects, overrides: Mapping[str, EffectValue]) -> Effects:
    """`effects` with some fields replaced (`data synth --effects`): a market of the user's own mix.
    An unknown field or a value the generator cannot simulate is a UserError naming it."""
    overrides = dict(overrides)
    pairs = _lead_lag_pairs(overrides.pop(PAIRS)) if PAIRS in overrides else effects.lead_lag_pairs
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise UserError(f"--effects: unknown effect {key!r}; choose from {', '.join(OVERRIDABLE)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UserError(f"--effects: {key} must be a finite number (got {value!r})")
        if key in WINDOWS + DELAYS and value != int(value):
            raise UserError(f"--effects: {key} must be a whole number of days (got {value!r})")
        if key in WINDOWS and value < HORIZON:
            raise UserError(
                f"--effects: {key} must be at least the {HORIZON}-day forecast horizon (got {value!r})"
            )
        if key in DELAYS and value < 1:
            raise UserError(f"--effects: {key} must be at least 1 day (got {value!r})")
        if key == "persistent_drift" and value < 0:
            raise UserError(
                f"--effects: persistent_drift is a standard deviation, at least 0 (got {value!r})"
            )
    return replace(
        effects,
        lead_lag_pairs=pairs,
        **{k: int(v) if k in WINDOWS + DELAYS else float(v) for k, v in overrides.items()},
    )


def _lead_lag_pairs(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`lead_lag_pairs` from --effects: an object of source asset -> list of followers, every name
    an asset of the synthetic universe (a misspelt one is a UserError naming it and listing some)."""
    from offline.data.synthetic.universe import build_universe

    if not isinstance(value, Mapping) or not value:
        raise UserError(
            f'--effects: {PAIRS} must be an object like {{"LME_CA": ["US_Stock_FCX"]}} (got {value!r})'
        )
    names = build_universe().names
    out = []
    for source, followers in value.items():
        if isinstance(followers, str) or not isinstance(followers, list | tuple) or not followers:
            raise UserError(
                f"--effects: {PAIRS}[{source!r}] must be a list of follower assets (got {followers!r})"
            )
        for name in (source, *followers):
            if name not in names:
                raise UserError(
                    f"--effects: {PAIRS}: unknown asset {name!r}; assets are the universe's base names,"
                    f" e.g. {', '.join(names[:3])}, US_Stock_FCX, CCY_AUD"
                )
        if source in followers:
            raise UserError(f"--effects: {PAIRS}: {source!r} cannot follow itself")
        out.append((source, tuple(followers)))
    return tuple(out)
