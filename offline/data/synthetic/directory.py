"""The kit's built-in default data: a synthetic market in the competition's exact layout, with an oracle.

`write_synthetic(out, SynthConfig(days, test_days, seed))` writes train.csv (557 real column names in
real order), train_labels.csv (the exact target formula), target_pairs.csv (from the schema),
test.csv (the last `test_days` train rows + is_scored, about 2/3 true), the four
lagged_test_labels files in Kaggle's layout, plus oracle.parquet, oracle_latent.parquet,
regimes.parquet and synthetic_truth.json. Same seed, same bytes.

The market (see universe, regime, market, observe):
- levels, daily vols, tick sizes, volumes and null patterns from market_stats.json (real window);
- factors: global equity, industrial metals, precious metals, energy, rates, dollar, emerging
  markets and one factor per currency; FX columns are exact cross rates of nine currencies;
- a persistent calm/stressed regime (stressed vol 1.2-2x calm per class) whose onsets follow a
  5-15 day build-up of "pressure" that raises the equity factor's vol-of-vol;
- Student-t(5) shocks; exchange holidays, late starters, series that end, 1-3 day gaps.

Planted predictability: the profile (profiles.py; `SynthConfig.profile`, `data synth --profile`)
chooses the effect mix, `SynthConfig.effects` replaces some of its coefficients, windows and delays
(`data synth --effects`: a mix of one's own), `SynthConfig.strength` scales it; the exact coefficients and assets used,
and what an oracle needs for each effect, are in synthetic_truth.json. Coefficients act on
standardised returns z = log return / daily vol. A "residual" is an asset's z minus beta x the z of
its sector proxy (VT for equities, XLE for energy, IEF for bonds, JPX gold for gold/silver, LME
copper for copper miners, EUR for currencies), so every effect is a linear function of returns the
kit's features observe. The default profile, on windows ending two days before the return they move:
1. lead-lag: US copper miners (FCX SCCO TECK RIO VALE) gain 0.3 x the mean of LME copper's five z
   ending two days earlier; steel (CLF NUE STLD X) from LME zinc; ALB XLB LYB from LME aluminium.
2. short-term reversal: US stocks and ETFs (all but the sector proxies) and currencies gain -0.4 x
   the mean of their own five residual z.
3. spread reversal: LME CA-ZS, AH-ZS, PB-AH and JPX platinum-gold spreads revert with -0.5 x the
   mean of the spread's five z (split over both legs).
4. regime-dependent momentum: US stocks/ETFs and currencies gain +0.5 (calm) or -0.6 (stressed) x
   the mean of their own 21 residual z.
5. stress drift: in the stressed state equities, metals and commodity currencies drift down, bonds,
   gold, JPY and CHF up (up to 0.05 daily vols), centred so the long-run mean is zero.
6. persistent drift: every asset gains a constant alpha (normal, std 0.06 daily vols, half of each
   class mean removed), so each target's mean daily rank carries real but partial information.
The other profiles: drift_momentum (63-day residual momentum, the same in both regimes, and a
persistent drift) and leadlag_flight (metals, gold and oil leading miners, currencies and
midstream by 8-17 days, and a strong volatility-state flight to quality).

Oracles (both date_id + target_0..target_423 for every train day; targets of day t cover days
t+2..t+L+1, so an oracle sums expected leg returns over those days, from the planted recursion run
forward with zero future shocks and the regime-dependent momentum coefficient and stress drift at
their expectations under P(stressed on t+1..t+5)):
- oracle.parquet, the reference: E[target(t) | returns observable up to day t], knowing every
  planted coefficient (the persistent drift alpha included). P(stressed on t) is
  the two-state forward filter of filter.py over the observed daily close returns of all 114
  base assets (nulls = missing), with the generator's emission model (class vol ratios,
  Student-t(5) factor and idiosyncratic shocks, the planted means of each state); it is propagated
  to t+1..t+5 with the two-state transition matrix. Approximations: the build-up is ignored in
  the emission and folded into a constant calm->stressed hazard that matches the stationary
  stressed share; the recursion's windows use the latent z of null days (a gap's total is visible
  in the next price, only its split over the gap days is not). It never uses labels.
- oracle_latent.parquet: the same with the latent regime state and build-up on day t, i.e. the exact
  P(stressed) of the regime path for t+1..t+5 (unreachable by a model; kept for reference).
regimes.parquet holds the true state, the build-up, the latent P(stressed on t+1) and the filtered
P(stressed on t) (p_stressed_filtered).
The filter is sharp (ROC AUC above 0.998 against the true state for every profile, seeds 0-2).
On the engine's out-of-fold days (4-fold walk-forward, the last 60% of 1961 days), the filtered
oracle of the default scores 1.14, 1.22 and 1.12 (seeds 0-2), the latent one 1.15, 1.22, 1.14; the
naive last-delivered-label predictor about -0.12 and the per-target mean-rank prior 0.39-0.54
(offline.data.synthetic.yardstick, `python -m offline data yardstick DIR`). The pooled slope of
the labels on the oracle is 0.98-1.06: the oracle is unbiased.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from kaggle_kernel.schema import LAGS, target_defs
from offline.data.competition import LAG_DIR, TARGET_PAIRS, TEST, TRAIN, TRAIN_LABELS, lag_file
from offline.data.synthetic.filter import filter_stressed, propagate
from offline.data.synthetic.market import (
    HORIZON,
    Dynamics,
    Effects,
    build_dynamics,
    forecast,
    simulate_returns,
)
from offline.data.synthetic.observe import observe, plan_nulls, protected_instruments
from offline.data.synthetic.profiles import EffectValue, profile, with_overrides
from offline.data.synthetic.regime import RegimeParams, simulate_regime
from offline.data.synthetic.universe import Universe, build_universe, market_stats
from offline.data.targets import compute_targets, lagged_label_frames
from offline.errors import UserError

BURN_IN = 63  # days simulated and discarded so rolling sums start full
EXTRA_DAYS = 5  # prices beyond the last train day, so the last labels are known (as on Kaggle)
SCORED_SHARE = 90 / 134  # is_scored share of the real public window
ORACLE_FILE = "oracle.parquet"
ORACLE_LATENT_FILE = "oracle_latent.parquet"
REGIMES_FILE = "regimes.parquet"
TRUTH_FILE = "synthetic_truth.json"


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. `strength` scales every planted effect (1.0 = the documented defaults);
    `effects` replaces some of the profile's coefficients, windows and delays (profiles.OVERRIDABLE)."""

    days: int = 1961
    test_days: int = 134
    seed: int = 0
    strength: float = 1.0
    profile: str = "default"
    effects: dict[str, EffectValue] = field(default_factory=dict)

    def planted(self) -> Effects:
        """The effect mix this config simulates (an unknown profile or override is a UserError)."""
        return replace(with_overrides(profile(self.profile).effects, self.effects), strength=self.strength)

    def validate(self) -> None:
        self.planted()
        if self.days < 60:
            raise UserError(f"--days must be at least 60 (got {self.days})")
        if not 5 <= self.test_days <= self.days - 30:
            raise UserError(
                f"--test-days must be between 5 and days - 30 = {self.days - 30} (got {self.test_days})"
            )
        if self.seed < 0:
            raise UserError(f"--seed must be >= 0 (got {self.seed})")
        if not 0 <= self.strength <= 3:
            raise UserError(f"strength must be within 0..3 (got {self.strength})")


