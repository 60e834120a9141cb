"""An honest outcome on degenerate data: every case that once gave a wrong or confusing result now
gives a result code and a warning that say what happened (never a silent NaN, never "converged"
when it did not), or a ValueError naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import glmjax as gj

N = 200


def _X(seed=0):
    rng = np.random.default_rng(seed)
    return np.c_[np.ones(N), rng.normal(size=N)], rng


def _code(fit):
    return gj.ResultCode(int(fit.result))


def test_all_zero_poisson_counts_have_no_finite_mle():
    X, _ = _X()
    with pytest.warns(gj.ConvergenceWarning, match="does not exist"):
        fit = gj.fit_glm(X, np.zeros(N), gj.Poisson())
    assert _code(fit) == gj.ResultCode.separation and not bool(fit.converged)
    # the intercept heads to -inf; its standard error is huge, not 0, and no p-value is NaN
    assert float(fit.coef[0]) < -15 and float(fit.stderr[0]) > 1e2
    assert np.all(np.isfinite(np.asarray(fit.pvalues)))


def test_a_single_class_bernoulli_response_has_no_finite_mle():
    X, _ = _X()
    with pytest.warns(gj.ConvergenceWarning, match="does not exist"):
        fit = gj.fit_glm(X, np.ones(N), gj.Bernoulli())
    assert _code(fit) == gj.ResultCode.separation and not bool(fit.converged)


def test_an_exact_gaussian_fit_says_so():
    X, _ = _X()
    y = X @ np.array([1.0, 2.0])
    with pytest.warns(gj.ConvergenceWarning, match="exact up to rounding"):
        fit = gj.fit_glm(X, y, gj.Gaussian())
    np.testing.assert_allclose(fit.coef, [1.0, 2.0], rtol=1e-13)
    assert float(fit.deviance) >= 0 and not np.isnan(float(fit.loglik))
    assert not np.isnan(float(fit.aic))


def test_no_residual_degrees_of_freedom_says_so():
    X, _ = _X()
    with pytest.warns(gj.ConvergenceWarning, match="df_resid = 0"):
        fit = gj.fit_glm(X[:2], np.array([1.0, 3.0]), gj.Gaussian())
    assert float(fit.df_resid) == 0 and np.isnan(float(fit.scale))
    np.testing.assert_allclose(X[:2] @ np.asarray(fit.coef), [1.0, 3.0], rtol=1e-12)


def _infeasible_gamma():
    X, rng = _X()
    offset = np.where(np.arange(N) % 2, 10.0, -10.0)  # eta = c + offset > 0 for half the rows
    return X[:, :1], rng.gamma(2.0, 1.0, N), offset


def test_a_gamma_fit_without_a_feasible_start_reports_it_in_memory_and_streaming():
    X, y, offset = _infeasible_gamma()
    with pytest.warns(gj.ConvergenceWarning, match="start"):
        fit = gj.fit_glm(X, y, gj.Gamma(), offset=offset)
    with pytest.warns(gj.ConvergenceWarning, match="start"):
        streamed = gj.fit_glm_streaming((X, y, np.ones(N), offset), gj.Gamma(), progress=False)
    for result in (fit, streamed):
        assert _code(result) == gj.ResultCode.nonfinite and not bool(result.converged)
        # every inference quantity is NaN, and the result code and warning say why
        for name in ("loglik", "deviance", "aic", "scale"):
            assert np.isnan(float(getattr(result, name))), name
        assert np.all(np.isnan(np.asarray(result.stderr)))
    # with the log link, the same data fit
    log = gj.fit_glm(X, y, gj.Gamma(), link="log", offset=offset)
    assert _code(log) == gj.ResultCode.successful


@pytest.mark.parametrize("method", ["lbfgs", "gd"])
def test_first_order_methods_on_separated_data_do_not_claim_convergence(method):
    X, _ = _X()
    y = (X[:, 1] > 0).astype(float)
    with pytest.warns(gj.ConvergenceWarning):
        fit = gj.fit_glm(X, y, gj.Bernoulli(), method=method, max_iter=3000)
    assert not bool(fit.converged)
    assert _code(fit) in (gj.ResultCode.not_optimal, gj.ResultCode.max_iter_reached)


def test_lbfgs_on_separated_data_is_not_optimal_and_newton_says_separation():
    X, _ = _X()
    y = (X[:, 1] > 0).astype(float)
    with pytest.warns(gj.ConvergenceWarning, match="would still move"):
        fit = gj.fit_glm(X, y, gj.Bernoulli(), method="lbfgs")
    assert _code(fit) == gj.ResultCode.not_optimal
    with pytest.warns(gj.ConvergenceWarning, match="does not exist"):
        newton = gj.fit_glm(X, y, gj.Bernoulli())
    assert _code(newton) == gj.ResultCode.separation


def test_an_invalid_member_of_a_vmapped_fit_is_reported_not_fitted():
    X, rng = _X()
    ys = np.stack([rng.poisson(2.0, N), -np.ones(N), rng.poisson(2.0, N)]).astype(float)
    fits = jax.vmap(lambda y: gj.fit_glm(X, y, gj.Poisson()))(jnp.asarray(ys))
    codes = [gj.ResultCode(int(c)) for c in fits.result]
    assert codes == [gj.ResultCode.successful, gj.ResultCode.invalid_data,
                     gj.ResultCode.successful]  # fmt: skip
    assert np.isnan(float(fits.loglik[1])) and np.isfinite(float(fits.loglik[0]))
    assert "jax.vmap" in gj.ResultCode.invalid_data.message


def test_huge_offsets_are_reported_as_vanishing_curvature():
    """Offsets of +-1000 saturate every fitted probability: the Hessian vanishes where the
    gradient does not. The result code says so instead of blaming rounding."""
    X, rng = _X()
    offset = rng.choice([-1000.0, 1000.0], N)
    y = rng.binomial(1, 0.5, N).astype(float)
    with pytest.warns(gj.ConvergenceWarning, match="Hessian vanishes"):
        fit = gj.fit_glm(X, y, gj.Bernoulli(), offset=offset)
    assert _code(fit) == gj.ResultCode.zero_curvature and not bool(fit.converged)


def test_bad_argument_types_are_value_errors_naming_them():
    X, _ = _X()
    y = np.ones(N)
    with pytest.raises(ValueError, match="`X` must be a numeric array"):
        gj.fit_glm(np.array([["a", "b"]] * N, dtype=object), y, gj.Poisson())
    with pytest.raises(ValueError, match="`tol`"):
        gj.fit_glm(X, y, gj.Poisson(), tol="1e-8")
    with pytest.raises(ValueError, match=r"`offset` must have shape \(200,\), got"):
        gj.fit_glm(X, y, gj.Poisson(), offset=np.zeros(3))
    with pytest.raises(ValueError, match=r"\(200,\) or \(200, 2\)"):
        gj.fit_glm(X, np.zeros(N), gj.Categorical(3), offset=np.zeros(3))
    with pytest.raises(ValueError, match="`start`"):
        gj.fit_glm(X, y, gj.Poisson(), start=np.zeros(3))


def test_families_outside_their_domain():
    """Outside the mean space the canonical link is NaN (as numpy/scipy's logit), on its
    boundary +-inf; a vector family rejects an eta of the wrong length."""
    for link in (gj.Bernoulli().link, gj.Bernoulli().conjugate_link):
        values = np.asarray(link(jnp.array([1.5, -0.5, 0.0, 1.0, 0.5])))
        assert np.all(np.isnan(values[:2]))
        np.testing.assert_allclose(values[2:], [-np.inf, np.inf, 0.0], atol=1e-15)
    with pytest.raises(ValueError, match="3 entries"):
        gj.Categorical(4).mean(jnp.zeros(4))
    with pytest.raises(ValueError, match="2 entries"):
        gj.Categorical(3).link(jnp.array([0.2, 0.3, 0.5]))
