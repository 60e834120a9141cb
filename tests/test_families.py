"""Families against independent references: textbook means, exact sums / quadrature over the
support, scipy.stats log-densities; input validation; stability at extreme eta; float32."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from scipy.special import expit

import glmjax as gj

# (family, natural parameters to test at)
FAMILIES = {
    "bernoulli": (gj.Bernoulli(), [-3.0, 0.0, 2.5]),
    "binomial5": (gj.Binomial(trials=5), [-1.5, 0.0, 2.0]),
    "poisson": (gj.Poisson(), [-2.0, 0.0, 2.0]),
    "gaussian2": (gj.Gaussian(2.0), [-1.5, 0.0, 3.0]),
    "gamma3": (gj.Gamma(3.0), [-4.0, -1.0, -0.25]),
    "invgauss2": (gj.InverseGaussian(2.0), [-4.0, -0.5, -0.05]),
    "exponential": (gj.Exponential(), [-3.0, -1.0, -0.3]),
    "geometric": (gj.Geometric(), [-3.0, -1.0, -0.1]),
    "negbin2.5": (gj.NegativeBinomial(2.5), [-3.0, -1.0, -0.2]),
    "categorical4": (gj.Categorical(4), [[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [-3.0, 1.0, 0.2]]),
    "categorical4full": (
        gj.Categorical(4, minimal=False),
        [[0.5, -1.0, 2.0, 0.3], [0.0, 0.0, 0.0, 0.0], [-3.0, 1.0, 0.2, -0.7]],
    ),
}

# Truncation of infinite discrete supports: y = 0..N-1 with N = 3000. At the eta above the tail
# mass beyond N is below 1e-60 (Poisson, mu <= e^2: Chernoff e^-mu (e mu / N)^N; Geometric and
# NegativeBinomial with q = e^eta <= e^-0.1: tail ~ N^r q^N < 1e-120), checked below by the size
# of the last term.
N_TRUNC = 3000


def _support(family):
    """Discrete: the (truncated) support; continuous: None."""
    match family:
        case gj.Bernoulli():
            return np.array([0.0, 1.0])
        case gj.Binomial():
            return np.arange(int(family.trials) + 1) / family.trials
        case gj.Poisson() | gj.Geometric() | gj.NegativeBinomial():
            return np.arange(N_TRUNC, dtype=np.float64)
        case gj.Categorical():
            return np.arange(family.num_classes)
    return None


def _ys(family, n):
    """n values in the support."""
    support = _support(family)
    return np.resize(support, n) if support is not None else np.linspace(0.5, 2.0, n)


def _quad(fn, family):
    lower = -np.inf if isinstance(family, gj.Gaussian) else 0.0
    value, err = scipy.integrate.quad(fn, lower, np.inf, epsabs=1e-13, epsrel=1e-12, limit=500)
    assert err < 1e-9
    return value


def _moments(family, eta):
    """(total mass, E[T], Var[T]) by exact sums or quadrature of exp(log_prob)."""
    eta = jnp.asarray(eta)
    support = _support(family)
    if support is not None:
        p = np.exp(np.asarray(family.log_prob(support, eta)))
        t = np.asarray(family.sufficient_statistic(support))
        if support.size == N_TRUNC:
            assert p[-1] < 1e-60  # the stated truncation bound
        mass = p.sum()
        mean = np.tensordot(p, t, axes=1)
        centred = t - mean
        var = (
            np.einsum("n,n...,n...->...", p, centred, centred)
            if t.ndim == 1
            else (np.einsum("n,ni,nj->ij", p, centred, centred))
        )
        return mass, mean, var
    log_prob = jax.jit(family.log_prob)
    density = lambda y: float(np.exp(log_prob(y, eta)))  # noqa: E731
    mass = _quad(density, family)
    mean = _quad(lambda y: y * density(y), family)
    var = _quad(lambda y: (y - mean) ** 2 * density(y), family)
    return mass, mean, var


@pytest.mark.parametrize("name", list(FAMILIES))
def test_normalised_and_moments(name):
    family, etas = FAMILIES[name]
    for eta in etas:
        mass, mean, var = _moments(family, eta)
        np.testing.assert_allclose(mass, 1.0, rtol=1e-11)
        np.testing.assert_allclose(family.mean(jnp.asarray(eta)), mean, rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(family.variance(jnp.asarray(eta)), var, rtol=1e-8, atol=1e-13)


def _independent_mean(family, eta):
    """Textbook means written out here, not taken from closed_forms()."""
    eta = np.asarray(eta, dtype=np.float64)
    match family:
        case gj.Bernoulli() | gj.Binomial():
            return 1.0 / (1.0 + np.exp(-eta))
        case gj.Poisson():
            return np.exp(eta)
        case gj.Gaussian():
            return eta
        case gj.Gamma() | gj.Exponential():
            return -1.0 / eta
        case gj.InverseGaussian():
            return 1.0 / np.sqrt(-2.0 * eta)
        case gj.Geometric():
            q = np.exp(eta)
            return q / (1 - q)
        case gj.NegativeBinomial():
            q = np.exp(eta)
            return family.r * q / (1 - q)
        case gj.Categorical(minimal=True):
            # the seed's "rigorous" softmax: phi_i = e^eta_i / (1 + sum_{j<k} e^eta_j)
            return np.exp(eta) / (1.0 + np.exp(eta).sum(-1, keepdims=True))
        case gj.Categorical(minimal=False):
            return np.exp(eta) / np.exp(eta).sum(-1, keepdims=True)
    raise AssertionError(family)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_mean_is_the_textbook_inverse_link(name):
    family, etas = FAMILIES[name]
    etas = jnp.asarray(etas)
    np.testing.assert_allclose(family.mean(etas), _independent_mean(family, etas), rtol=1e-13)


def test_bernoulli_mean_is_sigmoid_on_a_wide_grid():
    eta = np.linspace(-700, 700, 2801)
    np.testing.assert_allclose(gj.Bernoulli().mean(eta), expit(eta), rtol=1e-14, atol=0)


def test_rigorous_and_common_softmax():
    rng = np.random.default_rng(0)
    eta = rng.normal(scale=3.0, size=(20, 3))
    rigorous = gj.Categorical(4).mean(eta)
    expected = np.exp(eta) / (1.0 + np.exp(eta).sum(1, keepdims=True))
    np.testing.assert_allclose(rigorous, expected, rtol=1e-13)
    # the reference class: phi_k = 1 / (1 + sum_{j<k} e^eta_j)
    np.testing.assert_allclose(1 - rigorous.sum(1), 1.0 / (1.0 + np.exp(eta).sum(1)), rtol=1e-12)
    # the common softmax over k entries equals the rigorous one when eta_k = 0 ...
    full = gj.Categorical(4, minimal=False).mean(np.concatenate([eta, np.zeros((20, 1))], axis=1))
    np.testing.assert_allclose(full[:, :3], rigorous, rtol=1e-13)
    # ... and in general is e^eta_i / sum_j e^eta_j, unchanged by a shift of eta
    eta4 = rng.normal(scale=3.0, size=(20, 4))
    common = gj.Categorical(4, minimal=False).mean(eta4)
    np.testing.assert_allclose(common, scipy.special.softmax(eta4, axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        gj.Categorical(4, minimal=False).mean(eta4 + 7.0), common, rtol=1e-13
    )


def _scipy_logpdf(family, y, eta):
    match family:
        case gj.Bernoulli():
            return scipy.stats.bernoulli.logpmf(y, expit(eta))
        case gj.Binomial():
            n = family.trials
            return scipy.stats.binom.logpmf(np.round(n * y), n, expit(eta))
        case gj.Poisson():
            return scipy.stats.poisson.logpmf(y, np.exp(eta))
        case gj.Gaussian():
            return scipy.stats.norm.logpdf(y, loc=eta, scale=family.scale)
        case gj.Gamma():
            return scipy.stats.gamma.logpdf(y, a=family.shape, scale=-1.0 / (eta * family.shape))
        case gj.Exponential():
            return scipy.stats.expon.logpdf(y, scale=-1.0 / eta)
        case gj.InverseGaussian():
            # IG(mu, lambda) is scipy's invgauss(mu / lambda, scale=lambda)
            mu, lam = 1.0 / np.sqrt(-2.0 * eta), family.shape
            return scipy.stats.invgauss.logpdf(y, mu / lam, scale=lam)
        case gj.Geometric():
            # scipy's geom counts trials up to the first success (from 1)
            return scipy.stats.geom.logpmf(y + 1, 1 - np.exp(eta))
        case gj.NegativeBinomial():
            return scipy.stats.nbinom.logpmf(y, family.r, 1 - np.exp(eta))
    raise AssertionError(family)


SCALAR = [n for n in FAMILIES if not n.startswith("categorical")]


@pytest.mark.parametrize("name", SCALAR)
def test_log_prob_matches_scipy(name):
    family, etas = FAMILIES[name]
    support = _support(family)
    y = support[:40] if support is not None else np.array([0.01, 0.3, 1.0, 2.5, 7.0])
    if isinstance(family, gj.Gaussian):
        y = np.array([-4.0, -0.3, 0.0, 1.2, 6.0])
    for eta in etas:
        np.testing.assert_allclose(
            family.log_prob(y, eta), _scipy_logpdf(family, y, eta), rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize("minimal", [True, False])
def test_categorical_log_prob_is_log_softmax(minimal):
    family = gj.Categorical(3, minimal=minimal)
    eta = (
        np.array([[0.3, -2.0], [5.0, 1.0]])
        if minimal
        else np.array([[0.3, -2.0, 1.0], [5.0, 1.0, -4.0]])
    )
    full = np.concatenate([eta, np.zeros((2, 1))], axis=1) if minimal else eta
    for y in range(3):
        expected = scipy.special.log_softmax(full, axis=1)[:, y]
        np.testing.assert_allclose(family.log_prob(np.full(2, y), eta), expected, rtol=1e-13)
    t = family.sufficient_statistic(np.array([0, 2]))
    assert t.shape == (2, family.natural_dim)
    np.testing.assert_array_equal(t[1], np.zeros(2) if minimal else [0.0, 0.0, 1.0])


# ----- input validation -------------------------------------------------------------------------

BAD_Y = [
    (gj.Poisson(), -1.0, 0.0),
    (gj.Poisson(), 1.5, 0.0),
    (gj.Bernoulli(), 2.0, 0.0),
    (gj.Binomial(trials=5), 0.3, 0.0),
    (gj.Geometric(), -2.0, -1.0),
    (gj.NegativeBinomial(2.5), 0.5, -1.0),
    (gj.Gamma(3.0), 0.0, -1.0),
    (gj.InverseGaussian(2.0), -1.0, -1.0),
    (gj.Exponential(), -0.5, -1.0),
    (gj.Categorical(4), 4, np.zeros(3)),
    (gj.Categorical(4), 1.5, np.zeros(3)),
    (gj.Categorical(4, minimal=False), -1, np.zeros(4)),
]


@pytest.mark.parametrize(("family", "y", "eta"), BAD_Y, ids=lambda v: repr(v)[:20])
def test_y_outside_support(family, y, eta):
    with pytest.raises(ValueError, match="outside the support"):
        family.log_prob(jnp.asarray([y]), jnp.asarray(eta))
    # the hooks a family writes (T, log b) are its raw functions; the support says it
    assert not bool(family.in_support(jnp.asarray(y)))
    # under jit the value is documented to be -inf, never NaN; gradients stay finite
    lp = jax.jit(family.log_prob)(jnp.asarray(y), jnp.asarray(eta, dtype=float))
    assert lp == -jnp.inf
    grad = jax.grad(lambda e, v: jnp.sum(jnp.where(jnp.isfinite(family.log_prob(v, e)), 1.0, 0.0)))
    assert np.all(np.isfinite(jax.jit(grad)(jnp.asarray(eta, dtype=float), jnp.asarray(y))))
    # a constant y inside jit is concrete: still a ValueError (at trace time)
    with pytest.raises(ValueError, match="outside the support"):
        jax.jit(lambda e: family.log_prob(y, e))(jnp.asarray(eta, dtype=float))


def test_nan_y_raises():
    with pytest.raises(ValueError, match="NaN"):
        gj.Gaussian().log_prob(jnp.array([0.0, jnp.nan]), 0.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gj.Gaussian(scale=0.0),
        lambda: gj.Gaussian(scale=-1.0),
        lambda: gj.Gamma(shape=0.0),
        lambda: gj.Binomial(trials=0),
        lambda: gj.NegativeBinomial(r=-1.0),
        lambda: gj.Categorical(1),
        lambda: gj.Categorical(2.5),
        lambda: gj.Categorical(True),
    ],
)
def test_bad_family_parameters(make):
    with pytest.raises(ValueError):
        make()


# ----- stability, transformations, float32 ------------------------------------------------------

EXTREME = {
    "bernoulli": jnp.array([-700.0, 700.0]),
    "binomial5": jnp.array([-700.0, 700.0]),
    "poisson": jnp.array([-700.0, 700.0]),
    "gaussian2": jnp.array([-700.0, 700.0]),
    "gamma3": jnp.array([-700.0, -1e-300]),
    "invgauss2": jnp.array([-700.0, -1e-300]),
    "exponential": jnp.array([-700.0, -1e-300]),
    "geometric": jnp.array([-700.0, -1e-300]),
    "negbin2.5": jnp.array([-700.0, -1e-300]),
    "categorical4": jnp.array([[-700.0, 700.0, 0.0], [700.0, 700.0, 700.0]]),
    "categorical4full": jnp.array([[-700.0, 700.0, 0.0, -700.0], [700.0, 700.0, 700.0, 700.0]]),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_no_overflow_at_extreme_eta(name):
    family, _ = FAMILIES[name]
    eta = EXTREME[name]
    y = jnp.asarray(_ys(family, 2))
    for value in (family.log_partition(eta), family.mean(eta), family.log_prob(y, eta)):
        assert np.all(np.isfinite(value)), value
    grad = jax.vmap(jax.grad(lambda e, v: family.log_prob(v, e)))(eta, y)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_jit_vmap_grad_and_finite_gradient_at_zero(name):
    family, etas = FAMILIES[name]
    eta = jnp.asarray(etas)
    y = jnp.asarray(_ys(family, len(etas)))
    np.testing.assert_allclose(jax.jit(family.mean)(eta), family.mean(eta), rtol=1e-15)
    np.testing.assert_allclose(jax.vmap(family.variance)(eta), family.variance(eta), rtol=1e-15)
    np.testing.assert_allclose(
        jax.vmap(family.log_prob)(y, eta), family.log_prob(y, eta), rtol=1e-15
    )
    # d/d eta of sum log_prob is sum (T(y) - mean) / phi: the score
    score = jax.jit(jax.grad(lambda e, v: jnp.sum(family.log_prob(v, e))))(eta, y)
    expected = (family.sufficient_statistic(y) - family.mean(eta)) / family.dispersion
    np.testing.assert_allclose(score, expected, rtol=1e-12, atol=1e-14)
    # no NaN gradient at eta = 0 (or the start of the domain for eta < 0 families)
    zero = jnp.zeros_like(eta[0]) + (-1.0 if float(jnp.max(eta)) < 0 else 0.0)
    fns = (
        family.log_partition,
        lambda e: jnp.sum(family.mean(e)),
        lambda e: jnp.sum(family.variance(e)),
    )
    grads = jax.jit(lambda z: [jax.grad(fn)(z) for fn in fns])(zero)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_integer_eta_is_promoted():
    np.testing.assert_allclose(gj.Poisson().mean(jnp.array([0, 1])), [1.0, np.e], rtol=1e-15)


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "gamma3", "categorical4"])
def test_float32(name):
    """float32: the dtype is kept; mean/variance within 1e-6 relative of float64 (a few ulps),
    the link round trip within 1e-4 relative (documented: Newton stops at float32 rounding)."""
    family, etas = FAMILIES[name]
    reference_mean = np.asarray(family.mean(jnp.asarray(etas)))
    reference_var = np.asarray(family.variance(jnp.asarray(etas)))
    with jax.enable_x64(False):
        eta = jnp.asarray(etas, dtype=jnp.float32)
        mean = family.mean(eta)
        assert mean.dtype == jnp.float32
        assert family.log_prob(jnp.asarray(_ys(family, len(etas))), eta).dtype == jnp.float32
        np.testing.assert_allclose(mean, reference_mean, rtol=1e-6)
        np.testing.assert_allclose(family.variance(eta), reference_var, rtol=2e-6, atol=1e-7)
        for link in (family.link, family.conjugate_link):
            back = jax.jit(link)(mean)
            assert back.dtype == jnp.float32
            np.testing.assert_allclose(back, eta, rtol=1e-4, atol=1e-5)