@dataclass
class SyntheticMarket:
    """Everything generated in memory; `write_synthetic` writes it out."""

    config: SynthConfig
    prices: pl.DataFrame  # date_id + 557 features, days + EXTRA_DAYS rows
    labels: pl.DataFrame  # date_id + 424 targets, date_id < days
    oracle: pl.DataFrame  # date_id + 424 expected targets given observable returns, date_id < days
    oracle_latent: pl.DataFrame  # same layout, given the latent regime state and build-up as well
    regimes: pl.DataFrame  # date_id, stressed, pressure, p_stressed_next, p_stressed_filtered
    truth: dict
    z: np.ndarray  # latent standardised returns: BURN_IN rows, then one per price row
    dynamics: Dynamics


def _children(seed: int) -> dict[str, np.random.Generator]:
    """Independent streams per part, so changing one part's draws leaves the others alone."""
    parts = ("regime", "returns", "nulls", "observe", "drift")  # spawn keys: appending keeps earlier streams
    seqs = np.random.SeedSequence([seed, 20250]).spawn(len(parts))
    return {p: np.random.default_rng(s) for p, s in zip(parts, seqs, strict=True)}


def _oracle_targets(expected_legs: np.ndarray, columns: list[str]) -> np.ndarray:
    """(days, 424) expected targets from (days, HORIZON, legs) expected leg log returns."""
    col = {c: j for j, c in enumerate(columns)}
    defs = target_defs()
    out = np.empty((expected_legs.shape[0], len(defs)))
    for k, t in enumerate(defs):
        window = expected_legs[:, 1 : t.lag + 1]  # days t+2..t+L+1
        v = window[:, :, col[t.leg_a]].sum(axis=1)
        if t.leg_b is not None:
            v = v - window[:, :, col[t.leg_b]].sum(axis=1)
        out[:, k] = v
    return out


