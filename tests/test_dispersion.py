"""`glmjax._dispersion`: the negative binomial theta and the Gamma shape given the means, against
R (``MASS::glm.nb``, ``MASS::gamma.shape``, tests/data/r_inference), against maximisations
written here with scipy, and under ``jax.vmap`` and float32.

Compilation dominates the run time, so every negative binomial data set is padded with
zero-weight rows to one length (which also checks that such rows are ignored), and every Gamma
data set likewise: most calls of each function share one compilation.
"""

import json
import pathlib
from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so
import scipy.special as sp
import scipy.stats as st
from numpy.testing import assert_allclose

import glmjax as gj
from glmjax._dispersion import (
    DispersionResult,
    _nb_derivatives,
    _rows,
    gamma_shape_ml,
    gamma_shape_stderr,
    nb_loglik,
    theta_ml,
    theta_stderr,
)

REF = json.loads(
    (pathlib.Path(__file__).parent / "data" / "r_inference" / "reference.json").read_text()
)
N_NB = max(len(c["y"]) for c in REF["negbin"].values())  # medpar1: 3676 rows
N_GAMMA = max(len(c["y"]) for c in REF["gamma_shape"].values())


def _padded(n, y, mu, w):
    """``(y, mu, w)`` with zero-weight rows appended up to ``n`` (their y and mu are junk that
    must be ignored)."""
    k = n - len(y)
    return (
        np.r_[y, np.full(k, 7.0)],
        np.r_[mu, np.full(k, -1.0)],
        np.r_[w, np.zeros(k)],
    )


def _nb_case(name):
    c = REF["negbin"][name]
    X = np.array(c["X"])
    mu = np.exp(X @ np.array(c["coef"]) + np.array(c["offset"]))
    return c, np.array(c["y"], float), mu, np.array(c["weights"], float), X.shape[1]


def _gamma_case(name):
    c = REF["gamma_shape"][name]
    eta = np.array(c["X"]) @ np.array(c["coef"])
    mu = {"inverse": 1 / eta, "log": np.exp(eta)}[c["link"]]
    return c, np.array(c["y"], float), mu, np.array(c["weights"], float)


# ----- references written here with scipy ------------------------------------------------------


def _scipy_nb_loglik(y, mu, w, theta):
    """glm.nb's loglik, written as R writes it."""
    return np.sum(
        w
        * (
            sp.gammaln(y + theta)
            - sp.gammaln(theta)
            - sp.gammaln(y + 1)
            + theta * np.log(theta)
            + sp.xlogy(y, mu)
            - (theta + y) * np.log(theta + mu)
        )
    )


def _scipy_score(y, mu, w, theta):
    """theta.ml's score, with scipy's digamma."""
    return np.sum(
        w
        * (
            sp.digamma(theta + y)
            - sp.digamma(theta)
            + np.log(theta)
            + 1
            - np.log(theta + mu)
            - (y + theta) / (mu + theta)
        )
    )


def _scipy_theta(y, mu, w):
    """``(root, best)``: the maximum of `_scipy_nb_loglik` over log theta by Brent's method
    (``best``, the log-likelihood there), then the root of `_scipy_score` bracketed around it by
    Brent's root finder (``root``). A minimiser that compares function values finds the maximum
    only to ``sqrt(2 rounding(ell) / curvature)``: ~4e-6 for a flat likelihood (theta ~ 45 with
    a standard error of 76); the score's root is accurate to ~1e-14."""
    res = so.minimize_scalar(
        lambda s: -_scipy_nb_loglik(y, mu, w, np.exp(s)), bracket=(-2.0, 2.0), tol=1e-12
    )
    assert res.success
    theta = np.exp(res.x)
    root = so.brentq(lambda t: _scipy_score(y, mu, w, t), theta / 1.1, theta * 1.1, xtol=1e-300,
                     rtol=1e-15)  # fmt: skip
    assert_allclose(root, theta, rtol=1e-4)
    return root, -res.fun


