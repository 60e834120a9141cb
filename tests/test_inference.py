"""The inference on its own: each quantity against an independent formula (textbook unit
deviances, scipy log-densities, the Hessian of the objective by autodiff, R's numbers for a
hand-supplied optimum). Coefficients come from statsmodels or are arbitrary, passed in a
`Solution` built here, so these tests do not depend on the solvers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
import statsmodels.api as sm
from jax.scipy.special import xlogy
from numpy.testing import assert_allclose
from statsmodels.genmod.tests.results.results_glm import Longley

import glmjax as gj
from glmjax import _fit, links
from glmjax._inference import fit_sums, saturated
from glmjax._objective import GLMObjective, RowLikelihood, Rows
from glmjax._solution import ResultCode
from glmjax._solver import Needs, Solution
from glmjax._validation import validate_glm_inputs


def _result(X, y, family, coef, *, link=None, information="expected", **kwargs):
    """`fit_glm`'s inference at the given coefficients (a `Solution` built by hand)."""
    X, y, w, o, l2, _ = validate_glm_inputs(X, y, family, **kwargs)
    L, canonical = links.get(link, family)
    model = RowLikelihood(family, L, canonical)
    obj = GLMObjective.from_data(model, X, y, w, o, l2)
    coef = jnp.asarray(coef, X.dtype)
    solution = Solution(
        coef=coef,
        evaluation=obj.evaluate(coef, Needs(hessian="observed")),
        n_iter=jnp.array(3, jnp.int32),
        n_evals=jnp.array(4, jnp.int32),
        converged=jnp.array(True),
        grad_norm=jnp.zeros((), coef.dtype),
        history=jnp.zeros(101, coef.dtype),
        result=jnp.array(int(ResultCode.successful), jnp.int32),
    )
    eta0 = _fit._start_eta(model, _fit._mean_statistic(family, X, y, w))
    refit = bool(np.any(np.asarray(o)))
    options = _fit.InferOptions(
        refit_null=refit, information=information, covariance=True,
        reuse=canonical and information == "expected", check_optimum=False, blocks=1,
        chunk_size=None,
    )  # fmt: skip
    return _fit._infer(model, X, y, w, o, l2, solution, obj.column_summary(), eta0,
                       jnp.asarray(1e-10), None, options)  # fmt: skip


def _cpunish():
    data = sm.datasets.cpunish.load_pandas()
    X = data.exog.to_numpy(float).copy()
    X[:, 3] = np.log(X[:, 3])
    return sm.add_constant(X, prepend=False), data.endog.to_numpy(float)


# ----- the saturated model and the log-likelihood, family by family -----------------------------

# textbook a*(y) = sup_eta (eta y - a(eta)), the saturated value behind the deviance
SATURATED = [
    (gj.Poisson(), [0.0, 1, 2, 7, 300], lambda y: xlogy(y, y) - y),
    (gj.Bernoulli(), [0.0, 1, 1, 0], lambda y: 0 * y),
    (gj.Binomial(trials=4.0), [0.0, 0.25, 0.5, 1], lambda y: xlogy(y, y) + xlogy(1 - y, 1 - y)),
    (gj.Gaussian(), [-3.0, 0, 0.5, 40], lambda y: y**2 / 2),
    (gj.Gamma(), [1e-3, 0.5, 1, 2e3], lambda y: -1 - jnp.log(y)),
    (gj.InverseGaussian(), [1e-3, 0.5, 1, 2e3], lambda y: 0.5 / y),
    (gj.Exponential(), [1e-3, 0.5, 1, 2e3], lambda y: -1 - jnp.log(y)),
    (gj.Geometric(), [0.0, 1, 5, 100], lambda y: xlogy(y, y) - xlogy(1 + y, 1 + y)),
    (
        gj.NegativeBinomial(2.5),
        [0.0, 1, 5, 100],
        lambda y: xlogy(y, y / (y + 2.5)) + 2.5 * jnp.log(2.5 / (y + 2.5)),
    ),
]


