"""The synthetic market's two-state volatility regime and the pressure process that foreshadows it.

Calm days may start a build-up ("pressure" ramps linearly from 0 to 1 over 5-15 days). At the end
of a build-up the market turns stressed with probability `switch_prob` (otherwise a false alarm
whose pressure fades over five days). A stressed day is followed by a calm one with probability
`exit_prob`. Pressure drives the equity proxy's vol-of-vol, so onsets are visible in advance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_RAMP = 5
MAX_RAMP = 15
FADE_DAYS = 5


@dataclass(frozen=True)
class RegimeParams:
    ramp_rate: float = 1 / 90  # chance per quiet calm day that a build-up starts
    switch_prob: float = 0.7  # chance a build-up ends in the stressed state
    exit_prob: float = 1 / 30  # daily chance a stressed spell ends

    def stationary_stressed(self) -> float:
        """Long-run fraction of stressed days implied by the parameters (renewal argument)."""
        mean_ramp = (MIN_RAMP + MAX_RAMP) / 2
        cycle = 1 / self.ramp_rate + mean_ramp  # waiting + build-up
        calm = cycle / self.switch_prob + FADE_DAYS * (1 / self.switch_prob - 1)
        stressed = 1 / self.exit_prob
        return stressed / (calm + stressed)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "min_ramp": MIN_RAMP,
            "max_ramp": MAX_RAMP,
            "stationary_stressed": self.stationary_stressed(),
        }


@dataclass(frozen=True)
class RegimePath:
    stressed: np.ndarray  # bool per day
    pressure: np.ndarray  # 0..1 per day
    ramp_end: np.ndarray  # last day of the build-up in progress on that day, -1 if none
    params: RegimeParams

    def prob_stressed(self, horizon: int) -> np.ndarray:
        """(days, horizon+1): P(stressed on day t+h | regime state and pressure known on day t), h = 0..horizon.

        A new build-up lasts at least MIN_RAMP days, so within MIN_RAMP days only a build-up already
        in progress can start a stressed spell; the probabilities below are exact for h <= MIN_RAMP.
        """
        p = self.params
        t = np.arange(self.stressed.size)
        h = np.arange(horizon + 1)
        stay = (1 - p.exit_prob) ** h[None, :]
        out = np.where(self.stressed[:, None], stay, 0.0)
        ramp = (self.ramp_end >= 0) & ~self.stressed
        onset = self.ramp_end + 1  # first stressed day if the build-up switches
        k = (t[:, None] + h[None, :]) - onset[:, None]
        from_ramp = np.where(k >= 0, p.switch_prob * (1 - p.exit_prob) ** np.maximum(k, 0), 0.0)
        return np.where(ramp[:, None], from_ramp, out)

    def episodes(self) -> list[dict]:
        """Stressed spells as {onset, end, days} with day indices relative to the path."""
        s = self.stressed.astype(np.int8)
        edges = np.diff(np.concatenate([[0], s, [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        return [
            {"onset": int(a), "end": int(b), "days": int(b - a + 1)}
            for a, b in zip(starts, ends, strict=True)
        ]


def simulate_regime(days: int, rng: np.random.Generator, params: RegimeParams | None = None) -> RegimePath:
    """Draw a regime path of `days` days (sequential state machine; a few thousand steps)."""
    p = params or RegimeParams()
    stressed = np.zeros(days, dtype=bool)
    pressure = np.zeros(days)
    ramp_end = np.full(days, -1, dtype=np.int64)
    u = rng.random((days, 3))
    lengths = rng.integers(MIN_RAMP, MAX_RAMP + 1, size=days)
    state_stressed, ramp_start, ramp_len, switch, fade = False, -1, 0, False, 0.0
    for d in range(days):
        if state_stressed:
            stressed[d] = True
            pressure[d] = fade = max(0.0, fade - 1.0 / FADE_DAYS)
            if u[d, 0] < p.exit_prob:
                state_stressed = False
            continue
        if ramp_start >= 0:
            i = d - ramp_start
            pressure[d] = (i + 1) / ramp_len
            ramp_end[d] = ramp_start + ramp_len - 1
            if d == ramp_end[d]:
                ramp_start = -1
                fade = 1.0
                state_stressed = switch
            continue
        if fade > 0:
            pressure[d] = fade = max(0.0, fade - 1.0 / FADE_DAYS)
            continue
        if u[d, 1] < p.ramp_rate:
            ramp_start, ramp_len, switch = d, int(lengths[d]), bool(u[d, 2] < p.switch_prob)
            pressure[d] = 1 / ramp_len
            ramp_end[d] = d + ramp_len - 1
            if ramp_len == 1:
                ramp_start = -1
    return RegimePath(stressed=stressed, pressure=pressure, ramp_end=ramp_end, params=p)
