"""The leaders candidate: the alternating ridge recovers a planted lead-lag, its sparse solve is the
dense least-squares solution, and the reweighted slopes find a sparse lead-lag better than one ridge."""

import numpy as np

from offline.train import leaders as L


def _planted(seed: int = 0, days: int = 1500, keys: int = 4, windows: int = 6, legs: int = 12):
    """Labels (A - B) of leg forecasts from key windows, one planted profile, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((days, keys, windows))
    profile = np.array([0.0, 0.7, 0.7, 0.14, 0.0, 0.0])
    slopes = rng.standard_normal((legs, keys)) * (rng.random((legs, keys)) < 0.4)
    a = rng.integers(0, legs, 30)
    b = np.where(np.arange(30) < 2, -1, (a + 1 + rng.integers(0, legs - 1, 30)) % legs)
    signal = np.einsum("tkw,w,jk->tj", z, profile, L._differences(slopes, a, b))
    Y = 0.05 * signal + rng.standard_normal(signal.shape)
    Y[rng.random(Y.shape) < 0.1] = np.nan  # unlabelled cells take no part
    return z, Y, a, b, legs, profile, signal


def test_the_alternating_ridge_recovers_a_planted_lag_profile_and_ranks_out_of_sample():
    z, Y, a, b, legs, profile, signal = _planted()
    train = slice(0, 1000)
    fit = L.fit_lag(z[train], Y[train] - np.nanmean(Y[train], axis=0), a, b, legs, (0.01, 1.0))[0]
    assert abs(fit.profile @ profile) / np.linalg.norm(profile) > 0.95  # the profile, up to its sign
    pred = np.einsum("tkw,jkw->tj", z[1000:], L.target_coefficients(fit, a, b))
    corr = [np.corrcoef(p, s)[0, 1] for p, s in zip(pred, signal[1000:], strict=True)]
    assert np.mean(corr) > 0.8  # held-out days: the forecast ranks the targets as the planted signal does


def test_a_larger_penalty_shrinks_the_slopes():
    z, Y, a, b, legs, *_ = _planted(1)
    small, large = L.fit_lag(z, Y - np.nanmean(Y, axis=0), a, b, legs, (0.01, 10.0))
    assert np.linalg.norm(large.slopes) < 0.5 * np.linalg.norm(small.slopes)


def test_the_sparse_slope_solve_equals_dense_least_squares():
    z, Y, a, b, legs, *_ = _planted(2, days=300)
    ok = ~np.isnan(Y)
    Yc = np.where(ok, Y, 0.0)
    U = z @ np.full(z.shape[2], 0.4)
    alpha, k = 0.3, U.shape[1]
    weights = np.random.default_rng(3).uniform(0.2, 5.0, legs * k)  # the reweighted rounds' penalties
    got = L._ridge(L._normal_equations(U, Yc, ok, a, b, legs), alpha, k, weights)
    # dense: one design row per labelled (day, target) cell, +U on leg A's slopes, -U on leg B's
    rows, ys, count = [], [], np.zeros(legs)
    for j in range(Y.shape[1]):
        for t in np.flatnonzero(ok[:, j]):
            r = np.zeros((legs, k))
            r[a[j]] += U[t]
            count[a[j]] += 1
            if b[j] >= 0:
                r[b[j]] -= U[t]
                count[b[j]] += 1
            rows.append(r.ravel())
            ys.append(Y[t, j])
    D, y = np.array(rows), np.array(ys)
    penalty = np.repeat(alpha * np.maximum(count, 1.0), k) * weights
    want = np.linalg.solve(D.T @ D + np.diag(penalty), D.T @ y).reshape(legs, k)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_reweighted_slopes_find_a_sparse_lead_lag_that_one_ridge_blurs():
    """A few legs follow one key each; the rest follow none. On held-out days the reweighted slopes
    rank the targets at least as close to the planted signal as the plain ridge at every penalty of
    the grid, with less of their weight on the slopes that are 0, and their best penalty beats the
    ridge's best by far."""
    rng = np.random.default_rng(5)
    days, keys, legs, n_t = 900, 6, 40, 120
    U = rng.standard_normal((days, keys))
    slopes = np.zeros((legs, keys))
    slopes[np.arange(6), rng.integers(0, keys, 6)] = 1.0  # six followers, one leader each
    a = rng.integers(0, legs, n_t)
    b = np.where(np.arange(n_t) < 10, -1, (a + 1 + rng.integers(0, legs - 1, n_t)) % legs)
    signal = U @ L._differences(slopes, a, b).T
    Y = 0.1 * signal + rng.standard_normal(signal.shape)
    train, test = slice(0, 600), slice(600, None)
    ok = np.ones_like(Y[train], dtype=bool)
    system = L._normal_equations(U[train], Y[train] - Y[train].mean(axis=0), ok, a, b, legs)

    def quality(s):
        pred = U[test] @ L._differences(s, a, b).T
        corr = np.mean([np.corrcoef(p, q)[0, 1] for p, q in zip(pred, signal[test], strict=True)])
        return corr, np.abs(s[slopes == 0]).sum() / np.abs(s).sum()

    plain = [quality(L._ridge(system, alpha, keys, np.ones(legs * keys))) for alpha in L.LEADER_ALPHAS]
    sparse = [quality(L._slopes(system, alpha, keys)) for alpha in L.LEADER_ALPHAS]
    for (p_corr, p_noise), (s_corr, s_noise) in zip(plain, sparse, strict=True):
        assert s_corr >= p_corr and s_noise < p_noise, (plain, sparse)
    assert max(c for c, _ in sparse) > max(c for c, _ in plain) + 0.1, (plain, sparse)


def test_leaders_on_a_competition_directory_is_deterministic_and_served_on_the_key_windows(synthetic_dir):
    from kaggle_kernel.features import FeatureSpec
    from offline.data.competition import load_competition
    from offline.train.cv import walk_forward
    from offline.train.dataset import build_dataset

    data = build_dataset(load_competition(synthetic_dir), FeatureSpec())
    folds = walk_forward(len(data.date_ids), 2, 5, 0.5)
    idx = list(range(0, 424, 3))
    first, second = (L.leaders(data.spec, data.X, data.Y, data.Y, idx, folds, 5) for _ in range(2))
    np.testing.assert_array_equal(first.oof, second.oof)
    np.testing.assert_array_equal(first.final.coef, second.final.coef)
    assert first.info == second.info and all(a in L.LEADER_ALPHAS for a in first.info["alphas"])
    served = first.final
    keys = np.zeros(len(data.spec.local_layout), dtype=bool)
    keys[L.key_layout(data.spec).ravel()] = True
    assert np.all(served.coef[:, ~keys] == 0) and np.any(served.coef[:, keys] != 0)
    others = np.setdiff1d(np.arange(424), idx)
    assert np.isfinite(served.intercept[idx]).all() and np.isnan(served.intercept[others]).all()
    # out of fold: predictions on the test days of the modelled targets only
    test_days = np.concatenate([f.test_idx() for f in folds])
    assert np.isfinite(first.oof[np.ix_(test_days, idx)]).all()
    assert np.isnan(first.oof[:, others]).all() and np.isnan(first.oof[: folds[0].test_start]).all()
    # the served model is the kernel's dot product on one day's feature vector
    x = np.asarray(data.X[-1])
    got = served.predict(x, data.spec.local_index())
    assert np.isfinite(got[idx]).all() and np.isnan(got[others]).all()