@pytest.mark.parametrize(("family", "y", "closed"), SATURATED, ids=lambda v: type(v).__name__)
def test_saturated_value_matches_the_textbook_deviance(family, y, closed):
    y = jnp.asarray(y)
    t = jax.vmap(family.sufficient_statistic)(y)
    value = jax.jit(jax.vmap(lambda ti: saturated(family, ti)))(t)
    assert_allclose(value, closed(y), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("minimal", [True, False])
def test_saturated_categorical_is_zero(minimal):
    family = gj.Categorical(4, minimal=minimal)
    t = jax.vmap(family.sufficient_statistic)(jnp.array([0, 1, 2, 3, 3]))
    value = jax.jit(jax.vmap(lambda ti: saturated(family, ti)))(t)
    assert_allclose(value, 0.0, atol=1e-10)


# (family, y, mu, textbook eta(mu), scipy log-density)
LOGPMF = [
    (gj.Poisson(), [0.0, 1, 2, 7], [0.5, 1.5, 3, 6], np.log, st.poisson.logpmf),
    (
        gj.Geometric(),
        [0.0, 1, 2, 7],
        [0.5, 1.5, 3, 6],
        lambda mu: np.log(mu / (1 + mu)),
        lambda y, mu: st.geom.logpmf(y + 1, 1 / (1 + mu)),
    ),
    (
        gj.NegativeBinomial(2.5),
        [0.0, 1, 2, 7],
        [0.5, 1.5, 3, 6],
        lambda mu: np.log(mu / (mu + 2.5)),
        lambda y, mu: st.nbinom.logpmf(y, 2.5, 2.5 / (2.5 + mu)),
    ),
    (
        gj.Exponential(),
        [0.1, 1, 2, 7],
        [0.5, 1.5, 3, 6],
        lambda mu: -1 / mu,
        lambda y, mu: st.expon.logpdf(y, scale=mu),
    ),
    (
        gj.Bernoulli(),
        [0.0, 1, 1, 0],
        [0.2, 0.4, 0.6, 0.8],
        lambda mu: np.log(mu / (1 - mu)),
        st.bernoulli.logpmf,
    ),
]


@pytest.mark.parametrize(
    ("family", "y", "mu", "link", "logpmf"), LOGPMF, ids=lambda v: type(v).__name__
)
def test_loglik_is_the_weighted_sum_of_scipy_log_densities(family, y, mu, link, logpmf):
    """Fixed-dispersion families: loglik = sum_i w_i log p(y_i; mu_i) (R's frequency weights), from
    the per-row sums of `fit_sums` at eta = link(mu)."""
    y, mu = np.asarray(y), np.asarray(mu)
    w = np.array([1.0, 2.0, 0.0, 0.5])
    model = RowLikelihood(family, links.Canonical(family), True)
    obj = GLMObjective.from_data(model, np.eye(4), y, w, np.zeros(4), 0.0)
    rows = Rows(obj.X, obj.y, obj.t, obj.weights, obj.offset)
    sums = fit_sums(model, jnp.asarray(link(mu)), jnp.zeros(()), rows, information=None)
    got = sums.log_base + sums.loglik_core / family.dispersion
    assert_allclose(got, np.sum(w * logpmf(y, mu)), rtol=1e-10)


# ----- inference on a hand-supplied optimum -----------------------------------------------------


def test_longley_inference_from_statsmodels_coefficients_matches_R():
    """R's Longley numbers (statsmodels' results_glm.Longley) from our inference alone, given the
    optimum: the inverse of the Fisher information scaled to unit diagonal copes with columns from
    1 to 1e5 (a raw inverse of X^T X loses ~8 digits here)."""
    data = sm.datasets.longley.load_pandas()
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = data.endog.to_numpy(float)
    coef = sm.OLS(y, X).fit().params
    res = _result(X, y, gj.Gaussian(), coef)
    R = Longley()
    assert_allclose(res.stderr, R.bse, rtol=1e-6)
    assert_allclose(res.deviance, R.deviance, rtol=1e-9)
    assert_allclose(res.null_deviance, R.null_deviance, rtol=1e-6)
    assert_allclose(res.scale, R.scale, rtol=1e-9)
    assert_allclose((res.aic, res.loglik), (R.aic_R, R.llf), rtol=1e-9)
    assert (float(res.df_resid), int(res.nobs), bool(res.has_intercept)) == (9.0, 16, True)
    assert_allclose(res.pvalues, 2 * st.t.sf(np.abs(coef / R.bse), 9), rtol=1e-5)


def test_covariance_is_the_inverse_hessian_of_the_penalised_objective():
    """cov^-1 = n * hessian of the (1/n)-scaled objective, by jax.hessian of the whole objective;
    with a ridge this is the penalised information."""
    X, y = _cpunish()
    coef = sm.GLM(y, X, family=sm.families.Poisson()).fit().params
    l2 = 0.01
    res = _result(X, y, gj.Poisson(), coef, l2=l2)
    model = RowLikelihood(gj.Poisson(), links.Canonical(gj.Poisson()), True)
    objective = GLMObjective.from_data(model, *validate_glm_inputs(X, y, gj.Poisson(), l2=l2)[:5])
    H = len(y) * jax.hessian(objective.value)(jnp.asarray(coef))
    assert_allclose(np.asarray(res.cov) @ H, np.eye(len(coef)), atol=1e-8)
    assert float(res.scale) == 1.0
    # the null deviance ignores the ridge: closed form of the intercept-only Poisson fit
    mu = np.mean(y)
    assert_allclose(res.null_deviance, 2 * np.sum(xlogy(y, y / mu) - (y - mu)), rtol=1e-10)


def test_without_intercept_the_null_model_is_the_offset():
    """R: without an intercept the null deviance is the deviance at eta = offset."""
    X, y = _cpunish()
    X = X[:, :-1]
    offset = np.linspace(-1, 1, len(y))
    res = _result(X, y, gj.Poisson(), np.zeros(X.shape[1]), offset=offset)
    mu = np.exp(offset)
    dev = 2 * np.sum(xlogy(y, y / mu) - (y - mu))
    assert not bool(res.has_intercept)
    assert_allclose((res.null_deviance, res.deviance), (dev, dev), rtol=1e-10)
    assert float(res.df_null) == len(y)


def test_binomial_trials_times_weights():
    """Binomial(trials=t) with weights w is Binomial() with weights t w: same inference."""
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(40), rng.normal(size=40)])
    n = rng.integers(1, 6, 40).astype(float)
    y = rng.binomial(3 * n.astype(int), 0.4) / (3 * n)
    coef = np.array([-0.3, 0.2])
    # trials as arrays, so that both families share one compilation
    a = _result(X, y, gj.Binomial(trials=jnp.asarray(3.0)), coef, weights=n)
    b = _result(X, y, gj.Binomial(trials=jnp.asarray(1.0)), coef, weights=3 * n)
    for field in ["stderr", "loglik", "deviance", "null_deviance", "aic", "bic"]:
        assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-12)
    expected = st.binom.logpmf(np.round(3 * n * y), 3 * n, 1 / (1 + np.exp(-X @ coef))).sum()
    assert_allclose(b.loglik, expected, rtol=1e-12)


