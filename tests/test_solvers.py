"""The solvers: the structured gradient and Hessian against autodiff (every family, observed and
expected information, canonical and other links), Newton vs Fisher scoring, every family and link
with every method against the Newton optimum, convergence rate, separation, singular Hessians,
result codes, scale invariance, vmap, recompilation and float32."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import (
    BETA,
    CASES,
    LINKED,
    data,
    design,
    inside_coef,
    objective,
    reference,  # fmt: skip
    solve,
)
from scipy.special import xlogy
from sklearn.linear_model import LogisticRegression

import glmjax as gj
from glmjax._solver import Needs

ADAM = optax.adam(1e-2)  # one object for every test: a new one would compile anew


@eqx.filter_jit  # compiled: op-by-op, jax.hessian of the objective costs 8x more
def _derivatives(objective, coef, information):
    full = objective.evaluate(coef, Needs(hessian="full"))
    structured = objective.evaluate(coef, Needs(hessian=information, hess_diag=True))
    chunked = dataclasses.replace(objective, chunk_size=7)  # 17 chunks and an overlapping last
    return full, structured, chunked.evaluate(coef, Needs(hessian=information))


@pytest.mark.parametrize("name", list(CASES))
def test_structured_gradient_and_observed_hessian_equal_autodiff(name):
    """The one-pass gradient and Hessian (per-row score and curvature by autodiff, summed in
    chunks of 7 rows, weights with zeros) against jax.grad/jax.hessian of the whole objective."""
    l2 = np.array([0.0, 0.1, 0.2])[:, None] if "cat" in name else 0.1
    rng = np.random.default_rng(1)
    weights = rng.uniform(0, 2, 120) * (rng.random(120) > 0.1)
    obj = objective(name, l2=l2, weights=weights)
    coef = inside_coef(name, obj.coef_shape, rng)
    full, structured, chunked = _derivatives(obj, coef, "observed")
    assert np.all(np.isfinite(full.hessian)) and np.all(np.isfinite(full.grad))
    for ev in (structured, chunked):
        np.testing.assert_allclose(ev.f, full.f, rtol=1e-13)
        np.testing.assert_allclose(ev.grad, full.grad, rtol=0, atol=1e-12 * np.abs(full.grad).max())
        np.testing.assert_allclose(ev.hessian, full.hessian, rtol=0,
                                   atol=1e-10 * np.abs(full.hessian).max())  # fmt: skip
    np.testing.assert_allclose(structured.hess_diag.reshape(-1), np.diag(full.hessian),
                               rtol=1e-10)  # fmt: skip


@pytest.mark.parametrize("name", LINKED)
def test_expected_information_is_fisher_scorings_weight(name):
    """Expected curvature ``mu'(eta)^2 / V(mu)`` per row (written out here from the link's
    derivative and the textbook variance function), and differs from the observed one."""
    family, link, X, y = data(name)
    obj = objective(name, l2=0.0)
    coef = inside_coef(name, obj.coef_shape, np.random.default_rng(2))
    _, structured, _ = _derivatives(obj, coef, "expected")
    L = gj.links.get(link, family)[0]
    eta = np.asarray(X @ coef)
    mu = np.asarray(L.inverse(eta))
    dmu = np.asarray(L.derivative(eta))
    variance = {
        "probit": mu * (1 - mu),
        "cloglog": mu * (1 - mu),
        "gamma_log": mu**2,
        "poisson_identity": mu,
    }[name]
    H = X.T @ (X * (dmu**2 / variance)[:, None]) / len(y)
    np.testing.assert_allclose(structured.hessian, H, rtol=1e-10)
    full, _, _ = _derivatives(obj, coef, "observed")
    assert not np.allclose(full.hessian, H, rtol=1e-6)


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "gamma", "categorical", "gaussian"])
def test_newton_and_irls_take_identical_iterates_for_canonical_links(name):
    """For the canonical link the observed and expected information are one matrix: the two
    methods take the same steps (the same objective after every step)."""
    family, link, X, y = data(name)
    newton, irls = (solve(family, X, y, m) for m in ("newton", "irls"))
    assert int(newton.n_iter) == int(irls.n_iter)
    np.testing.assert_allclose(irls.history, newton.history, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(irls.coef, newton.coef, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["probit", "cloglog", "gamma_log"])
def test_newton_and_fisher_scoring_differ_on_the_way_to_one_optimum(name):
    family, link, X, y = data(name)
    newton = solve(family, X, y, "newton", link=link, tol=1e-11)
    irls = solve(family, X, y, "irls", link=link, tol=1e-11)
    for fit in (newton, irls):
        assert int(fit.result) == gj.ResultCode.successful
    np.testing.assert_allclose(irls.coef, newton.coef, rtol=0, atol=1e-9)
    # different iterates on the way: the objective after the first step differs
    assert abs(float(newton.history[1]) - float(irls.history[1])) > 1e-10
    # Newton converges quadratically, Fisher scoring only linearly: no fewer steps
    assert int(newton.n_iter) <= int(irls.n_iter)


@pytest.mark.parametrize("name", ["poisson", "categorical", "probit"])
def test_full_hessian_newton_takes_the_same_path(name):
    family, link, X, y = data(name)
    full = solve(family, X, y, link=link, tol=1e-10, hessian="full")
    ref = reference(name)
    np.testing.assert_allclose(full.coef, ref.coef, rtol=0, atol=1e-10)
    np.testing.assert_allclose(full.history, ref.history, rtol=1e-12, equal_nan=True)


def _check_optimum(name, method, solution, atol):
    """``solution`` converged to the Newton optimum (coefficients and fitted means)."""
    family, link, X, _ = data(name)
    ref = reference(name)
    assert int(solution.result) == gj.ResultCode.successful, int(solution.result)
    L = gj.links.get(link, family)[0]
    if family.identifiable:
        np.testing.assert_allclose(solution.coef, ref.coef, rtol=0, atol=atol)
    # the fitted means are unique also for the over-parametrised Categorical
    np.testing.assert_allclose(L.inverse(X @ solution.coef), L.inverse(X @ ref.coef), rtol=0,
                               atol=atol)  # fmt: skip
    if method in ("newton", "irls", "gd", "lbfgs"):
        # line searches: the objective never increases beyond its rounding
        history = np.asarray(solution.history)[: int(solution.n_iter) + 1]
        assert np.all(np.diff(history) <= 8 * np.finfo(float).eps * np.abs(history[:-1]))


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_fits_with_irls(name):
    family, link, X, y = data(name)
    _check_optimum(name, "irls", solve(family, X, y, "irls", link=link, tol=1e-10), atol=1e-9)


# first-order methods stop at a standardised gradient of 1e-7; their coefficients are then within
# about 1e-7 / (smallest Hessian eigenvalue) of the optimum
@pytest.mark.parametrize("name", list(CASES))
def test_every_case_fits_with_gradient_descent(name):
    family, link, X, y = data(name)
    fit = solve(family, X, y, "gd", link=link, max_iter=20000, tol=1e-7)
    _check_optimum(name, "gd", fit, atol=2e-4)


# compiling one loop per (case, method) is what costs time here, so the optax methods run on five
# cases: bounded and unbounded variance, a restricted domain, a singular Hessian, a link
@pytest.mark.parametrize("name", ["bernoulli", "poisson", "gamma", "categorical_full", "probit"])
@pytest.mark.parametrize("method", ["lbfgs", "adam", "newton-cg"])
def test_other_methods_reach_the_newton_optimum(name, method):
    family, link, X, y = data(name)
    tol = 1e-10 if method == "newton-cg" else 1e-7
    fit = solve(family, X, y, ADAM if method == "adam" else method, link=link, max_iter=5000,
                tol=tol)  # fmt: skip
    _check_optimum(name, method, fit, atol=1e-8 if method == "newton-cg" else 2e-4)


def test_newton_converges_quadratically():
    X, rng = design(2000, seed=3)
    y = rng.binomial(1, 1 / (1 + np.exp(-(X @ np.array([0.5, 2.0, -3.0])))))
    fit = solve(gj.Bernoulli(), X, y, tol=1e-14)
    history = np.asarray(fit.history)[: int(fit.n_iter) + 1]
    err = history[:-1] - history[-1]
    # e_{k+1} <= C e_k^2 while the error is small but above rounding
    pairs = [(a, b) for a, b in zip(err[:-1], err[1:], strict=True) if a < 1e-2 and b > 1e-13]
    assert len(pairs) >= 2
    for a, b in pairs:
        assert b <= 100 * a**2
    assert int(fit.n_iter) <= 8


def test_logistic_ridge_matches_sklearn():
    X, rng = design(300, seed=4)
    y = rng.binomial(1, 1 / (1 + np.exp(-(X @ BETA))))
    C = 0.5
    # sklearn: C sum_i loss_i + |w|^2 / 2, intercept unpenalised  <=>  l2 = 1 / (C n) on the slopes
    l2 = np.array([0.0, 1.0, 1.0]) / (C * len(y))
    fit = solve(gj.Bernoulli(), X, y, l2=l2)
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=1000).fit(X[:, 1:], y)
    np.testing.assert_allclose(fit.coef[1:], clf.coef_[0], rtol=1e-6)
    np.testing.assert_allclose(fit.coef[0], clf.intercept_[0], rtol=1e-6)


def test_minimal_categorical_is_full_categorical_minus_last_column():
    minimal = reference("categorical")
    full = reference("categorical_full")  # the same data; a singular Hessian: minimum-norm steps
    np.testing.assert_allclose(
        minimal.coef, full.coef[:, :3] - full.coef[:, 3:], rtol=0, atol=1e-10
    )
    # the minimum-norm representative: rows summing to zero
    np.testing.assert_allclose(full.coef.sum(axis=1), 0, atol=1e-12)
    # the family's own null space is expected: solved by Cholesky, not reported as singular
    assert int(full.result) == gj.ResultCode.successful


def _separated(family_name):
    X, rng = design(120, seed=6)
    if family_name == "bernoulli":
        return gj.Bernoulli(), X, (X[:, 1] > 0).astype(float)
    return gj.Categorical(4), X, np.digitize(X[:, 1], [-0.7, 0.0, 0.7]).astype(float)


@pytest.mark.parametrize("name", ["bernoulli", "categorical"])
def test_separation_warns_and_stays_finite(name):
    family, X, y = _separated(name)
    with pytest.warns(gj.ConvergenceWarning, match="does not exist"):
        fit = gj.fit_glm(X, y, family)
    assert int(fit.result) == gj.ResultCode.separation
    assert not bool(fit.converged)
    assert np.all(np.isfinite(fit.coef))
    # the data are classified perfectly: the slope is large, every fitted probability near 0 or 1
    probs = np.asarray(fit.predict(X))
    observed = probs[np.arange(len(y)), y.astype(int)] if probs.ndim == 2 else 1 - abs(probs - y)
    assert observed.min() > 0.99


def test_quasi_separation_is_detected():
    X, rng = design(120, seed=7)
    X[:6, 1] = 0.0  # ties on the boundary: both labels at x = 0
    y = (X[:, 1] > 0).astype(float)
    y[:3] = 1.0
    with pytest.warns(gj.ConvergenceWarning, match="does not exist"):
        fit = gj.fit_glm(X, y, gj.Bernoulli())
    assert int(fit.result) == gj.ResultCode.separation and np.all(np.isfinite(fit.coef))


def test_max_iter_warns():
    family, _, X, y = data("poisson")
    with pytest.warns(gj.ConvergenceWarning, match="max_iter"):
        fit = gj.fit_glm(X, y, family, max_iter=1)
    assert int(fit.result) == gj.ResultCode.max_iter_reached and not bool(fit.converged)
    assert int(fit.n_iter) == 1
    assert np.isfinite(fit.history[1]) and fit.history.shape == (2,)


def test_collinear_design_gives_minimum_norm_solution():
    family, _, X, y = data("poisson")
    Xc = np.c_[X, 2 * X[:, 2]]  # the last column is twice the previous one
    with pytest.warns(gj.ConvergenceWarning, match="singular"):
        fit = gj.fit_glm(Xc, y, family)
    assert int(fit.result) == gj.ResultCode.singular_hessian and bool(fit.converged)
    ref = reference("poisson")
    # beta_2 x + beta_3 (2 x) = b x with the minimum norm: (beta_2, beta_3) = b (1, 2) / 5
    np.testing.assert_allclose(fit.coef[:2], ref.coef[:2], rtol=1e-8)
    np.testing.assert_allclose(fit.coef[2:], ref.coef[2] * np.array([1, 2]) / 5, rtol=1e-8)
    # the non-identifiable coefficients have an infinite variance; the others a finite one
    assert np.all(np.isinf(fit.stderr[2:])) and np.all(np.isfinite(fit.stderr[:2]))


def test_gamma_line_search_keeps_eta_in_domain():
    # a start far from the optimum: a full Newton step would leave eta < 0 for Gamma
    X, rng = design(200, seed=8)
    y = rng.gamma(1.0, np.exp(3 * X[:, 1]))
    fit = solve(gj.Gamma(1.0), X, y)
    assert int(fit.result) == gj.ResultCode.successful
    assert np.all(np.asarray(X @ fit.coef) < 0)
    history = np.asarray(fit.history)[: int(fit.n_iter) + 1]
    assert np.all(np.isfinite(history)) and np.all(np.diff(history) <= 0)
    assert np.all(np.isnan(np.asarray(fit.history)[int(fit.n_iter) + 1 :]))
    assert int(fit.n_evals) > int(fit.n_iter) + 1  # some steps were halved back into the domain


def test_stopping_rule_is_invariant_to_column_scale():
    """A column scaled by 1e12: the same fit (scaled coefficient), converged, not 'stalled'."""
    family, _, X, y = data("poisson")
    scale = np.array([1.0, 1e12, 1e-6])
    fit = gj.fit_glm(X * scale, y, family)
    ref = gj.fit_glm(X, y, family)
    assert int(fit.result) == gj.ResultCode.successful
    np.testing.assert_allclose(fit.coef * scale, ref.coef, rtol=1e-9)
    np.testing.assert_allclose(fit.stderr * scale, ref.stderr, rtol=1e-7)
    assert int(fit.n_iter) == int(ref.n_iter)


def test_vmap_over_1000_poisson_glms():
    n, p, batch = 30, 3, 1000
    rng = np.random.default_rng(9)
    Xs = np.concatenate([np.ones((batch, n, 1)), rng.normal(size=(batch, n, p - 1))], axis=2)
    betas = 0.3 * rng.normal(size=(batch, p))
    ys = rng.poisson(np.exp(np.einsum("bnp,bp->bn", Xs, betas))).astype(float)
    fits = jax.vmap(lambda X, y: gj.fit_glm(X, y, gj.Poisson()))(Xs, ys)
    assert fits.coef.shape == (batch, p)
    ok = np.asarray(fits.converged)
    # an all-zero count vector has no finite MLE: reported as such, not as converged
    zero = ys.sum(axis=1) == 0
    assert np.all(ok == ~zero)
    assert np.all(np.asarray(fits.result)[zero] == gj.ResultCode.separation)
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
    """jaxlib spreads a large batch of LAPACK calls over XLA's thread pool and blocks: a Cholesky
    and an eigendecomposition at once (both branches of a batched ``lax.cond``) deadlocked (idle)
    from a few thousand fits on 2 cores; `rare_cond` orders the eigendecomposition after the
    Cholesky. In a subprocess, so a hang fails."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _MANY_FITS], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "converged 10000" in proc.stdout


