"""Features: one definition; the serving window reproduces the training matrix for every day."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import kaggle_kernel.features as F
from offline.data.competition import load_competition
from offline.data.targets import labels_from_lag_files

# Serving rows against training rows. Polars 1.x (Kaggle's image) updates rolling std in a way whose
# rounding depends on where a series starts, so a serving window differs from the full history by
# up to 4.5e-10 (7e-9 relative, on the vol-scaled returns); polars 2.x agrees to 1e-12.
PARITY_TOL = 1e-12 if int(pl.__version__.split(".")[0]) >= 2 else 1e-8


def _window_parity(spec, prices, labels):
    days, X = F.batch_features(spec, prices, labels)
    pp, lp = F.panels_from_frames(spec, prices, labels)
    worst = 0.0
    for i, d in enumerate(days):
        pw = pp.filter((pl.col("date_id") <= d) & (pl.col("date_id") > d - F.WINDOW))
        lw = lp.filter((pl.col("date_id") <= d) & (pl.col("date_id") > d - F.LABEL_WINDOW))
        v = F.last_day_features(spec, pw, lw)
        a = X[i]
        assert np.array_equal(np.isnan(a), np.isnan(v)), (
            d,
            np.array(spec.all_features())[np.isnan(a) != np.isnan(v)][:5],
        )
        if (~np.isnan(a)).any():
            worst = max(worst, float(np.nanmax(np.abs(a - v))))
    return X, worst


def test_parity_every_day_synthetic(synthetic_dir):
    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    X, worst = _window_parity(spec, comp.train, comp.train_labels)
    assert worst <= PARITY_TOL
    # the features are not trivially empty: most of them exist after the warm-up
    assert np.mean(~np.isnan(X[100:, : -len(F.PROBABILITIES)])) > 0.8


def test_parity_every_day_public_window(public_dir):
    comp = load_competition(public_dir)
    _, worst = _window_parity(F.FeatureSpec(), comp.prices(), labels_from_lag_files(comp.lagged))
    assert worst <= PARITY_TOL


def test_layout_matches_names_and_definitions(synthetic_dir):
    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    days, X = F.batch_features(spec, comp.train, comp.train_labels)
    names = spec.all_features()
    assert X.shape == (comp.train.height, len(names)) and len(set(names)) == len(names)
    col = {n: i for i, n in enumerate(names)}
    t = spec.targets[1]  # LME_PB_Close - US_Stock_VT_adj_close, lag 1
    labels = comp.train_labels[t.name].to_numpy()
    d = 300
    # own lags: at day d the newest delivered lag-1 label is the one of d-2
    assert X[d, col[f"{t.name}_lab1"]] == pytest.approx(labels[d - 2], nan_ok=True)
    assert X[d, col[f"{t.name}_lab3"]] == pytest.approx(labels[d - 4], nan_ok=True)
    pa, pb = comp.train[t.leg_a].to_numpy(), comp.train[t.leg_b].to_numpy()
    if not np.isnan(pa[[d, d - 5]]).any() and not np.isnan(pb[[d, d - 5]]).any():
        expected = np.log(pa[d] / pa[d - 5]) - np.log(pb[d] / pb[d - 5])
        assert X[d, col[f"{t.name}_sret5"]] == pytest.approx(expected, abs=1e-12)
    vt = comp.train["US_Stock_VT_adj_close"].to_numpy()
    r = np.diff(np.log(vt))
    window = r[d - 21 : d]
    if not np.isnan(window).any():
        assert X[d, col["px_rv21"]] == pytest.approx(np.std(window, ddof=1) * np.sqrt(252), rel=1e-9)
    # a target's regressor sees its own lags, both legs, shared features, probabilities
    feats = spec.target_features(t)
    assert feats[:3] == [f"{t.name}_lab1", f"{t.name}_lab2", f"{t.name}_lab3"]
    assert f"leg_{t.leg_b}_ret21" in feats and F.REGIME_PROB in feats and "key_LME_CA_ret63" in feats


def test_structural_features_match_their_definitions(synthetic_dir):
    """lsd_* of LME zinc - Freeport (a copper miner), recomputed by hand from the prices."""
    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    _, X = F.batch_features(spec, comp.train, comp.train_labels)
    col = {n: i for i, n in enumerate(spec.all_features())}
    t = next(t for t in spec.targets if t.pair == "LME_ZS_Close - US_Stock_FCX_adj_close")
    lme = [c for c in spec.instruments if c.startswith("LME_")]
    series = ["US_Stock_FCX_adj_close", *lme]
    logp = {c: np.log(comp.train[c].to_numpy()) for c in series}
    ok = np.all([~np.isnan(logp[c]) for c in series], axis=0)
    d = next(d for d in range(400, comp.train.height) if ok[d - 70 : d + 1].all())

    def ret(c, k, day):
        return logp[c][day] - logp[c][day - k]

    def returns(c, day):  # the 63 daily returns ending on `day`
        return np.diff(logp[c][day - 63 : day + 1])

    def vol(c, day):
        return np.std(returns(c, day), ddof=1)

    def res_fcx(day, k=5):
        a, b = returns("US_Stock_FCX_adj_close", day), returns("LME_CA_Close", day)
        beta = np.cov(a, b, ddof=1)[0, 1] / np.var(b, ddof=1)
        return ret("US_Stock_FCX_adj_close", k, day) - beta * ret("LME_CA_Close", k, day)

    z5 = {c: ret(c, 5, d) / vol(c, d) for c in lme}
    peer5_zs = vol("LME_ZS_Close", d) * (z5["LME_ZS_Close"] - np.mean(list(z5.values())))
    leadlag_fcx = vol("US_Stock_FCX_adj_close", d) * z5["LME_CA_Close"] / 5
    lag = t.lag
    for k in F.RZ_DAYS:
        assert X[d, col[f"{t.name}_lsd_res{k}"]] == pytest.approx(-lag * res_fcx(d, k), abs=1e-12)
    assert X[d, col[f"{t.name}_lsd_res5_L2"]] == pytest.approx(-lag * res_fcx(d - 2), abs=1e-12)
    assert X[d, col[f"{t.name}_lsd_peer5"]] == pytest.approx(lag * peer5_zs, abs=1e-12)
    assert X[d, col[f"{t.name}_lsd_leadlag"]] == pytest.approx(-lag * leadlag_fcx, abs=1e-12)
    assert res_fcx(d, 63) != 0 and peer5_zs != 0 and leadlag_fcx != 0


def test_no_lookahead(synthetic_dir):
    """Changing prices and labels after day d leaves every feature of days <= d unchanged.

    Unchanged up to rounding: rolling sums run along one long column, so a later day of one instrument
    can leave a trace of the order of 1e-16 x its size in another's accumulator, never information.
    """
    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    d = 250
    _, X = F.batch_features(spec, comp.train, comp.train_labels)
    cols = [c for c in comp.train.columns if c != "date_id"]
    noisy = comp.train.with_columns(
        [pl.when(pl.col("date_id") > d).then(pl.col(c) * 1.5).otherwise(pl.col(c)).alias(c) for c in cols]
    )
    # labels of day s are delivered at s + L + 1 (> d for s >= d - 1), so change those
    names = [t.name for t in spec.targets]
    noisy_labels = comp.train_labels.with_columns(
        [pl.when(pl.col("date_id") >= d - 1).then(pl.lit(9.0)).otherwise(pl.col(n)).alias(n) for n in names]
    )
    _, X2 = F.batch_features(spec, noisy, noisy_labels)
    np.testing.assert_allclose(X[: d + 1], X2[: d + 1], rtol=0, atol=1e-12)
    assert not np.allclose(np.nan_to_num(X[d + 1 :]), np.nan_to_num(X2[d + 1 :]))


def test_generic_features_match_their_definitions(synthetic_dir):
    """Lagged-window returns, lagged volatility, the label prior and the target constants, by hand."""
    from scipy.stats import rankdata

    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    _, X = F.batch_features(spec, comp.train, comp.train_labels)
    col = {n: i for i, n in enumerate(spec.all_features())}
    leg = "LME_CA_Close"
    lp = np.log(comp.train[leg].to_numpy())
    d = next(d for d in range(400, comp.train.height) if not np.isnan(lp[d - 70 : d + 1]).any())
    assert X[d, col[f"leg_{leg}_ret5_21"]] == pytest.approx(lp[d - 5] - lp[d - 21], abs=1e-12)
    assert X[d, col[f"leg_{leg}_ret63"]] == pytest.approx(lp[d] - lp[d - 63], abs=1e-12)
    r = np.diff(lp)
    assert X[d, col[f"leg_{leg}_std21_L21"]] == pytest.approx(np.std(r[d - 42 : d - 21], ddof=1), rel=1e-9)
    z = (lp[d - 21] - lp[d - 63]) / (np.std(r[d - 21 : d], ddof=1) * 42**0.5)
    assert X[d, col[f"leg_{leg}_z21_63"]] == pytest.approx(z, rel=1e-9)
    # the prior: mean label and mean within-lag daily rank over the PRIOR_DAYS newest delivered days
    t = spec.targets[5]
    lab = comp.train_labels.select(pl.exclude("date_id")).to_numpy()
    same_lag = [u.index for u in spec.targets if u.lag == t.lag]
    newest = d - t.lag - 1
    window = np.arange(newest - F.PRIOR_DAYS + 1, newest + 1)
    vals = lab[window, t.index]
    assert X[d, col[f"{t.name}_lmean"]] == pytest.approx(np.nanmean(vals), abs=1e-12)
    ranks = []
    for s in window:
        row = lab[s, same_lag]
        ok = ~np.isnan(row)
        if ok.sum() >= 2 and not np.isnan(lab[s, t.index]):
            rk = rankdata(row[ok])[list(np.flatnonzero(ok)).index(same_lag.index(t.index))]
            ranks.append((rk - 0.5) / ok.sum() - 0.5)
    assert X[d, col[f"{t.name}_lrank"]] == pytest.approx(np.mean(ranks), abs=1e-12)
    assert spec.constants[t.index, 0] == t.lag


def test_day_ranks_equal_scipy_with_ties_and_nans():
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    v = rng.integers(0, 5, size=(50, 30)).astype(float)
    v[rng.random(v.shape) < 0.2] = np.nan
    v[3] = np.nan
    got = F.day_ranks(v)
    for row, g in zip(v, got, strict=True):
        ok = ~np.isnan(row)
        if ok.sum() < 2:
            assert np.isnan(g).all()
            continue
        expected = (rankdata(row[ok]) - 0.5) / ok.sum() - 0.5
        np.testing.assert_allclose(g[ok], expected, atol=1e-15)
        assert np.isnan(g[~ok]).all()


def test_pooled_rows_gather_each_targets_columns(synthetic_dir):
    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    _, X = F.batch_features(spec, comp.train, comp.train_labels)
    index = spec.pooled_index()
    names = spec.pooled_features()
    rows = F.pooled_rows(spec, X[300:302], index)
    assert rows.shape == (2 * len(spec.targets), len(names))
    col = {n: i for i, n in enumerate(spec.all_features())}
    single = next(t for t in spec.targets if t.leg_b is None)
    r = rows[len(spec.targets) + single.index]  # day 301
    assert r[names.index("own_lab1")] == X[301, col[f"{single.name}_lab1"]] or np.isnan(r[0])
    assert r[names.index("a_ret21")] == pytest.approx(X[301, col[f"leg_{single.leg_a}_ret21"]], nan_ok=True)
    assert np.isnan(r[names.index("b_ret21")]) and r[names.index("class_b")] == -1
    assert r[names.index("lag")] == single.lag


def _gappy(rng, shape, null_rate):
    """Random walk log-levels with runs of nulls long enough to cross every min-count threshold."""
    x = np.exp(np.cumsum(rng.normal(0, 0.01, size=shape), axis=-1))
    x[rng.random(shape) < null_rate] = np.nan
    runs = rng.integers(0, shape[-1] - 3, size=shape[0])
    for row, start in enumerate(runs):
        x[row, start : start + rng.integers(3, 30)] = np.nan  # a long gap: ffill runs out
    return x


@pytest.mark.parametrize("null_rate", [0.0, 0.2, 0.45])
def test_serving_numpy_stats_equal_the_polars_definitions(null_rate):
    """The serving path's numpy log prices, rolling stats and regime features equal the polars
    expressions training evaluates, on series with gaps and nulls around every minimum count (to
    PARITY_TOL: polars 1.x leaves ~1e-10 in the std of a window of zeros)."""
    rng = np.random.default_rng(int(null_rate * 100))
    n_rows, n_days = 40, F.WINDOW
    price, volume = _gappy(rng, (n_rows, n_days), null_rate), _gappy(rng, (n_rows, n_days), null_rate) * 1e6
    price[0, 10], price[0, 11:13] = -1.0, np.nan  # a non-positive price is a value (NaN log), carried over
    price[1, 20], price[1, 21] = 0.0, np.nan
    # as training evaluates them: every row padded in front, so polars over one long column sees no other row
    pad = F.PAD
    lp_pl, lv_pl = (
        a[:, pad:]
        for a in F._log_series(F._padded(price, n_rows, pad), F._padded(volume, n_rows, pad), pad, n_rows)
    )
    lp = F._log_filled(price)
    np.testing.assert_array_equal(np.isnan(lp), np.isnan(lp_pl))
    np.testing.assert_allclose(lp, lp_pl, rtol=0, atol=1e-14)  # -inf (a zero price) must match too
    np.testing.assert_allclose(np.log1p(volume), lv_pl, rtol=1e-15, atol=0)
    assert np.isnan(lp[0, 10:13]).all() and np.isinf(lp[1, 20:22]).all()
    with np.errstate(invalid="ignore"):  # -inf - -inf after the zero price
        ret1 = F._diff(lp, 1)
    b1 = np.roll(ret1, 1, axis=0)
    lv = np.log1p(volume)
    padded = [np.concatenate([np.full((n_rows, pad), np.nan), a], axis=1) for a in (ret1, b1, lv)]
    ref = {k: v[:, pad:] for k, v in F._rolling_polars(*padded).items()}
    days = np.arange(n_days - 10, n_days)
    got = F._rolling_at(ret1, b1, lv, dict.fromkeys(F.ROLLING, days))
    for k in F.ROLLING:
        a, b = ref[k][:, days], got[k][:, days]
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=k)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=PARITY_TOL, err_msg=k)
        assert np.isnan(got[k][:, : days[0]]).all()
        assert (~np.isnan(a)).any()  # the comparison is not vacuous; gaps leave some windows short
        assert np.isnan(a).any()
    m1 = ret1[2]
    frame = pl.DataFrame({"date_id": np.arange(n_days), "m1": m1}, nan_to_null=True)
    want = F.regime_features(frame).select(*F.REGIME_FEATURES, *F.MARKET_FEATURES).to_numpy()[days]
    have = F._regime_at(m1, days)
    np.testing.assert_array_equal(np.isnan(want), np.isnan(have))
    np.testing.assert_allclose(have, want, rtol=1e-9, atol=PARITY_TOL)


def test_label_prior_reuses_ranks_only_when_values_repeat():
    """Serving the prior day after day (next day, the same day again, a changed label, a gap) gives
    the ranks of day_ranks on the whole window every time."""
    rng = np.random.default_rng(5)
    lags = np.repeat([1, 2, 3, 4], 7)
    values = rng.normal(size=(len(lags), F.LABEL_WINDOW + 40))
    values[rng.random(values.shape) < 0.2] = np.nan
    F._PRIOR_MEMO.clear()

    def expected(position):
        mean, rank = np.full(len(lags), np.nan), np.full(len(lags), np.nan)
        for lag in np.unique(lags):
            g = lags == lag
            end = position - lag
            block = values[g, max(end - F.PRIOR_DAYS, 0) : end]
            ranks = F.day_ranks(block.T).T
            for out, v in ((mean, block), (rank, ranks)):
                n = np.sum(~np.isnan(v), axis=1)
                out[g] = np.where(n >= F.PRIOR_MIN, np.nansum(v, axis=1) / np.maximum(n, 1), np.nan)
        return mean, rank

    for position in [F.LABEL_WINDOW, F.LABEL_WINDOW + 1, F.LABEL_WINDOW + 1, F.LABEL_WINDOW + 2, "edit", 290]:
        if position == "edit":
            values[3, F.LABEL_WINDOW - 20] += 1.0  # a label inside the window changes
            position = F.LABEL_WINDOW + 2
        got = F._prior_at(values, lags, position)
        for g, e in zip(got, expected(position), strict=True):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-15)


def test_label_prior_running_sums_stay_exact_over_a_long_replay():
    """Day after day for longer than several PRIOR_REFRESH cycles, the prior kept as running sums
    equals the prior of the whole window (sums of every cell), at the 1e-15 of the test above."""
    rng = np.random.default_rng(6)
    lags = np.repeat([1, 2, 3, 4], 9)
    values = rng.normal(scale=0.02, size=(len(lags), F.LABEL_WINDOW + 5 * F.PRIOR_REFRESH))
    values[rng.random(values.shape) < 0.25] = np.nan
    values[:, 40:60] = np.nan  # a stretch without labels: counts fall below PRIOR_MIN and recover
    F._PRIOR_MEMO.clear()
    for position in range(F.PRIOR_MIN, values.shape[1] + 1):
        got = F._prior_at(values, lags, position)
        for lag in np.unique(lags):
            g = lags == lag
            end = position - lag
            block = values[g, max(end - F.PRIOR_DAYS, 0) : max(end, 0)]
            for have, v in zip(got, (block, F.day_ranks(block.T).T), strict=True):
                n = np.sum(~np.isnan(v), axis=1)
                want = np.where(n >= F.PRIOR_MIN, np.nansum(v, axis=1) / np.maximum(n, 1), np.nan)
                np.testing.assert_allclose(have[g], want, rtol=0, atol=1e-15, err_msg=str(position))
    assert F._PRIOR_MEMO[1].moves < F.PRIOR_REFRESH  # the windows moved by one day: the running path ran


def test_one_row_ranks_equal_the_matrix_ranks():
    """day_ranks of one row (a scatter without ties, searchsorted with them) gives the bits of the
    general path, ties, NaN and inf included."""
    rng = np.random.default_rng(8)
    for n in (0, 1, 2, 3, 17, 424):
        for trial in range(30):
            v = np.round(rng.normal(size=n), trial % 3)  # ties at every rounding but the finest
            v[rng.random(n) < 0.3] = np.nan
            v[rng.random(n) < 0.05] = rng.choice([np.inf, -np.inf, -0.0])
            got, want = F.day_ranks(v), F.day_ranks(v[None, :])[0]
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), (n, trial)


def test_served_history_gives_the_training_rows_over_a_long_replay(synthetic_dir):
    """The kernel's own state (History, the ring windows, the running prior) fed day by day as the
    gateway delivers (prices of the day, lag-L labels of day t-L-1), with a replayed stretch and a
    repeated day, gives each served day's training row."""
    from kaggle_kernel.predictor import Predictor

    comp = load_competition(synthetic_dir)
    spec = F.FeatureSpec()
    days, X = F.batch_features(spec, comp.train, comp.train_labels)
    p = Predictor(spec)
    prices = comp.train.select(p.columns).to_numpy().astype(np.float64)
    labels = comp.train_labels.select(p.names).to_numpy().astype(np.float64)
    lags = spec.target_lags
    n = comp.train.height
    start = n - 2 * F.LABEL_WINDOW  # the served windows leave the bootstrap behind, PRIOR_REFRESH often
    for d in range(start):
        p.history.add_prices(d, prices[d])
        p.history.add_labels(d, np.arange(len(lags)), np.where(d + lags + 1 < start, labels[d], np.nan))
    mid = start + F.LABEL_WINDOW
    # a replay goes back at most HISTORY_MARGIN days: the history keeps that much before the windows
    served = [*range(start, mid), *range(mid - 12, mid - 2), mid, mid, *range(mid + 1, n)]
    worst = 0.0
    for t in served:
        p.history.add_prices(t, prices[t])
        for lag in np.unique(lags):
            if t - lag - 1 >= 0:
                p.history.add_labels(
                    t - lag - 1, np.flatnonzero(lags == lag), labels[t - lag - 1, lags == lag]
                )
        p.history.prune(t)
        v, a = p._features(t), X[list(days).index(t)]
        assert np.array_equal(np.isnan(a), np.isnan(v)), t
        worst = max(worst, float(np.nanmax(np.abs(a - v))))
    assert worst <= PARITY_TOL


