"""The solvers of `fit_glm`: structured vs full Hessian, Newton vs IRLS, every family with every
method against the Newton optimum (and scikit-learn), convergence rate, separation, singular
Hessians, result codes, vmap, recompilation and float32."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import xlogy
from sklearn.linear_model import LogisticRegression

import glmjax as gj
from glmjax._fit import _link, _mean_statistic
from glmjax._fit import _solve as fit_core
from glmjax._objective import GLMObjective
from glmjax._solvers import make_solver, start_coef

BETA = np.array([0.3, 0.5, -0.4])
ADAM = optax.adam(1e-2)  # one object for every test: a new one would compile anew


def _design(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[np.ones(n), rng.normal(size=(n, 2))], rng


def _data(name, n=120, seed=0):
    """A family and data drawn from it with coefficients BETA (mean-parametrised where eta < 0)."""
    X, rng = _design(n, seed)
    lin = X @ BETA
    if name == "bernoulli":
        return gj.Bernoulli(), X, rng.binomial(1, 1 / (1 + np.exp(-lin))).astype(float)
    if name == "binomial":
        return gj.Binomial(5.0), X, rng.binomial(5, 1 / (1 + np.exp(-lin))) / 5
    if name == "poisson":
        return gj.Poisson(), X, rng.poisson(np.exp(lin)).astype(float)
    if name == "gaussian":
        return gj.Gaussian(2.0), X, lin + 2 * rng.normal(size=n)
    if name == "gamma":
        return gj.Gamma(2.0), X, rng.gamma(2.0, np.exp(lin) / 2)
    if name == "exponential":
        return gj.Exponential(), X, rng.exponential(np.exp(lin))
    if name == "geometric":
        return gj.Geometric(), X, rng.poisson(np.exp(lin)).astype(float)
    if name == "negbin":
        return gj.NegativeBinomial(2.0), X, rng.poisson(np.exp(lin)).astype(float)
    k = 4
    logits = np.c_[X @ rng.normal(size=(3, k)) * 0.5]
    labels = (logits + rng.gumbel(size=(n, k))).argmax(axis=1).astype(float)
    return gj.Categorical(k, minimal=(name == "categorical")), X, labels


FAMILIES = [
    "bernoulli",
    "binomial",
    "poisson",
    "gaussian",
    "gamma",
    "exponential",
    "geometric",
    "negbin",
    "categorical",
    "categorical_full",
]


def _objective(name, l2=0.0, **kw):
    family, X, y = _data(name, **kw)
    n = X.shape[0]
    return GLMObjective.from_data(family, X, y, jnp.ones(n), jnp.zeros(n), l2)


def _inside_coef(name, objective, rng):
    """Random coefficients with eta inside the natural parameter space (eta < 0 where required)."""
    coef = 0.2 * rng.normal(size=objective.coef_shape)
    if name in ("gamma", "exponential", "geometric", "negbin"):
        coef[0] = -3.0
    return jnp.asarray(coef)


@eqx.filter_jit  # compiled: op-by-op, jax.hessian of the objective costs 8x more
def _derivatives(objective, coef):
    # 120 rows in chunks of 7: 17 full chunks and an overlapping last one
    return (
        (jax.grad(objective)(coef), objective.hessian(coef, kind="full")),
        objective.grad_and_hessian(coef),
        objective.grad_and_hessian(coef, chunk_size=7),
    )


@pytest.mark.parametrize("name", FAMILIES)
def test_structured_gradient_and_hessian_equal_autodiff(name):
    objective = _objective(name, l2=np.array([0.0, 0.1, 0.2])[:, None] if "cat" in name else 0.1)
    rng = np.random.default_rng(1)
    weights = rng.uniform(0, 2, objective.X.shape[0]) * (rng.random(objective.X.shape[0]) > 0.1)
    objective = eqx.tree_at(lambda o: o.weights, objective, jnp.asarray(weights))
    coef = _inside_coef(name, objective, rng)
    (grad, full), structured, chunked = _derivatives(objective, coef)
    assert np.all(np.isfinite(full)) and np.all(np.isfinite(grad))
    for g, H in (structured, chunked):
        np.testing.assert_allclose(g, grad, rtol=0, atol=1e-12 * np.abs(grad).max())
        np.testing.assert_allclose(H, full, rtol=0, atol=1e-10 * np.abs(full).max())


def _core(family, X, y, method="newton", *, max_iter=100, tol=1e-8, l2=0.0, **kw):
    """The jit-compiled core of `fit_glm` (no inference: compiling that per test costs time)."""
    n = X.shape[0]
    solver = make_solver(ADAM if method == "adam" else method, **kw)
    args = (jnp.asarray(X), jnp.asarray(y), jnp.ones(n), jnp.zeros(n), jnp.asarray(l2))
    eta0 = _link(family, _mean_statistic(family, *args[:3]))
    return fit_core(family, *args, solver, max_iter, jnp.asarray(tol), eta0)


def _solve(name, method="newton", **kw):
    return _core(*_data(name), method, **kw)


@functools.cache
def _reference(name):
    """The Newton fit of `_data(name)` (cached: several tests compare with it)."""
    solution = _solve(name)
    assert int(solution.result) == gj.ResultCode.successful
    return solution


def _means(name, coef):
    family, X, _ = _data(name)
    return family.mean(X @ coef)


# the IRLS step differs between scalar and vector families only; every family's IRLS fit is
# compared with Newton's optimum to 1e-10 below
@pytest.mark.parametrize(
    "name", ["bernoulli", "poisson", "gamma", "categorical", "categorical_full"]
)
def test_newton_and_irls_iterates_agree(name):
    objective = _objective(name)
    coef = start_coef(objective)
    f, grad = objective.value_and_grad(coef)
    steps = {method: jax.jit(make_solver(method).step) for method in ("newton", "irls")}
    state = {"newton": (coef, f, grad), "irls": (coef, f, grad)}
    compared = 0
    # compare while the steps are well above rounding: at the optimum either line search may
    # reject a step of size ~1e-12 that changes f by an ulp, and the iterates then differ by it
    while compared < 6:
        before = state["newton"][0]
        for method, step in steps.items():
            state[method] = step(objective, *state[method], None)[:3]
        if np.max(np.abs(state["newton"][0] - before)) < 1e-6:
            break
        np.testing.assert_allclose(state["irls"][0], state["newton"][0], rtol=0, atol=1e-10)
        compared += 1
    assert compared >= 1  # Gaussian: one step is exact


@pytest.mark.parametrize("name", ["poisson", "categorical"])
def test_full_hessian_newton_takes_the_same_path(name):
    full = _solve(name, hessian="full")
    np.testing.assert_allclose(full.coef, _reference(name).coef, rtol=0, atol=1e-10)
    np.testing.assert_allclose(full.history, _reference(name).history, rtol=1e-12, equal_nan=True)


def _check_optimum(name, method, solution, atol):
    """``solution`` converged to the Newton optimum (coefficients and fitted means)."""
    family, X, _ = _data(name)
    reference = _reference(name)
    assert int(solution.result) == gj.ResultCode.successful, int(solution.result)
    if family.identifiable:
        np.testing.assert_allclose(solution.coef, reference.coef, rtol=0, atol=atol)
    # the fitted means are unique also for the over-parametrised Categorical
    means = _means(name, solution.coef)
    np.testing.assert_allclose(means, _means(name, reference.coef), rtol=0, atol=atol)
    if method in ("newton", "irls", "gd"):
        # line searches: the objective never increases, beyond rounding once a Newton step's
        # predicted decrease is at rounding level (taken in full)
        history = np.asarray(solution.history)[: int(solution.n_iter) + 1]
        assert np.all(np.diff(history) <= 4 * np.finfo(float).eps * np.abs(history[:-1]))


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_fits_with_irls(name):
    _check_optimum(name, "irls", _solve(name, "irls"), atol=1e-10)


# first-order methods stop at a scaled gradient of 1e-7; their coefficients are then within about
# 1e-7 / (smallest Hessian eigenvalue) of the optimum
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_fits_with_gradient_descent(name):
    _check_optimum(name, "gd", _solve(name, "gd", max_iter=5000, tol=1e-7), atol=2e-4)


# compiling one loop per (family, method) is what costs time here, so the optax methods run on four
# families: bounded and unbounded variance, a restricted domain (Gamma) and a singular Hessian
@pytest.mark.parametrize("name", ["bernoulli", "poisson", "gamma", "categorical_full"])
@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_optax_methods_reach_the_newton_optimum(name, method):
    _check_optimum(name, method, _solve(name, method, max_iter=5000, tol=1e-7), atol=2e-4)


def test_newton_converges_quadratically():
    X, rng = _design(2000, seed=3)
    y = rng.binomial(1, 1 / (1 + np.exp(-(X @ np.array([0.5, 2.0, -3.0])))))
    fit = _core(gj.Bernoulli(), X, y, tol=1e-14)
    history = np.asarray(fit.history)[: int(fit.n_iter) + 1]
    err = history[:-1] - history[-1]
    # e_{k+1} <= C e_k^2 while the error is small but above rounding
    pairs = [(a, b) for a, b in zip(err[:-1], err[1:], strict=True) if a < 1e-2 and b > 1e-13]
    assert len(pairs) >= 2
    for a, b in pairs:
        assert b <= 100 * a**2
    assert int(fit.n_iter) <= 8


def test_logistic_ridge_matches_sklearn():
    X, rng = _design(300, seed=4)
    y = rng.binomial(1, 1 / (1 + np.exp(-(X @ BETA))))
    C = 0.5
    # sklearn: C sum_i loss_i + |w|^2 / 2, intercept unpenalised  <=>  l2 = 1 / (C n) on the slopes
    l2 = np.array([0.0, 1.0, 1.0]) / (C * len(y))
    fit = _core(gj.Bernoulli(), X, y, l2=l2)
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=1000).fit(X[:, 1:], y)
    np.testing.assert_allclose(fit.coef[1:], clf.coef_[0], rtol=1e-6)
    np.testing.assert_allclose(fit.coef[0], clf.intercept_[0], rtol=1e-6)


def test_minimal_categorical_is_full_categorical_minus_last_column():
    minimal = _reference("categorical")
    full = _reference("categorical_full")  # the same data; a singular Hessian: pseudo-inverse steps
    np.testing.assert_allclose(
        minimal.coef, full.coef[:, :3] - full.coef[:, 3:], rtol=0, atol=1e-10
    )
    p_minimal = _means("categorical", minimal.coef)
    np.testing.assert_allclose(p_minimal, _means("categorical_full", full.coef)[:, :3], atol=1e-12)
    # the pseudo-inverse steps keep the minimum-norm representative: rows summing to zero
    np.testing.assert_allclose(full.coef.sum(axis=1), 0, atol=1e-12)
    # the family's own null space is expected: solved by Cholesky, not reported as singular
    assert int(full.result) == gj.ResultCode.successful


def _separated(family_name):
    # the shapes and families of `_data`: the compiled fits are shared with the tests below
    X, rng = _design(120, seed=6)
    if family_name == "bernoulli":
        return gj.Bernoulli(), X, (X[:, 1] > 0).astype(float)
    return gj.Categorical(4), X, np.digitize(X[:, 1], [-0.7, 0.0, 0.7]).astype(float)


@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
def test_separation_warns_and_stays_finite(name):
    family, X, y = _separated(name)
    with pytest.warns(gj.ConvergenceWarning, match="separated"):
        fit = gj.fit_glm(X, y, family)
    assert int(fit.result) == gj.ResultCode.separation
    assert not bool(fit.converged)
    assert np.all(np.isfinite(fit.coef)) and np.all(np.isfinite(fit.stderr))
    # the data are classified perfectly: the slope is large, every fitted probability near 0 or 1
    probs = np.asarray(fit.predict(X))
    observed = probs[np.arange(len(y)), y.astype(int)] if probs.ndim == 2 else 1 - abs(probs - y)
    assert observed.min() > 0.99


def test_quasi_separation_is_detected():
    X, rng = _design(120, seed=7)
    X[:6, 1] = 0.0  # ties on the boundary: both labels at x = 0
    y = (X[:, 1] > 0).astype(float)
    y[:3] = 1.0
    with pytest.warns(gj.ConvergenceWarning, match="separated"):
        fit = gj.fit_glm(X, y, gj.Bernoulli())
    assert int(fit.result) == gj.ResultCode.separation and np.all(np.isfinite(fit.coef))


def test_max_iter_warns():
    family, X, y = _data("poisson")
    with pytest.warns(gj.ConvergenceWarning, match="max_iter"):
        fit = gj.fit_glm(X, y, family, max_iter=1)
    assert int(fit.result) == gj.ResultCode.max_iter_reached and not bool(fit.converged)
    assert int(fit.n_iter) == 1
    assert np.isfinite(fit.history[1]) and fit.history.shape == (2,)


def test_collinear_design_gives_minimum_norm_solution():
    family, X, y = _data("poisson")
    Xc = np.c_[X, 2 * X[:, 2]]  # the last column is twice the previous one
    with pytest.warns(gj.ConvergenceWarning, match="singular"):
        fit = gj.fit_glm(Xc, y, family)
    assert int(fit.result) == gj.ResultCode.singular_hessian and bool(fit.converged)
    reference = _reference("poisson")
    # beta_2 x + beta_3 (2 x) = b x with the minimum norm: (beta_2, beta_3) = b (1, 2) / 5
    np.testing.assert_allclose(fit.coef[:2], reference.coef[:2], rtol=1e-8)
    np.testing.assert_allclose(fit.coef[2:], reference.coef[2] * np.array([1, 2]) / 5, rtol=1e-8)


def test_gamma_line_search_keeps_eta_in_domain():
    # a start far from the optimum: a full Newton step would leave eta < 0 for Gamma
    X, rng = _design(200, seed=8)
    y = rng.gamma(1.0, np.exp(3 * X[:, 1]))
    objective = GLMObjective.from_data(gj.Gamma(1.0), X, y, jnp.ones(200), jnp.zeros(200), 0.0)
    coef = start_coef(objective)
    newton = coef + jnp.linalg.solve(objective.hessian(coef), -jax.grad(objective)(coef))
    assert np.max(X @ newton) > 0 and not np.isfinite(objective(newton))
    fit = _core(gj.Gamma(1.0), X, y)
    assert bool(fit.converged)
    assert np.all(np.asarray(X @ fit.coef) < 0)
    history = np.asarray(fit.history)[: int(fit.n_iter) + 1]
    assert np.all(np.isfinite(history)) and np.all(np.diff(history) <= 0)
    assert np.all(np.isnan(np.asarray(fit.history)[int(fit.n_iter) + 1 :]))


def test_vmap_over_1000_poisson_glms():
    n, p, batch = 30, 3, 1000
    rng = np.random.default_rng(9)
    Xs = np.concatenate([np.ones((batch, n, 1)), rng.normal(size=(batch, n, p - 1))], axis=2)
    betas = 0.3 * rng.normal(size=(batch, p))
    ys = rng.poisson(np.exp(np.einsum("bnp,bp->bn", Xs, betas))).astype(float)
    fits = jax.vmap(lambda X, y: gj.fit_glm(X, y, gj.Poisson()))(Xs, ys)
    assert fits.coef.shape == (batch, p)
    assert np.all(np.asarray(fits.converged))
    for i in (0, 1, 500, 999):
        single = gj.fit_glm(Xs[i], ys[i], gj.Poisson())
        np.testing.assert_allclose(fits.coef[i], single.coef, rtol=1e-10, atol=1e-12)
        # traced data, zero offset: the null model's eta is the link of the mean count
        mean = np.mean(ys[i])
        null = 2 * np.sum(xlogy(ys[i], ys[i] / mean) - (ys[i] - mean))
        np.testing.assert_allclose(fits.null_deviance[i], null, rtol=1e-10)
        np.testing.assert_allclose(fits.deviance[i], single.deviance, rtol=1e-10)
        assert int(fits.n_iter[i]) == int(single.n_iter)


_MANY_FITS = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import glmjax as gj
batch, n, p = 10_000, 200, 5
rng = np.random.default_rng(3)
Xs = np.concatenate([np.ones((batch, n, 1)), rng.normal(size=(batch, n, p - 1))], axis=2)
ys = rng.poisson(np.exp(Xs @ np.array([0.5, 0.2, -0.1, 0.1, 0.0]))).astype(float)
fits = jax.jit(jax.vmap(lambda X, y: gj.fit_glm(X, y, gj.Poisson())))(Xs, ys)
print("converged", int(np.sum(np.asarray(fits.converged))))
"""