def test_second_fit_does_not_recompile():
    family, _, X, y = data("categorical")
    gj.fit_glm(X, y, family)
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        y2 = np.roll(y, 1)
        fit = gj.fit_glm(X + 0.01, y2, family, tol=1e-9)  # new data and tol: no recompile
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert bool(fit.converged)
    assert compiles == []


@pytest.mark.parametrize(("name", "tol"), [("bernoulli", 1e-5), ("categorical", 1e-8),
                                           ("probit", 1e-5)])  # fmt: skip
def test_float32_fit_matches_float64(name, tol):
    family, link, X, y = data(name)
    with jax.enable_x64(False):
        # with the default tol=1e-8 the fit stops where float32 rounding does (see fit_glm)
        fit = gj.fit_glm(np.float32(X), np.float32(y), family, link=link, tol=tol)
        assert fit.coef.dtype == jnp.float32 and fit.stderr.dtype == jnp.float32
        assert int(fit.result) == gj.ResultCode.successful
        coef = np.asarray(fit.coef, np.float64)
    # float32 resolves the standardised gradient to about 2e-5, the coefficients to that over the
    # smallest Hessian eigenvalue (about 0.05 here)
    np.testing.assert_allclose(coef, reference(name).coef, rtol=0, atol=1e-3)