def test_a_flat_price_leaves_its_scaled_returns_unknown_not_infinite():
    """Zero volatility (a price that does not move for weeks) makes every vol-scaled return 0/0 or
    x/0: NaN in training and serving, never +-inf, which would wreck a linear model's column moments."""
    spec = F.FeatureSpec()
    rng = np.random.default_rng(3)
    n_days = F.WINDOW + 40
    price = np.exp(np.cumsum(rng.normal(0, 0.01, size=(len(spec.instruments), n_days)), axis=1))
    volume = np.full_like(price, 1e6)
    flat = spec.inst_index[spec.legs[0]]
    price[flat, n_days - 30 :] = price[flat, n_days - 31]  # flat over the last 30 days
    price[flat, n_days - 30] = price[flat, n_days - 31] * 1.01  # then one move: 1/0-style ratios as well
    train, _ = F.instrument_features(spec, price, volume)
    served, _ = F.instrument_features(
        spec, price[:, -F.WINDOW :], volume[:, -F.WINDOW :], np.array([F.WINDOW - 1])
    )
    assert not np.isinf(train).any() and not np.isinf(served).any()
    scaled = [F.INST_STATS.index(s) for s in (*F.SCALED, *F.RZ_STATS)]
    assert np.isnan(train[flat, -1, scaled]).all() and np.isnan(served[flat, -1, scaled]).all()
    others = np.delete(np.arange(len(spec.instruments)), flat)
    assert np.isfinite(train[others, -1][:, scaled[:2]]).all()  # other instruments keep theirs