@jax.jit
def _family_loglik(family, y, mu, w):
    """The log-likelihood from the package's `NegativeBinomial` family (padded rows skipped)."""
    mu = jnp.where(w > 0, mu, 1.0)
    return jnp.sum(jnp.where(w > 0, w * family.log_prob(y, family.link(mu)), 0.0))


def _mass_theta_info(y, mu, w, theta):
    """theta.ml's `info` (observed information in theta) with scipy's digamma/trigamma."""
    return np.sum(
        w
        * (
            -sp.polygamma(1, theta + y)
            + sp.polygamma(1, theta)
            - 1 / theta
            + 2 / (mu + theta)
            - (y + theta) / (mu + theta) ** 2
        )
    )


def _scipy_gamma_shape(y, mu, w):
    """The ML shape with row shapes w alpha (gamma.shape's model): Brent's maximiser of the
    scipy log-density over log alpha, polished to the root of gamma.shape's score
    ``sum A (-y/u - log u + log A + 1 + log y + log alpha - digamma(A alpha))`` (as
    `_scipy_theta`)."""

    def negll(s):
        k = w * np.exp(s)
        return -np.sum(st.gamma.logpdf(y, a=k, scale=mu / k))

    res = so.minimize_scalar(negll, bracket=(0.0, 2.0), tol=1e-12)
    assert res.success
    alpha = np.exp(res.x)
    fixed = -y / mu - np.log(mu) + np.log(w) + 1 + np.log(y)
    score = lambda a: np.sum(w * (fixed + np.log(a) - sp.digamma(w * a)))  # noqa: E731
    root = so.brentq(score, alpha / 1.1, alpha * 1.1, xtol=1e-300, rtol=1e-15)
    assert_allclose(root, alpha, rtol=1e-4)
    return root


# ----- fixtures: one padded batch of negative binomial data sets -------------------------------


@pytest.fixture(scope="module")
def genes():
    """20 count vectors of 200 rows, padded to `N_NB`: gene 0 binomial-like (underdispersed),
    genes 1-19 negative binomial with thetas from 0.4 to 100 and different means."""
    rng = np.random.default_rng(3)
    n, k = 200, 20
    thetas = np.logspace(np.log10(0.3), 2, k)
    x = rng.normal(size=n)
    Y, MU = [], []
    for g, theta in enumerate(thetas):
        mu = np.exp(1.0 + 0.5 * np.sin(g) * x)
        y = rng.negative_binomial(theta, theta / (theta + mu)).astype(float)
        if g == 0:
            mu = np.full(n, 3.0)
            y = rng.binomial(10, 0.3, size=n).astype(float)
        Y.append(y)
        MU.append(mu)
    padded = [_padded(N_NB, y, mu, np.ones(n)) for y, mu in zip(Y, MU, strict=True)]
    Yp, MUp, Wp = (np.stack(a) for a in zip(*padded, strict=True))
    batched = jax.vmap(theta_ml)(Yp, MUp, Wp)
    single = [theta_ml(*p) for p in padded]
    return dict(Y=Y, MU=MU, padded=padded, batched=batched, single=single)


# ----- negative binomial against R ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["quine", "medpar1"])
def test_theta_ml_matches_glm_nb(name):
    # R's glm.nb fit is polished (make_reference.R: theta.ml with eps = 1e-13 and the
    # alternation repeated until theta moves by < 1e-15 relative), so R's theta is the ML theta
    # at R's means to ~1e-14; the means rebuilt here from 17-digit coefficients move it by
    # ~1e-14 (measured: theta 7e-15, SE.theta 1.3e-14, loglik 8e-16). rtol 1e-10 leaves room
    # for platform rounding only.
    c, y, mu, w, p = _nb_case(name)
    est = theta_ml(*_padded(N_NB, y, mu, w))
    assert int(est.result) == DispersionResult.successful
    assert 0 < int(est.n_iter) < 20
    assert_allclose(est.value, c["theta"], rtol=1e-10)
    # glm.nb's SE.theta is theta.ml's sqrt(1/info) one Newton step (<= 1e-13) before the end
    assert_allclose(est.stderr, c["theta_se"], rtol=1e-10)
    assert_allclose(
        theta_stderr(*_padded(N_NB, y, mu, w), np.float64(c["theta"])), c["theta_se"], rtol=1e-10
    )
    loglik = nb_loglik(*_padded(N_NB, y, mu, w), est.value)
    assert_allclose(loglik, c["loglik"], rtol=1e-13)
    assert_allclose(2 * loglik, c["twologlik"], rtol=1e-13)
    # glm.nb's AIC counts theta as a parameter: -2 loglik + 2 (rank + 1)
    assert_allclose(-2 * loglik + 2 * (p + 1), c["aic"], rtol=1e-13)


