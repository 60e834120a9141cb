"""Hessian-free Newton (method="newton-cg") reaches the exact-Newton / L-BFGS optimum without ever
forming a (q, q) Hessian."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glmjax as gj
from glmjax._iterate import minimise
from glmjax._objective import GLMObjective, RowLikelihood
from glmjax._solver import truncated_cg
from glmjax._start import mean_statistic, start_coef
from glmjax.solvers import Newton, NewtonCG


def _data(key, family, n, p):
    kx, kc, ky = jax.random.split(key, 3)
    X = gj.add_intercept(jax.random.normal(kx, (n, p - 1)))
    m = family.natural_dim
    coef = 0.5 * jax.random.normal(kc, (p,) if m is None else (p, m))
    eta = X @ coef
    if isinstance(family, gj.Bernoulli):
        y = jax.random.bernoulli(ky, jax.nn.sigmoid(eta)).astype(float)
    elif isinstance(family, gj.Poisson):
        y = jax.random.poisson(ky, jnp.exp(eta)).astype(float)
    else:
        logits = jnp.concatenate([eta, jnp.zeros((n, 1))], axis=1)
        y = jax.random.categorical(ky, logits)
    return X, y


def _objective(family, X, y, l2):
    n = X.shape[0]
    model = RowLikelihood(family, gj.links.Canonical(family), True)
    return GLMObjective.from_data(model, X, y, jnp.ones(n), jnp.zeros(n), l2)


def _run(objective, solver, max_iter=100, tol=1e-12):
    coef0 = start_coef(objective, objective.family.link(mean_statistic(objective)))
    return minimise(objective, solver, coef0, max_iter=max_iter, tol=tol,
                    scale=objective.column_scale())  # fmt: skip


_minimise = jax.jit(_run)


def _statsmodels_coef(family, X, y):
    import statsmodels.api as sm

    X, y = np.asarray(X), np.asarray(y)
    if isinstance(family, gj.Poisson):
        return sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-14).params
    # MNLogit's reference is class 0, glmjax's the last class: shift every column by the last one
    B = np.c_[np.zeros(X.shape[1]), sm.MNLogit(y, X).fit(method="newton", tol=1e-14, disp=0).params]
    return B[:, :-1] - B[:, -1:]


@pytest.mark.parametrize("family", [gj.Poisson(), gj.Categorical(4)])
def test_same_optimum_as_newton_in_statsmodels(getkey, family):
    X, y = _data(getkey(), family, 400, 6)
    cg = _minimise(_objective(family, X, y, 0.0), NewtonCG())
    assert bool(cg.converged)
    np.testing.assert_allclose(cg.coef, _statsmodels_coef(family, X, y), rtol=1e-8, atol=1e-9)
    # superlinear (the truncation rule tightens as the gradient shrinks): tens of iterations at
    # most, where gradient descent would need thousands at this tolerance
    assert int(cg.n_iter) <= 30


def test_fit_glm_dispatches_newton_cg(getkey):
    import statsmodels.api as sm

    family = gj.Bernoulli()
    X, y = _data(getkey(), family, 300, 4)
    cg = gj.fit_glm(X, y, family, method="newton-cg", tol=1e-12)
    ref = sm.GLM(np.asarray(y), np.asarray(X), family=sm.families.Binomial()).fit(tol=1e-14)
    assert bool(cg.converged)
    np.testing.assert_allclose(cg.coef, ref.params, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(cg.stderr, ref.bse, rtol=1e-8)


def test_same_optimum_as_lbfgs_on_softmax_with_more_parameters_than_rows(getkey):
    import scipy.optimize

    # q = 30 * 9 = 270 coefficients, n = 200 rows: identifiable only through the ridge
    family = gj.Categorical(10)
    X, y = _data(getkey(), family, 200, 30)
    objective = _objective(family, X, y, 1e-3)
    cg = _minimise(objective, NewtonCG())
    value_and_grad = jax.jit(lambda c: jax.value_and_grad(objective.value)(c.reshape(30, 9)))
    lbfgs = scipy.optimize.minimize(
        lambda c: tuple(np.asarray(v, np.float64).ravel() for v in value_and_grad(c)),
        np.zeros(270),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-11, "ftol": 0, "maxiter": 10_000},
    )
    assert bool(cg.converged)
    assert abs(objective.value(cg.coef) - lbfgs.fun) <= 1e-12 * abs(lbfgs.fun)
    np.testing.assert_allclose(cg.coef.ravel(), lbfgs.x, atol=1e-6)


def _all_shapes(jaxpr):
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            yield var.aval.shape
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    yield from _all_shapes(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    yield from _all_shapes(sub)


def test_no_dense_hessian_is_formed(getkey):
    family = gj.Categorical(11)
    n, p = 300, 40
    q = p * 10
    X, y = _data(getkey(), family, n, p)
    objective = _objective(family, X, y, 1e-2)
    jaxpr = jax.make_jaxpr(lambda o: _run(o, NewtonCG(), max_iter=50, tol=1e-10))(objective)
    largest = max(math.prod(s) for s in _all_shapes(jaxpr.jaxpr))
    # the largest intermediates are n x q-ish (eta, X), far below q^2 = 160,000
    assert largest < q * q // 10, largest
    # and the same tracing of exact Newton does contain the (q, q) Hessian: the check can fail
    newton = jax.make_jaxpr(lambda o: _run(o, Newton(), max_iter=50, tol=1e-10))(objective)
    assert (q, q) in set(_all_shapes(newton.jaxpr))


def test_truncated_cg_solves_spd_system_and_stops_at_negative_curvature(getkey):
    A = jax.random.normal(getkey(), (20, 20))
    H = A @ A.T + 0.1 * jnp.eye(20)
    b = jax.random.normal(getkey(), (20,))
    x, k = truncated_cg(lambda v: H @ v, b, rtol=1e-12, max_iter=200)
    np.testing.assert_allclose(x, jnp.linalg.solve(H, b), rtol=1e-8)
    assert 0 < int(k) <= 200
    # an indefinite "Hessian": the first direction b has b^T H b < 0 -> steepest descent, b itself
    x_neg, k_neg = truncated_cg(lambda v: -v, b, rtol=1e-12, max_iter=200)
    np.testing.assert_array_equal(x_neg, b)
    assert int(k_neg) == 1


def test_fit_glm_without_covariance_forms_no_dense_matrix(getkey):
    """`fit_glm(method="newton-cg", covariance=False)` end to end (solver and inference) holds
    nothing of size q^2, so it scales to more parameters than a (q, q) matrix could hold; the
    inference it does report equals the full fit's."""
    family = gj.Categorical(11)
    n, p = 300, 80
    q = p * 10
    X, y = _data(getkey(), family, n, p)

    def fit(covariance):
        return lambda X, y: gj.fit_glm(
            X, y, family, method="newton-cg", l2=1e-2, covariance=covariance
        )

    # the largest intermediates are n x m^2 (per-row curvatures) or n x q-ish, far below q^2
    largest = max(math.prod(s) for s in _all_shapes(jax.make_jaxpr(fit(False))(X, y).jaxpr))
    assert largest < q * q // 10, largest
    assert (q, q) in set(_all_shapes(jax.make_jaxpr(fit(True))(X, y).jaxpr))

    lean, full = fit(False)(X, y), fit(True)(X, y)
    assert lean.cov is None and lean.stderr is None and lean.pvalues is None
    np.testing.assert_array_equal(lean.coef, full.coef)
    for name in ("loglik", "deviance", "null_deviance", "aic", "bic"):
        np.testing.assert_allclose(getattr(lean, name), getattr(full, name), rtol=1e-14)
    row = next(r for r in str(lean.summary()).splitlines() if r.startswith("x0 "))
    assert row.split()[2:] == ["-", "-", "-"]


def test_covariance_argument_is_checked():
    with pytest.raises(ValueError, match="`covariance` must be True or False"):
        gj.fit_glm(np.ones((3, 1)), np.ones(3), gj.Poisson(), covariance="no")
