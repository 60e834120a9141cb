"""The derived link (bisection for a scalar eta, Newton on the convex conjugate for a vector one)
with extreme values, the implicit derivative against 1/variance, the inverse hessian and finite
differences, property-based checks, and the seed's vanishing-gradient claim about the sigmoid."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import glmjax as gj

# (family, eta grid for link(mean(eta)) == eta, mu grid for mean(link(mu)) == mu)
ROUND_TRIP = {
    "bernoulli": (
        gj.Bernoulli(),
        np.linspace(-30, 30, 61),
        np.array([1e-290, 1e-100, 1e-8, 0.3, 0.5, 0.9, 1 - 1e-9]),
    ),
    "binomial5": (gj.Binomial(trials=5), np.linspace(-30, 30, 13), np.array([1e-200, 0.2, 0.999])),
    "poisson": (
        gj.Poisson(),
        np.linspace(-660, 690, 28),
        np.array([1e-290, 1e-10, 1.0, 1e10, 1e300]),
    ),
    "gaussian2": (
        gj.Gaussian(2.0),
        np.array([-1e150, -700.0, 0.0, 1e-300, 700.0]),
        np.array([-1e150, 0.0, 3.0]),
    ),
    "gamma3": (gj.Gamma(3.0), -np.logspace(-150, 150, 13), np.logspace(-150, 150, 13)),
    "exponential": (gj.Exponential(), -np.logspace(-100, 100, 9), np.logspace(-100, 100, 9)),
    "geometric": (
        gj.Geometric(),
        -np.logspace(-150, np.log10(650), 13),
        np.logspace(-280, 150, 13),
    ),
    "negbin2.5": (
        gj.NegativeBinomial(2.5),
        -np.logspace(-150, np.log10(650), 13),
        np.logspace(-280, 150, 13),
    ),
}


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_link_inverts_mean(name):
    family, eta, mu = ROUND_TRIP[name]
    link = jax.jit(family.conjugate_link)
    mean = family.mean(jnp.asarray(eta))
    back = np.asarray(link(mean))
    # what rounding mean to a few ulps does to eta: eps |mu| |d eta / d mu| = eps |mu| phi / var
    # (Bernoulli: eps / (1 - mu), growing like e^eta), plus 1e-10 relative (1e-10 absolute below 1)
    sensitivity = 8 * np.finfo(float).eps * np.abs(mean) * family.dispersion / family.variance(eta)
    assert np.all(np.abs(back - eta) <= 1e-10 * np.maximum(np.abs(eta), 1.0) + sensitivity)
    np.testing.assert_allclose(family.mean(link(jnp.asarray(mu))), mu, rtol=1e-12)


@pytest.mark.parametrize("minimal", [True, False])
def test_categorical_link_round_trip(minimal):
    family = gj.Categorical(4, minimal=minimal)
    rng = np.random.default_rng(1)
    eta = rng.normal(scale=10.0, size=(30, 3))
    eta = np.concatenate([eta, [[-200.0, 15.0, 5.0], [20.0, -40.0, 0.0]]])
    full = np.concatenate([eta, np.zeros((len(eta), 1))], axis=1)
    link = jax.jit(family.conjugate_link)
    if minimal:
        back = link(family.mean(eta))
        # the reference class must be resolved: rounding mu moves eta by ~eps / p_k
        p_ref = 1.0 / np.exp(np.logaddexp.reduce(full, axis=1))
        tol = 1e-10 * np.maximum(np.abs(eta), 1.0) + 8 * np.finfo(float).eps / p_ref[:, None]
        assert np.all(np.abs(back - eta) <= tol)
    else:
        full = full[np.abs(full).max(1) < 50]  # the over-parametrised link's accurate range
        back = link(family.mean(full))
        # the representative with sum(eta) = 0 (minimum norm)
        np.testing.assert_allclose(back, full - full.mean(1, keepdims=True), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(back.sum(1), 0.0, atol=1e-12)
    # mean(link(mu)) == mu on the simplex, with classes down to 1e-200 (minimal) / 1e-20 (full)
    probs = np.array([[0.2, 0.3, 0.1, 0.4], [1e-200, 0.5, 1e-10, 0.5], [0.97, 1e-3, 1e-3, 0.028]])
    if not minimal:
        probs[1, 0] = 1e-20
    probs /= probs.sum(1, keepdims=True)
    mu = probs[:, :3] if minimal else probs
    np.testing.assert_allclose(family.mean(link(mu)), mu, rtol=1e-10)


@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_link_derivative_is_inverse_variance(name):
    """d link / d mu = 1 / a''(eta) = phi / variance (implicit differentiation), and finite
    differences agree."""
    family, _, _ = ROUND_TRIP[name]
    mu = {"gaussian2": np.array([-2.0, 0.5, 3.0]), "bernoulli": np.array([0.1, 0.5, 0.8])}.get(
        name,
        np.array([0.2, 0.5, 0.9]) if isinstance(family, gj.Binomial) else np.array([0.3, 1.5, 4.0]),
    )
    derivative = jax.jit(jax.vmap(jax.grad(family.conjugate_link)))(jnp.asarray(mu))
    link = jax.jit(family.conjugate_link)
    eta = link(mu)
    np.testing.assert_allclose(derivative, family.dispersion / family.variance(eta), rtol=1e-12)
    h = 1e-6 * mu
    fd = (link(mu + h) - link(mu - h)) / (2 * h)
    np.testing.assert_allclose(derivative, fd, rtol=1e-7)


def test_categorical_link_jacobian_is_inverse_hessian():
    family = gj.Categorical(4)
    mu = jnp.array([0.2, 0.1, 0.45])
    link = jax.jit(family.conjugate_link)
    jac = jax.jit(jax.jacobian(family.conjugate_link))(mu)
    hess = family.variance(link(mu))
    np.testing.assert_allclose(jac, np.linalg.inv(hess), rtol=1e-10)
    # finite differences, column by column (one batched call)
    h = 1e-7
    shifts = h * np.eye(3)
    fd = ((link(mu + shifts) - link(mu - shifts)) / (2 * h)).T
    np.testing.assert_allclose(jac, fd, rtol=1e-6)


def test_full_categorical_link_derivative_is_pseudo_inverse():
    family = gj.Categorical(3, minimal=False)
    mu = jnp.array([0.2, 0.3, 0.5])
    tangent = jnp.array([0.01, -0.03, 0.02])  # along the simplex
    link = jax.jit(family.conjugate_link)
    _, jvp = jax.jit(lambda m, t: jax.jvp(family.conjugate_link, (m,), (t,)))(mu, tangent)
    hess = family.variance(link(mu))
    np.testing.assert_allclose(jvp, np.linalg.pinv(hess) @ tangent, rtol=1e-9)
    both = link(jnp.stack([mu + 1e-6 * tangent, mu - 1e-6 * tangent]))
    fd = (both[0] - both[1]) / 2e-6
    np.testing.assert_allclose(jvp, fd, rtol=1e-6)


def test_link_derivative_through_family_parameter():
    """link closes over NegativeBinomial's r: d/dr link(mu) = d/dr log(mu / (mu + r))."""
    mu = 3.0
    derivative = jax.grad(lambda r: gj.NegativeBinomial(r).conjugate_link(mu))(2.5)
    np.testing.assert_allclose(derivative, -1.0 / (mu + 2.5), rtol=1e-12)