@pytest.mark.parametrize("name", ["quine", "medpar1"])
def test_nb_loglik_independent_twins(name):
    """The stable log-likelihood equals R's formula in scipy and the package's own
    `NegativeBinomial(r)` density (natural parameter log(mu / (mu + r)))."""
    c, y, mu, w, _ = _nb_case(name)
    theta = np.float64(c["theta"])  # not a weak-typed Python float: no second compilation
    padded = _padded(N_NB, y, mu, w)
    ours = nb_loglik(*padded, theta)
    assert_allclose(ours, _scipy_nb_loglik(y, mu, w, theta), rtol=1e-13)
    assert_allclose(ours, _family_loglik(gj.NegativeBinomial(r=theta), *padded), rtol=1e-12)


def test_theta_ml_matches_scipy_on_r_data():
    # the score's root in scipy to ~1e-14 (`_scipy_theta`); the log-likelihood at our theta is
    # at least the best that scipy's maximiser found
    for name in ["quine", "medpar1"]:
        _, y, mu, w, _ = _nb_case(name)
        theta, best = _scipy_theta(y, mu, w)
        est = theta_ml(*_padded(N_NB, y, mu, w))
        assert_allclose(est.value, theta, rtol=1e-11)
        assert _scipy_nb_loglik(y, mu, w, float(est.value)) >= best - 1e-12 * abs(best)


# ----- many genes: vmap, scipy, the MASS information, the Poisson limit --------------------------


def test_vmap_equals_single_calls(genes):
    batched, single = genes["batched"], genes["single"]
    # the same iterations: the float fields differ only by the order of the batched sums
    for field, rtol in [("value", 1e-13), ("stderr", 1e-11)]:
        one_by_one = np.array([getattr(e, field) for e in single])
        assert_allclose(getattr(batched, field), one_by_one, rtol=rtol, err_msg=field)
    for field in ["result", "n_iter"]:
        one_by_one = np.array([getattr(e, field) for e in single])
        np.testing.assert_array_equal(getattr(batched, field), one_by_one, err_msg=field)
    results = np.asarray(batched.result)
    assert results[0] == DispersionResult.infinite  # the binomial-like gene
    assert np.all(results[1:] == DispersionResult.successful)
    assert not np.any(np.isnan(batched.value)) and not np.any(np.isnan(batched.stderr))


def test_genes_match_scipy_and_mass_information(genes):
    for g in range(1, len(genes["Y"])):
        y, mu = genes["Y"][g], genes["MU"][g]
        w = np.ones_like(y)
        est = genes["single"][g]
        theta, best = _scipy_theta(y, mu, w)
        # scipy's score loses digits to its digamma differences, more so where the likelihood
        # is flat (standard error ~ theta): measured 1.4e-12
        assert_allclose(est.value, theta, rtol=1e-11, err_msg=f"gene {g}")
        assert _scipy_nb_loglik(y, mu, w, float(est.value)) >= best - 1e-12 * abs(best)
        # SE.theta = 1/sqrt(info) with theta.ml's info, here in scipy (its cancellation at
        # theta ~ 100 costs ~1e-10)
        info = _mass_theta_info(y, mu, w, float(est.value))
        assert_allclose(est.stderr, 1 / np.sqrt(info), rtol=1e-8, err_msg=f"gene {g}")


