"""Families written as pure functions (`gj.make_family`) and checked from their density alone
(`gj.verify_family`): new families fit, infer and verify with no closed forms; broken ones fail;
the built-in families pass; a subclass with public hooks works the same way."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from example_families import (
    beta,
    log_partition_off_by_a_factor,
    log_series,
    wrong_base_measure,
    wrong_support,
    zero_truncated_poisson,
)
from jax.scipy.special import gammaln

import glmjax as gj

BUILT_IN = [
    gj.Bernoulli(),
    gj.Binomial(trials=7),
    gj.Poisson(),
    gj.Gaussian(1.5),
    gj.Gamma(0.7),
    gj.InverseGaussian(3.0),
    gj.Exponential(),
    gj.Geometric(),
    gj.NegativeBinomial(1.5),
    gj.Categorical(3),
    gj.Categorical(3, minimal=False),
]


@pytest.mark.parametrize("family", BUILT_IN, ids=lambda f: repr(f))
def test_built_in_families_pass_the_density_checks(family):
    report = gj.verify_family(family)
    assert report.ok, str(report)
    checks = {r.check for r in report.rows}
    assert {"normalisation", "mean", "variance", "link(mean(eta)) = eta",
            "link = derived link"} <= checks  # fmt: skip


@pytest.mark.parametrize("family", [log_series, zero_truncated_poisson, beta],
                         ids=lambda f: f.name)  # fmt: skip
def test_new_families_pass(family):
    report = gj.verify_family(family)
    assert report.ok, str(report)
    assert family.name in str(report)


def test_log_series_mean_and_variance_are_the_textbook_ones():
    eta = jnp.array([-3.0, -1.0, -0.1])
    theta = np.exp(np.asarray(eta))
    mean = scipy.stats.logser.mean(theta)
    var = scipy.stats.logser.var(theta)
    np.testing.assert_allclose(log_series.mean(eta), mean, rtol=1e-12)
    np.testing.assert_allclose(log_series.variance(eta), var, rtol=1e-11)
    np.testing.assert_allclose(log_series.link(jnp.asarray(mean)), eta, rtol=1e-12)
    expected = scipy.stats.logser.logpmf([1, 4], np.exp(-0.5))
    np.testing.assert_allclose(log_series.log_prob(jnp.array([1.0, 4.0]), -0.5), expected,
                               rtol=1e-13)  # fmt: skip


@pytest.mark.parametrize(
    ("family", "which"),
    [
        (wrong_base_measure, "normalisation"),
        (log_partition_off_by_a_factor, "normalisation"),
        (wrong_support, "normalisation"),
    ],  # fmt: skip
    ids=["base measure", "log-partition", "support"],
)
def test_broken_families_fail(family, which):
    report = gj.verify_family(family)
    assert not report.ok
    failed = {r.check for r in report.rows if not r.ok}
    assert which in failed
    assert "FAIL" in str(report)


def test_wrong_written_link_fails():
    family = gj.make_family(
        sufficient_statistic=lambda y: y,
        log_partition=jnp.exp,
        log_base_measure=lambda y: -gammaln(y + 1.0),
        support="nonnegative_integers",
        canonical_link=lambda mu: jnp.log(mu) + 1e-6,
    )
    report = gj.verify_family(family)
    failed = {r.check for r in report.rows if not r.ok}
    assert failed == {"link(mean(eta)) = eta", "link = derived link"}


def _ztp_negloglik(coef, X, y):
    lam = np.exp(X @ coef)
    return -np.sum(y * np.log(lam) - lam - np.log(-np.expm1(-lam)) - scipy.special.gammaln(y + 1))


def test_zero_truncated_poisson_regression_matches_a_scipy_maximum_likelihood_fit():
    """No closed form anywhere: the fit uses the derived mean, variance and link; the reference
    maximises the zero-truncated Poisson likelihood (written out here) with scipy."""
    rng = np.random.default_rng(0)
    n = 400
    X = np.c_[np.ones(n), rng.normal(size=n)]
    lam = np.exp(X @ np.array([0.4, 0.5]))
    y = rng.poisson(lam)
    while np.any(y == 0):  # draw from the truncated distribution
        y[y == 0] = rng.poisson(lam[y == 0])
    fit = gj.fit_glm(X, y.astype(float), zero_truncated_poisson, tol=1e-11)
    assert int(fit.result) == gj.ResultCode.successful
    ref = scipy.optimize.minimize(_ztp_negloglik, np.zeros(2), args=(X, y), method="BFGS",
                                  options={"gtol": 1e-10})  # fmt: skip
    np.testing.assert_allclose(fit.coef, ref.x, rtol=1e-6)
    np.testing.assert_allclose(fit.loglik, -ref.fun, rtol=1e-12)
    # standard errors from the inverse of the negative log-likelihood's Hessian by differences
    h = 1e-5
    hess = np.array([[(_ztp_negloglik(ref.x + h * (e1 + e2), X, y)
                       - _ztp_negloglik(ref.x + h * (e1 - e2), X, y)
                       - _ztp_negloglik(ref.x - h * (e1 - e2), X, y)
                       + _ztp_negloglik(ref.x - h * (e1 + e2), X, y)) / (4 * h * h)
                      for e2 in np.eye(2)] for e1 in np.eye(2)])  # fmt: skip
    np.testing.assert_allclose(fit.stderr, np.sqrt(np.diag(np.linalg.inv(hess))), rtol=1e-5)
    # the deviance is 2 (saturated log-likelihood - loglik): each count's own best rate
    saturated = sum(_ztp_saturated(v) for v in y)
    np.testing.assert_allclose(fit.deviance, 2 * (saturated - fit.loglik), rtol=1e-8)


def _ztp_saturated(count):
    """The largest zero-truncated Poisson log-likelihood of one count: at the rate whose mean is
    the count (found by root finding), or the limit 0 at a count of 1 (rate -> 0)."""
    if count == 1:
        return 0.0
    rate = scipy.optimize.brentq(lambda r: r / -np.expm1(-r) - count, 1e-12, 1e3, xtol=1e-15)
    return -_ztp_negloglik(np.array([np.log(rate)]), np.ones((1, 1)), np.array([count]))


def test_beta_family_fits_like_a_scipy_fit():
    rng = np.random.default_rng(1)
    y = rng.beta(2.0, 5.0, size=300)
    X = np.ones((300, 1))
    fit = gj.fit_glm(X, y, beta, tol=1e-11)
    assert int(fit.result) == gj.ResultCode.successful
    a, b, _, _ = scipy.stats.beta.fit(y, floc=0, fscale=1)
    np.testing.assert_allclose(fit.coef[0], [a, b], rtol=1e-5)


class Weibull(gj.ExponentialFamily):
    """A subclass with a parameter (a pytree leaf): Weibull with known shape k, T(y) = y^k,
    eta = -1 / scale^k < 0, a(eta) = -log(-eta), log b(y) = log k + (k - 1) log y."""

    k: float = 2.0
    support = gj.Support.named("positive_real")

    @property
    def eta_start(self):
        return -1.0

    def sufficient_statistic(self, y):
        return y**self.k

    def log_partition(self, eta):
        return -jnp.log(-eta)

    def log_base_measure(self, y):
        return jnp.log(self.k) + (self.k - 1) * jnp.log(y)


def test_a_subclass_with_public_hooks_verifies_and_vmaps_over_its_parameter():
    assert gj.verify_family(Weibull(1.7)).ok
    ks = jnp.array([1.0, 2.0, 3.0])
    means = jax.vmap(lambda k: Weibull(k).mean(jnp.asarray(-0.5)))(ks)
    np.testing.assert_allclose(means, 2.0 * np.ones(3), rtol=1e-14)  # E[y^k] = scale^k = 2
    y = jnp.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(
        Weibull(1.7).log_prob(y, jnp.asarray(-0.5)),
        scipy.stats.weibull_min.logpdf(np.asarray(y), 1.7, scale=2.0 ** (1 / 1.7)),
        rtol=1e-12,
    )


def test_make_family_checks_its_arguments():
    kwargs = dict(sufficient_statistic=lambda y: y, log_partition=jnp.exp,
                  log_base_measure=lambda y: 0.0 * y)  # fmt: skip
    with pytest.raises(ValueError, match="`support`"):
        gj.make_family(**kwargs, support="integers")
    with pytest.raises(ValueError, match="`log_partition`"):
        gj.make_family(**(kwargs | {"log_partition": 3.0}), support="real")
    with pytest.raises(ValueError, match="`eta_start`"):
        gj.make_family(**(kwargs | {"log_partition": lambda e: jnp.log(e - 100.0)}),
                       support="real")  # fmt: skip
    with pytest.raises(ValueError, match="`natural_dim`"):
        gj.make_family(**kwargs, support="real", natural_dim=0)
    with pytest.raises(ValueError, match="`eta`"):
        gj.verify_family(gj.Poisson(), eta=np.zeros((2, 2)))


def test_glmjax_verify_family_on_the_command_line():
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    run = [sys.executable, "-m", "glmjax", "verify", "--family"]
    good = subprocess.run(run + ["example_families:log_series"], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "LogSeries: ok" in good.stdout
    bad = subprocess.run(run + ["example_families:wrong_support"], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert bad.returncode == 1 and "FAIL" in bad.stdout
