"""The normal, t, chi-square and F tails and quantiles of `glmjax._distributions` against
closed forms and scipy."""

import jax.numpy as jnp
import numpy as np
from scipy import stats

from glmjax._distributions import chi2_sf, f_sf, t_quantile, t_two_sided, two_sided_critical

P = np.array([1e-300, 1e-100, 1e-12, 1e-6, 1e-3, 0.025, 0.1, 0.25, 0.3, 0.45, 0.5 - 1e-7])
P = np.concatenate([P, 0.5 + (0.5 - P[::-1]), [0.5]])


def cauchy_quantile(p):
    # tan(pi (p - 1/2)) would lose digits to the rounding of p - 1/2 near the poles
    centre = np.abs(p - 0.5) < 0.25
    tail = -np.sign(0.5 - p) / np.tan(np.pi * np.minimum(p, 1 - p))
    return np.where(centre, np.tan(np.pi * (p - 0.5)), tail)


def test_t_quantile():
    # one compiled call for every case: the closed forms for df = 1, 2 everywhere (scipy loses
    # digits near p = 1/2, up to 4e-4 relative at 1/2 +- 1e-7), scipy away from p = 1/2
    p = P[(P >= 1e-100) & (P < 1)]
    df = np.array([1.0, 2.0, 0.8, 1.5, 3.0, 4.0, 7.3, 30.0, 1e3, 9e4, 1.1e5, 1e9])
    got = np.asarray(t_quantile(p[None, :], df[:, None]))
    np.testing.assert_allclose(got[0], cauchy_quantile(p), rtol=1e-12)
    np.testing.assert_allclose(got[1], (2 * p - 1) / np.sqrt(2 * p * (1 - p)), rtol=1e-12)
    away = np.abs(p - 0.5) > 1e-3
    ref = stats.t.ppf(p[None, away], df[2:, None])
    np.testing.assert_allclose(got[2:, away], ref, rtol=1e-10)
    assert np.all(got[:, p == 0.5] == 0)
    ends = t_quantile(np.array([0.0, 1.0, 0.3]), np.array([3.0, 3.0, 0.0]))
    np.testing.assert_array_equal(ends, [-np.inf, np.inf, np.nan])


def test_t_quantile_float32():
    got = t_quantile(jnp.float32([0.025, 0.995, 1e-6]), jnp.float32(12.0))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, stats.t.ppf([0.025, 0.995, 1e-6], 12), rtol=1e-6)


def test_tails_and_critical_values():
    x, df = np.array([0.0, 0.3, 2.0, 9.0, 40.0]), np.array([1.0, 2.5, 7.0, 30.0, 1e4])
    np.testing.assert_allclose(t_two_sided(x, df), 2 * stats.t.sf(x, df), rtol=1e-12)
    np.testing.assert_allclose(chi2_sf(x, df), stats.chi2.sf(x, df), rtol=1e-12)
    np.testing.assert_allclose(f_sf(x, df, df[::-1]), stats.f.sf(x, df, df[::-1]), rtol=1e-10)
    np.testing.assert_allclose(two_sided_critical(0.05), stats.norm.ppf(0.975), rtol=1e-15)
    np.testing.assert_allclose(two_sided_critical(0.1, 12.0), stats.t.ppf(0.95, 12), rtol=1e-12)