def test_underdispersed_counts_give_the_poisson_limit(genes):
    """Binomial-like counts (variance 2.1 < mean 3): sum w ((y - mu)^2 - y) < 0, so no finite
    maximum: theta = inf with the `infinite` flag, no NaN, no iterations; the log-likelihood
    there is Poisson's."""
    y, mu = genes["Y"][0], genes["MU"][0]
    assert np.sum((y - mu) ** 2 - y) < 0
    est = genes["single"][0]
    assert int(est.result) == DispersionResult.infinite
    assert float(est.value) == np.inf and float(est.stderr) == np.inf
    assert int(est.n_iter) == 0
    assert "Poisson" in DispersionResult(int(est.result)).message
    padded = genes["padded"][0]
    poisson = np.sum(st.poisson.logpmf(y, mu))
    assert_allclose(nb_loglik(*padded, np.float64(np.inf)), poisson, rtol=1e-14)
    assert float(theta_stderr(*padded, np.float64(np.inf))) == np.inf


def test_loglik_is_stable_for_huge_theta():
    """At theta = 1e12 the log-likelihood is Poisson's + S / (2 theta) (+ O(theta^-2)); the
    naive formula (R's, `_scipy_nb_loglik`) loses ~12 digits of each term there."""
    _, y, mu, w, _ = _nb_case("quine")
    padded = _padded(N_NB, y, mu, w)
    poisson = np.sum(w * st.poisson.logpmf(y, mu))
    S = np.sum(w * ((y - mu) ** 2 - y))
    for theta in [1e6, 1e12]:
        got = float(nb_loglik(*padded, np.float64(theta)))
        assert abs(got - (poisson + S / (2 * theta))) <= 1e-13 * abs(poisson) + 1e-3 * S / theta


def test_score_and_curvature():
    """The closed-form score and curvature in theta against exact sums in 60-digit decimals
    (for integer y, digamma(theta + y) - digamma(theta) = sum_{j < y} 1 / (theta + j) and
    trigamma(theta + y) - trigamma(theta) = -sum_{j < y} 1 / (theta + j)^2), on both sides of
    the switch to the asymptotic series (theta = 10) and far beyond: per row they are O(1/theta^2)
    and O(1/theta^3) differences of O(1/theta) terms, which digamma differences would keep only
    to ~1e-16 theta absolute."""
    getcontext().prec = 60
    _, y, mu, w, _ = _nb_case("quine")
    padded = _padded(N_NB, y, mu, w)
    derivatives = jax.jit(lambda t, *a: _nb_derivatives(_rows(*a, positive_y=False), t))
    for theta in [0.3, 3.0, 9.999, 10.0, 1e3, 1e6]:
        t = Decimal(theta)
        d1 = d2 = Decimal(0)
        for yi, mi in zip(y, mu, strict=True):
            yi, mi = int(yi), Decimal(float(mi))
            d1 += sum((1 / (t + j) for j in range(yi)), Decimal(0))
            d1 += (t / (t + mi)).ln() + 1 - (yi + t) / (mi + t)
            d2 -= sum((1 / (t + j) ** 2 for j in range(yi)), Decimal(0))
            d2 += 1 / t - 2 / (mi + t) + (yi + t) / (mi + t) ** 2
        got1, got2 = derivatives(theta, *padded)
        assert_allclose(got1, float(d1), rtol=1e-11, err_msg=f"score, theta={theta}")
        assert_allclose(got2, float(d2), rtol=1e-11, err_msg=f"curvature, theta={theta}")