def test_vmap_over_results_matches_single_results():
    """`GLMResult` is a pytree: the inference (and so `fit_glm`) vmaps over data sets."""
    X, y = _cpunish()
    family = gj.Poisson()
    rng = np.random.default_rng(1)
    ys = np.stack([y, rng.poisson(y + 0.5).astype(float), rng.poisson(y + 1.0).astype(float)])
    coefs = np.stack([sm.GLM(v, X, family=sm.families.Poisson()).fit().params for v in ys])
    batched = jax.vmap(lambda v, c: _result(X, v, family, c))(jnp.asarray(ys), jnp.asarray(coefs))
    assert batched.stderr.shape == (3, X.shape[1])
    for i in range(3):
        single = _result(X, ys[i], family, coefs[i])
        for field in ["stderr", "cov", "deviance", "null_deviance", "loglik", "aic", "pvalues"]:
            assert_allclose(getattr(batched, field)[i], getattr(single, field), rtol=1e-10)
    with pytest.raises(ValueError, match="single fit"):
        batched.summary()


def test_float32_result_keeps_dtype_and_agrees_with_float64():
    X, y = _cpunish()
    coef = sm.GLM(y, X, family=sm.families.Poisson()).fit().params
    res64 = _result(X, y, gj.Poisson(), coef)
    with jax.enable_x64(False):
        res32 = _result(
            X.astype(np.float32), y.astype(np.float32), gj.Poisson(), coef.astype(np.float32)
        )
        assert all(
            getattr(res32, f).dtype == jnp.float32
            for f in ["coef", "stderr", "cov", "deviance", "loglik", "scale", "pvalues"]
        )
        for field in ["deviance", "null_deviance", "loglik"]:
            assert_allclose(getattr(res32, field), getattr(res64, field), rtol=1e-3)
        # the income column (~1e4) makes cov ill-scaled: float32 keeps a few digits
        assert_allclose(res32.stderr, res64.stderr, rtol=2e-2)