def test_vmap_over_10000_glms_finishes():
    """Under vmap both branches of `solve_psd` run: jaxlib spreads a large batch of LAPACK calls
    over XLA's thread pool and blocks, and a Cholesky and an eigendecomposition at once
    deadlocked (idle) from a few thousand fits on 2 cores. In a subprocess, so a hang fails."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _MANY_FITS], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "converged 10000" in proc.stdout


def test_second_fit_does_not_recompile():
    family, X, y = _data("categorical")
    gj.fit_glm(X, y, family)
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        y2 = np.roll(y, 1)
        fit = gj.fit_glm(X + 0.01, y2, family)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert bool(fit.converged)
    assert compiles == []


@pytest.mark.parametrize(("name", "tol"), [("bernoulli", 1e-5), ("categorical", 1e-8)])
def test_float32_fit_matches_float64(name, tol):
    family, X, y = _data(name)
    with jax.enable_x64(False):
        # with the default tol=1e-8 the fit stops where float32 rounding does (see fit_glm)
        fit = gj.fit_glm(np.float32(X), np.float32(y), family, tol=tol)
        assert fit.coef.dtype == jnp.float32
        assert int(fit.result) == gj.ResultCode.successful
        coef = np.asarray(fit.coef, np.float64)
    # float32 resolves the scaled gradient to about 2e-5, the coefficients to that over the
    # smallest Hessian eigenvalue (about 0.05 here)
    np.testing.assert_allclose(coef, _reference(name).coef, rtol=0, atol=1e-3)


def test_bad_solver_arguments():
    family, X, y = _data("poisson")
    with pytest.raises(ValueError, match="method"):
        gj.fit_glm(X, y, family, method="bfgs")
    with pytest.raises(ValueError, match="hessian"):
        gj.fit_glm(X, y, family, hessian="diagonal")
    with pytest.raises(ValueError, match="max_iter"):
        gj.fit_glm(X, y, family, max_iter=-1)
    with pytest.raises(ValueError, match="tol"):
        gj.fit_glm(X, y, family, tol=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        gj.fit_glm(X, y, family, chunk_size=0)


def test_add_intercept():
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(gj.add_intercept(X), np.c_[np.ones(3), X])
    with pytest.raises(ValueError, match="X"):
        gj.add_intercept(np.ones(3))