def test_bad_solver_arguments():
    family, _, X, y = data("poisson")
    with pytest.raises(ValueError, match="method"):
        gj.fit_glm(X, y, family, method="bfgs")
    with pytest.raises(ValueError, match="hessian"):
        gj.fit_glm(X, y, family, hessian="diagonal")
    with pytest.raises(ValueError, match="max_iter"):
        gj.fit_glm(X, y, family, max_iter=-1)
    with pytest.raises(ValueError, match="tol"):
        gj.fit_glm(X, y, family, tol=0.0)
    with pytest.raises(ValueError, match="tol"):
        gj.fit_glm(X, y, family, tol="1e-8")
    with pytest.raises(ValueError, match="chunk_size"):
        gj.fit_glm(X, y, family, chunk_size=0)
    with pytest.raises(ValueError, match="information"):
        gj.fit_glm(X, y, family, information="fisher")
    with pytest.raises(ValueError, match="covariance"):
        gj.fit_glm(X, y, family, covariance="yes")


def test_a_descent_written_by_a_user_runs_in_the_loop():
    """The extension point: a descent of a few lines (Newton with the Hessian's diagonal) with
    the shared line search reaches the optimum."""
    from glmjax.solvers import AbstractDescent, Backtracking, DescentInfo, Needs, Solver

    class DiagonalNewton(AbstractDescent):
        def needs(self):
            return Needs(hess_diag=True)

        def direction(self, problem, coef, evaluation, state):
            return -evaluation.grad / evaluation.hess_diag, state, DescentInfo.none()

    family, _, X, y = data("poisson")
    fit = gj.fit_glm(X, y, family, method=Solver(DiagonalNewton(), Backtracking()),
                     max_iter=2000, tol=1e-9)  # fmt: skip
    assert int(fit.result) == gj.ResultCode.successful
    np.testing.assert_allclose(fit.coef, reference("poisson").coef, atol=1e-6)


def test_add_intercept():
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(gj.add_intercept(X), np.c_[np.ones(3), X])
    with pytest.raises(ValueError, match="X"):
        gj.add_intercept(np.ones(3))


def test_helpers_cover_every_family():
    """The table of cases holds every built-in family (so the tests above cover them)."""
    families = {type(CASES[n][0]) for n in CASES}
    expected = {gj.Bernoulli, gj.Binomial, gj.Poisson, gj.Gaussian, gj.Gamma, gj.InverseGaussian,
                gj.Exponential, gj.Geometric, gj.NegativeBinomial, gj.Categorical}  # fmt: skip
    assert families == expected