def test_zero_counts_and_invalid_data():
    _, y, mu, w, _ = _nb_case("quine")
    zeros = theta_ml(*_padded(N_NB, np.zeros_like(y), mu, w))
    assert int(zeros.result) == DispersionResult.zero
    assert float(zeros.value) == 0.0 and float(zeros.stderr) == np.inf
    bad_mu = mu.copy()
    bad_mu[3] = -1.0
    bad = theta_ml(*_padded(N_NB, y, bad_mu, w))
    assert int(bad.result) == DispersionResult.invalid_data
    assert np.isnan(float(bad.value))
    assert np.isnan(float(nb_loglik(*_padded(N_NB, y, bad_mu, w), np.float64(2.0))))


def test_max_iter():
    # one Newton step from theta.ml's start is not enough; max_iter is traced (no recompile)
    c, y, mu, w, _ = _nb_case("medpar1")
    short = theta_ml(y, mu, w, max_iter=1)
    assert int(short.result) == DispersionResult.max_iter_reached
    assert int(short.n_iter) == 1
    assert np.isfinite(float(short.value)) and np.isfinite(float(short.stderr))
    assert abs(float(short.value) / c["theta"] - 1) > 1e-6


def test_float32_and_theta0():
    # float32 (eps 1.2e-7): the score's rounding, ~eps times the sum of its terms, moves the
    # root by a few eps times the condition number of the likelihood in theta; measured: theta
    # 2.3e-6, its standard error 5.4e-6, the log-likelihood 4e-7 (relative) on these data.
    # The same compilation also starts from a given theta0 (far from both estimates).
    for name in ["quine", "medpar1"]:
        c, y, mu, w, _ = _nb_case(name)
        with jax.enable_x64(False):
            args = [jnp.asarray(a, jnp.float32) for a in _padded(N_NB, y, mu, w)]
            est = theta_ml(*args, theta0=jnp.float32(30.0))
            loglik = nb_loglik(*args, est.value)
        assert est.value.dtype == jnp.float32 and est.stderr.dtype == jnp.float32
        assert loglik.dtype == jnp.float32
        assert int(est.result) == DispersionResult.successful
        assert_allclose(est.value, c["theta"], rtol=2e-5)
        assert_allclose(est.stderr, c["theta_se"], rtol=2e-5)
        assert_allclose(loglik, c["loglik"], rtol=5e-6)


# ----- Gamma shape -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cancer_gamma_inverse", "scotland_gamma_log"])
def test_gamma_shape_matches_mass(name):
    # gamma.shape ran to eps.max = 1e-12 (cancer, alpha ~ 2.8) and 1e-9 (scotland,
    # alpha ~ 364) absolute, on polished fits: R's shape is the ML shape to ~3e-12 relative
    # (measured: 2.2e-15 and 2.3e-13; standard errors 8e-16 and 6e-14)
    c, y, mu, w = _gamma_case(name)
    est = gamma_shape_ml(*_padded(N_GAMMA, y, mu, w))
    assert int(est.result) == DispersionResult.successful
    assert_allclose(est.value, c["shape"], rtol=1e-10)
    assert_allclose(est.stderr, c["shape_se"], rtol=1e-10)
    se = gamma_shape_stderr(*_padded(N_GAMMA, y, mu, w), np.float64(c["shape"]))
    assert_allclose(se, c["shape_se"], rtol=1e-10)
    assert_allclose(est.value, _scipy_gamma_shape(y, mu, w), rtol=1e-11)


def test_gamma_shape_infinite_and_weights():
    c, y, mu, w = _gamma_case("cancer_gamma_inverse")
    exact = gamma_shape_ml(*_padded(N_GAMMA, mu, mu, w))
    assert int(exact.result) == DispersionResult.infinite
    assert float(exact.value) == np.inf and float(exact.stderr) == np.inf
    # prior weights multiply the row shapes (gamma.shape's A alpha): compare with scipy
    wts = 1.0 + (np.arange(len(y)) % 3)
    est = gamma_shape_ml(*_padded(N_GAMMA, y, mu, wts))
    assert int(est.result) == DispersionResult.successful
    assert_allclose(est.value, _scipy_gamma_shape(y, mu, wts), rtol=1e-11)