def test_link_under_jit_vmap_grad():
    family = gj.Poisson()
    mu = jnp.array([0.5, 2.0, 10.0])
    np.testing.assert_allclose(jax.vmap(family.conjugate_link)(mu), np.log(mu), rtol=1e-14)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(jax.grad(family.conjugate_link)))(mu), 1 / mu, rtol=1e-13
    )
    second = jax.grad(jax.grad(family.conjugate_link))(2.0)
    np.testing.assert_allclose(second, -1 / 4.0, rtol=1e-10)


# ----- property-based ---------------------------------------------------------------------------

_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
_bernoulli_link = jax.jit(gj.Bernoulli().conjugate_link)
_gamma_link = jax.jit(gj.Gamma(2.0).conjugate_link)
_lp_bernoulli = jax.jit(gj.Bernoulli().log_prob)
_lp_poisson = jax.jit(gj.Poisson().log_prob)


@_SETTINGS
@given(st.floats(-35.0, 35.0))
def test_property_bernoulli_round_trip(eta):
    back = float(_bernoulli_link(gj.Bernoulli().mean(eta)))
    assert abs(back - eta) <= 1e-9 * max(1.0, abs(eta)) + 1e-16 / (1 - 1 / (1 + np.exp(-eta)))


@_SETTINGS
@given(st.floats(-1e100, -1e-100))
def test_property_gamma_round_trip(eta):
    back = float(_gamma_link(gj.Gamma(2.0).mean(eta)))
    assert abs(back - eta) <= 1e-12 * abs(eta)


@_SETTINGS
@given(st.floats(-700.0, 700.0), st.sampled_from([0.0, 1.0]))
def test_property_bernoulli_log_prob(eta, y):
    # log p(y) = y eta - log(1 + e^eta), written with numpy's logaddexp
    expected = y * eta - np.logaddexp(0.0, eta)
    assert np.isclose(float(_lp_bernoulli(y, eta)), expected, rtol=1e-13, atol=1e-300)


@_SETTINGS
@given(st.floats(-30.0, 30.0), st.integers(0, 10**6))
def test_property_poisson_log_prob(eta, y):
    from scipy.stats import poisson

    expected = poisson.logpmf(y, np.exp(eta))
    assert np.isclose(float(_lp_poisson(float(y), eta)), expected, rtol=1e-11, atol=1e-9)


# ----- the seed's sigmoid claims ----------------------------------------------------------------


def test_sigmoid_derivative_vanishes_beyond_5():
    """The sigmoid's (Bernoulli's derived mean's) derivative is < 0.0067 for |x| > 5, by jax.grad;
    at |x| = 5 it is sigmoid(5) sigmoid(-5) = 0.0066480566707901."""
    derivative = jax.vmap(jax.grad(gj.Bernoulli().mean))
    x = np.concatenate([np.linspace(5 + 1e-9, 700, 3000), np.logspace(0.7, 2.8, 50)])
    x = x[x > 5]
    values = np.concatenate([derivative(x), derivative(-x)])
    assert np.all(values < 0.0067) and np.all(values > 0)
    at_5 = derivative(jnp.array([5.0, -5.0]))
    np.testing.assert_allclose(at_5, 0.0066480566707901, rtol=1e-14)
    np.testing.assert_allclose(
        jax.vmap(jax.grad(jax.nn.sigmoid))(jnp.array([5.0, -5.0])), at_5, rtol=1e-13
    )
    # the peak is 1/4 at 0
    np.testing.assert_allclose(derivative(jnp.array([0.0])), 0.25, rtol=1e-15)