def oracle_frame(
    z: np.ndarray, dyn: Dynamics, p_stressed: np.ndarray, universe: Universe, days: int
) -> pl.DataFrame:
    """date_id + 424 expected targets for the last rows of the latent path z (BURN_IN rows, then `days` or more).

    p_stressed[u, h] = P(stressed on day u+h | the information the oracle conditions on at u), h = 0..HORIZON.
    """
    expected_z = forecast(z, dyn, p_stressed)[BURN_IN:][:days]
    leg_cols = sorted({c for t in target_defs() for c in (t.leg_a, t.leg_b) if c is not None})
    expected_legs = expected_z @ universe.leg_matrix(leg_cols)
    names = [t.name for t in target_defs()]
    return pl.concat(
        [
            pl.DataFrame({"date_id": np.arange(days, dtype=np.int64)}),
            pl.DataFrame(_oracle_targets(expected_legs, leg_cols), schema=names),
        ],
        how="horizontal",
    )


def filtered_oracle(
    prices: pl.DataFrame, z: np.ndarray, universe: Universe, dyn: Dynamics, params: RegimeParams, days: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """oracle.parquet (E[target | returns up to t]) and the filtered P(stressed) of every price row.

    prices: date_id + 557 features from day 0; z: the latent path, BURN_IN rows before prices' first row.
    Uses prices of days <= t (and z up to t) for day t's row, never labels.
    """
    p_now = filter_stressed(prices, z[: BURN_IN + prices.height], universe, dyn, params)
    p_path = np.full(z.shape[0], params.stationary_stressed())  # burn-in rows: no prices, never published
    p_path[BURN_IN : BURN_IN + p_now.size] = p_now
    return oracle_frame(z, dyn, propagate(p_path, params, HORIZON), universe, days), p_now


def _roc_auc(state: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve of `score` for the boolean `state` (Mann-Whitney, ties averaged)."""
    from scipy.stats import rankdata

    pos, neg = int(state.sum()), int((~state).sum())
    if not pos or not neg:
        return None
    ranks = rankdata(score)
    return float((ranks[state].sum() - pos * (pos + 1) / 2) / (pos * neg))


def generate(cfg: SynthConfig) -> SyntheticMarket:
    """Simulate the market, observe it, compute labels and the oracle (no file output)."""
    cfg.validate()
    rng = _children(cfg.seed)
    universe = build_universe()
    params = RegimeParams()
    total = BURN_IN + cfg.days + EXTRA_DAYS
    regime = simulate_regime(total, rng["regime"], params)
    market_profile = profile(cfg.profile)
    effects = cfg.planted()
    dyn = build_dynamics(universe, effects, params.stationary_stressed(), rng["drift"])
    path = simulate_returns(universe, dyn, regime, rng["returns"])

    keep = slice(BURN_IN, total)
    z = path.z[keep]
    log_ret = z * universe.vol
    log_close = np.cumsum(log_ret, axis=0)
    window = slice(max(0, cfg.days - int(market_stats()["window_rows"])), cfg.days)
    log_close += universe.log_level - log_close[window].mean(axis=0)

    n_obs = cfg.days + EXTRA_DAYS
    nulls = plan_nulls(
        universe, n_obs, cfg.days - cfg.test_days, cfg.test_days, protected_instruments(), rng["nulls"]
    )
    features = observe(
        universe,
        log_close,
        np.abs(z),
        regime.stressed[keep].astype(np.float64),
        path.vol_mult[keep],
        nulls,
        rng["observe"],
    )
    prices = pl.concat(
        [pl.DataFrame({"date_id": np.arange(n_obs, dtype=np.int64)}), features], how="horizontal"
    )
    labels = compute_targets(prices).filter(pl.col("date_id") < cfg.days)

    p_stressed = regime.prob_stressed(HORIZON)
    oracle_latent = oracle_frame(path.z, dyn, p_stressed, universe, cfg.days)
    oracle, p_filtered = filtered_oracle(prices, path.z, universe, dyn, params, cfg.days)
    stressed = regime.stressed[keep][: cfg.days]
    p_filtered = p_filtered[: cfg.days]
    reg = pl.DataFrame(
        {
            "date_id": np.arange(cfg.days, dtype=np.int64),
            "stressed": stressed,
            "pressure": regime.pressure[keep][: cfg.days],
            "p_stressed_next": p_stressed[keep, 1][: cfg.days],
            "p_stressed_filtered": p_filtered,
        }
    )
    truth = {
        "about": "Ground truth of a synthetic competition directory written by offline.data.synthetic.",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "profile": {"name": market_profile.name, "about": market_profile.about, "effects": effects.to_dict()},
        "effects": dyn.description,
        "regime": {
            **params.to_dict(),
            "vol_ratio_stressed_to_calm": dict(
                zip(universe.classes, universe.vol_ratio().tolist(), strict=True)
            ),
            "stressed_fraction": float(regime.stressed[keep][: cfg.days].mean()),
            "episodes": [
                {"onset": e["onset"] - BURN_IN, "end": e["end"] - BURN_IN, "days": e["days"]}
                for e in regime.episodes()
                if e["end"] >= BURN_IN and e["onset"] - BURN_IN < cfg.days
            ],
            "foreshadowing": "pressure ramps 0->1 over the 5-15 days before an onset (and before false alarms); "
            "it scales the global-equity factor shock by exp(0.9 * pressure * xi), xi an AR(1)",
            "filter": {
                "meaning": "p_stressed_filtered in regimes.parquet: P(stressed on t | observable returns up to t), "
                "two-state forward filter (offline.data.synthetic.filter)",
                "mean_abs_error": float(np.abs(p_filtered - stressed).mean()),
                "roc_auc": _roc_auc(stressed, p_filtered),
            },
        },
        "fat_tails": {"distribution": "student_t", "df": 5, "scaled_to_unit_variance": True},
        "nulls": {
            "exchange_holidays": {ex: len(v) for ex, v in nulls.holidays.items()},
            "late_starters": nulls.late_starters,
            "series_that_end": nulls.enders,
            "gaps": nulls.gaps,
        },
        "oracle": "oracle.parquet: E[target(t) | returns up to t], regime filtered from returns; see module docstring",
        "oracle_latent": "oracle_latent.parquet: E[target(t) | returns up to t, latent regime state and build-up on t]",
    }
    return SyntheticMarket(
        config=cfg,
        prices=prices,
        labels=labels,
        oracle=oracle,
        oracle_latent=oracle_latent,
        regimes=reg,
        truth=truth,
        z=path.z,
        dynamics=dyn,
    )


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)


def test_frame(market: SyntheticMarket) -> pl.DataFrame:
    """test.csv: the last test_days train rows with is_scored true for the first ~2/3 of them."""
    cfg = market.config
    start = cfg.days - cfg.test_days
    scored = int(round(cfg.test_days * SCORED_SHARE))
    rows = market.prices.filter(pl.col("date_id").is_between(start, cfg.days - 1))
    return rows.with_columns((pl.col("date_id") < start + scored).alias("is_scored"))


def scored_scores(market: SyntheticMarket) -> dict[str, float]:
    """Competition score of both oracles and of the naive last-delivered-label predictor on the scored days."""
    from offline.metric import score

    test = test_frame(market)
    days = test.filter("is_scored")["date_id"]
    solution = market.labels.filter(pl.col("date_id").is_in(days.implode()))
    naive = naive_predictions(market.labels, days.to_list())
    return {
        "oracle": score(solution, market.oracle.filter(pl.col("date_id").is_in(days.implode()))),
        "oracle_latent": score(
            solution, market.oracle_latent.filter(pl.col("date_id").is_in(days.implode()))
        ),
        "naive": score(solution, naive),
    }


def naive_predictions(labels: pl.DataFrame, date_ids: list[int]) -> pl.DataFrame:
    """Each target's most recently delivered label (day t - L - 1), 0 where it is null."""
    frames = lagged_label_frames(labels, date_ids)
    out = pl.DataFrame({"date_id": pl.Series(date_ids, dtype=pl.Int64)})
    for lag in LAGS:
        out = out.join(frames[lag].drop("label_date_id"), on="date_id", how="left")
    names = [t.name for t in target_defs()]
    return out.select("date_id", *[pl.col(n).fill_null(0.0) for n in names])


def write_synthetic(out: Path | str, cfg: SynthConfig | None = None) -> dict:
    """Write a complete synthetic competition directory to `out`; returns the truth summary."""
    cfg = cfg or SynthConfig()
    started = time.perf_counter()
    market = generate(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = pl.DataFrame([{"target": t.name, "lag": t.lag, "pair": t.pair} for t in target_defs()])
    _write_csv(pairs, out / TARGET_PAIRS)
    train = market.prices.filter(pl.col("date_id") < cfg.days)
    _write_csv(train, out / TRAIN)
    _write_csv(market.labels, out / TRAIN_LABELS)
    test = test_frame(market)
    _write_csv(test, out / TEST)
    (out / LAG_DIR).mkdir(exist_ok=True)
    for lag, frame in lagged_label_frames(market.labels, test["date_id"].to_list()).items():
        _write_csv(frame, out / lag_file(lag))
    market.oracle.write_parquet(out / ORACLE_FILE)
    market.oracle_latent.write_parquet(out / ORACLE_LATENT_FILE)
    market.regimes.write_parquet(out / REGIMES_FILE)
    truth = dict(market.truth)
    try:
        truth["scores_on_scored_test_days"] = scored_scores(market)
    except (ZeroDivisionError, ValueError) as exc:  # tiny sets can have degenerate days
        truth["scores_on_scored_test_days"] = {"error": str(exc)}
    truth["null_fraction"] = float(
        sum(train.drop("date_id").null_count().row(0)) / (train.height * (train.width - 1))
    )
    truth["seconds"] = round(time.perf_counter() - started, 1)  # not part of the byte-identical CSVs
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=1) + "\n")
    return truth