def test_a_corrupt_price_or_label_is_a_missing_one_in_training_and_serving():
    """A price that is not finite and positive (0, -5, inf) or a volume that is not finite and
    non-negative reads as missing, and a label beyond MAX_ABS_LABEL or not finite likewise, so the
    features (both paths) equal those of the same data with NaN there."""
    spec = F.FeatureSpec()
    rng = np.random.default_rng(5)
    cols = [*spec.instruments, *[v for c in spec.instruments if (v := F.volume_column(c))]]
    n_days = F.WINDOW + 20
    wide = np.exp(rng.normal(0, 0.01, size=(n_days, len(cols))).cumsum(axis=0))
    wide[:, len(spec.instruments) :] *= 1e6  # volumes
    bad, clean = wide.copy(), wide.copy()
    for k, value in enumerate((0.0, -5.0, np.inf, np.nan)):
        bad[n_days - 3 - k, k] = value
        clean[n_days - 3 - k, k] = np.nan
    v = len(spec.instruments)
    bad[n_days - 2, v : v + 3] = (0.0, -1.0, np.inf)  # a zero volume is a volume, the others are not
    clean[n_days - 2, v : v + 3] = (0.0, np.nan, np.nan)
    got = [F.instrument_arrays(spec, cols, m) for m in (bad, clean)]
    for a, b in zip(*got, strict=True):
        np.testing.assert_array_equal(a, b)
    price, volume = got[0]
    train, _ = F.instrument_features(spec, price, volume)
    served, _ = F.instrument_features(
        spec, price[:, -F.WINDOW :], volume[:, -F.WINDOW :], np.array([F.WINDOW - 1])
    )
    assert not np.isinf(train).any() and not np.isinf(served).any()
    labels = rng.normal(0, 0.02, size=(len(spec.targets), 300))
    corrupt = labels.copy()
    corrupt[0, -10], corrupt[1, -20], corrupt[2, -30] = 1e6, -np.inf, F.MAX_ABS_LABEL * 1.01
    missing = labels.copy()
    missing[0, -10] = missing[1, -20] = missing[2, -30] = np.nan
    days = np.arange(300)
    assert F.label_panel(spec, days, corrupt.T).equals(F.label_panel(spec, days, missing.T))