def test_predict_summary_and_message():
    X, y = _cpunish()
    coef = sm.GLM(y, X, family=sm.families.Poisson()).fit().params
    res = _result(X, y, gj.Poisson(), coef)
    assert_allclose(res.predict(X), np.exp(X @ coef), rtol=1e-12)
    assert_allclose(res.predict(X, offset=np.ones(len(y))), np.exp(X @ coef + 1), rtol=1e-12)
    with pytest.raises(ValueError, match="`X`"):
        res.predict(X[:, 1:])
    text = str(
        res.summary(names=["income", "poverty", "black", "lncrime", "south", "deg", "const"])
    )
    assert "Poisson" in text and "lncrime" in text and "P>|z|" in text
    assert f"{float(res.coef[0]):.6g}" in text
    assert res.message == ResultCode.successful.message
    with pytest.raises(ValueError, match="`names`"):
        res.summary(names=["a"])


@pytest.mark.parametrize("minimal", [True, False])
def test_categorical_predict_gives_all_class_probabilities(minimal):
    """minimal=True: the last (reference) class has probability exp(-a(eta)); both forms give the
    softmax of the full linear predictor (ANES and iris shapes, as in test_reference)."""
    if minimal:
        data = sm.datasets.anes96.load_pandas()
        X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
        y, k, kwargs = (data.endog.to_numpy().astype(int) - 1) % 7, 7, {}
    else:
        from sklearn.datasets import load_iris

        X, y = load_iris(return_X_y=True)
        X, k, kwargs = np.column_stack([np.ones(len(X)), X]), 3, {"l2": 0.01}
    n, p = X.shape
    family = gj.Categorical(k, minimal=minimal)
    coef = 0.01 * np.random.default_rng(2).normal(size=(p, family.natural_dim))
    res = _result(X, y, family, coef, **kwargs)
    eta = X @ coef
    full_eta = np.column_stack([eta, np.zeros(n)]) if minimal else eta
    softmax = jax.nn.softmax(jnp.asarray(full_eta), axis=1)
    assert_allclose(res.predict(X), softmax, rtol=1e-12)
    assert_allclose(res.loglik, np.sum(np.log(softmax[np.arange(n), y])), rtol=1e-12)
    # the saturated multinomial log-likelihood is 0
    assert_allclose(res.deviance, -2 * res.loglik, rtol=1e-10)
    assert np.all(np.isfinite(res.stderr)) and res.cov.shape == (p * k - p * minimal,) * 2
    assert float(res.df_resid) == n - p * (k - 1)


@pytest.mark.parametrize("information", ["expected", "observed"])
def test_covariance_follows_the_chosen_information_for_a_probit_link(information):
    """Probit: cov^-1 = n H with H the observed (jax.hessian of the objective) or the expected
    information (X^T diag(phi(eta)^2 / (mu (1 - mu))) X, written out here)."""
    data = sm.datasets.spector.load_pandas()
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = data.endog.to_numpy(float)
    probit = sm.families.Binomial(sm.families.links.Probit())
    coef = sm.GLM(y, X, family=probit).fit(tol=1e-13).params
    res = _result(X, y, gj.Bernoulli(), coef, link="probit", information=information)
    if information == "observed":
        model = RowLikelihood(gj.Bernoulli(), gj.links.Probit(), False)
        obj = GLMObjective.from_data(model, X, y, np.ones(len(y)), np.zeros(len(y)), 0.0)
        K = len(y) * jax.hessian(obj.value)(jnp.asarray(coef))
    else:
        eta = X @ coef
        mu, dmu = st.norm.cdf(eta), st.norm.pdf(eta)
        K = X.T @ (X * (dmu**2 / (mu * (1 - mu)))[:, None])
    assert_allclose(np.asarray(res.cov) @ K, np.eye(len(coef)), atol=1e-9)
    assert res.information == information


def test_inverse_gaussian_loglik_is_rs_at_its_dispersion():
    """R's inverse.gaussian()$aic: frequency-weighted log densities at dispersion D / sum(w)."""
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(60), rng.uniform(0, 1, 60)])
    coef = np.array([-0.6, -0.3])  # the natural parameter -1/(2 mu^2) < 0
    mu = 1 / np.sqrt(-2 * (X @ coef))
    y = rng.wald(mu, 3.0)
    w = rng.uniform(0.5, 2.0, 60)
    res = _result(X, y, gj.InverseGaussian(), coef, weights=w)
    unit = (y - mu) ** 2 / (mu**2 * y)
    deviance = np.sum(w * unit)
    phi = deviance / np.sum(w)
    lam = 1 / phi
    logpdf = st.invgauss.logpdf(y, mu / lam, scale=lam)
    assert_allclose(res.deviance, deviance, rtol=1e-12)
    assert_allclose(res.loglik, np.sum(w * logpdf), rtol=1e-12)
    assert_allclose(res.scale, np.sum(w * (y - mu) ** 2 / mu**3) / (60 - 2), rtol=1e-12)
