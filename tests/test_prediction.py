"""`GLMResult.get_prediction` and `GLMResult.residuals` against R (``predict.glm(se.fit =
TRUE)``, ``residuals.glm``: tests/data/r_inference, key ``cases``), statsmodels
(``get_prediction(...).summary_frame()``) and, for `Categorical`, the delta method with a
finite-difference Jacobian in NumPy.

Compared at ``rtol = 1e-6`` (the issue's tolerance; the agreement is ~1e-8 or better). The eight R
cases are evaluated at R's own optimum (coefficients, covariance scaled by the estimated
dispersion, as `fit_glm`'s ``cov``, and residual degrees of freedom, in a hand-built `GLMResult`):
fitting all eight would cost eight compiled fits (~60 s of CPU here), and `fit_glm`'s agreement
with R's coefficients and covariances is tested in test_robust.py and test_reference.py. A real
fit checks the path end to end: ``jax.vmap`` of `fit_glm` over three `Categorical` data sets.
"""

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
import statsmodels.api as sm
from helpers import _R_FAMILIES, r_inference
from numpy.testing import assert_allclose

import glmjax as gj
from glmjax import links
from glmjax._solution import ResultCode
from glmjax._solver import Evaluation, Solution

RTOL = 1e-6
KINDS = ("deviance", "pearson", "working", "response")
CASES = list(r_inference()["cases"])
# R's inverse links in closed form, independent of glmjax.links
INVERSE = {"log": np.exp, "logit": sp.expit, "probit": st.norm.cdf, "identity": lambda e: e,
           "inverse": lambda e: 1 / e}  # fmt: skip


def residual_close(actual, desired):
    # rtol, and an absolute rounding allowance for residuals that are 0 in exact arithmetic
    # (a row fitted exactly: insectsprays has R residuals of 1e-16)
    desired = np.asarray(desired)
    assert_allclose(actual, desired, rtol=RTOL, atol=1e-12 * np.max(np.abs(desired)))


def arrays(case, dtype=np.float64):
    """The case's ``X, y, weights, offset, newX, new_offset`` in ``dtype``."""
    keys = ("X", "y", "weights", "offset", "newX", "new_offset")
    return tuple(np.asarray(case[k], dtype) for k in keys)


def at_r_optimum(case, dtype=np.float64) -> gj.GLMResult:
    """A `GLMResult` holding R's fit of ``case``: coefficients, ``vcov`` (scaled by R's estimated
    dispersion), dispersion and residual degrees of freedom."""
    family = _R_FAMILIES[case["family"]]()
    link, _ = links.get(case["link"], family)
    coef = jnp.asarray(case["coef"], dtype)
    cov = jnp.asarray(case["vcov"], dtype)
    stderr = jnp.sqrt(jnp.diagonal(cov))
    zero = jnp.zeros((), dtype)
    solution = Solution(
        coef=coef,
        evaluation=Evaluation(f=zero, f_scale=zero, grad=jnp.zeros_like(coef)),
        n_iter=jnp.array(0, jnp.int32),
        n_evals=jnp.array(0, jnp.int32),
        converged=jnp.array(True),
        grad_norm=zero,
        history=jnp.zeros(1, dtype),
        result=jnp.array(int(ResultCode.successful), jnp.int32),
    )
    n = len(case["y"])
    return gj.GLMResult(
        family=family, link=link, solution=solution, stderr=stderr, cov=cov,
        zvalues=coef / stderr, pvalues=jnp.zeros_like(coef),
        loglik=jnp.asarray(case["loglik"], dtype), deviance=jnp.asarray(case["deviance"], dtype),
        null_deviance=jnp.asarray(case["null_deviance"], dtype),
        aic=jnp.asarray(case["aic"], dtype), bic=zero,
        scale=jnp.asarray(case["dispersion"], dtype),
        df_resid=jnp.asarray(case["df_residual"], dtype), df_null=jnp.asarray(n - 1, dtype),
        nobs=jnp.array(n, jnp.int32), has_intercept=jnp.array(True),
    )  # fmt: skip


@jax.jit
def outputs(fit, X, y, w, o, newX, new_o):
    # one compile per case for all four residuals and the prediction (and a test under jit)
    res = {kind: fit.residuals(X, y, kind=kind, weights=w, offset=o) for kind in KINDS}
    return res, fit.get_prediction(newX, new_o)


@pytest.fixture(scope="module")
def r_outputs():
    out = {}
    for name in CASES:
        case = r_inference()["cases"][name]
        out[name] = outputs(at_r_optimum(case), *arrays(case))
    return out


def check_against_R(case, residuals, prediction):
    for kind in KINDS:
        residual_close(residuals[kind], case["residuals"][kind])
    R = case["predict"]
    assert_allclose(prediction.linear, R["link"], rtol=RTOL)
    assert_allclose(prediction.se_linear, R["link_se"], rtol=RTOL)
    assert_allclose(prediction.mean, R["response"], rtol=RTOL)
    assert_allclose(prediction.se_mean, R["response_se"], rtol=RTOL)
    # the interval: R's linear interval (t on df_resid for an estimated dispersion, as
    # confint) mapped through the closed-form inverse link
    estimated = case["family"] in ("Gamma", "gaussian")
    q = st.t.ppf(0.975, case["df_residual"]) if estimated else st.norm.ppf(0.975)
    eta, se = np.asarray(R["link"]), np.asarray(R["link_se"])
    ends = INVERSE[case["link"]](eta - q * se), INVERSE[case["link"]](eta + q * se)
    assert_allclose(prediction.mean_ci_lower, np.minimum(*ends), rtol=RTOL)
    assert_allclose(prediction.mean_ci_upper, np.maximum(*ends), rtol=RTOL)
    assert np.all(prediction.mean_ci_lower < prediction.mean)
    assert np.all(prediction.mean < prediction.mean_ci_upper)


@pytest.mark.parametrize("name", CASES)
def test_against_R(r_outputs, name):
    check_against_R(r_inference()["cases"][name], *r_outputs[name])


def test_residual_sums_are_the_fit_statistics(r_outputs):
    # squared deviance residuals sum to R's deviance; squared Pearson residuals to X2 =
    # dispersion * df_resid for an estimated dispersion
    for name in CASES:
        case = r_inference()["cases"][name]
        residuals, _ = r_outputs[name]
        deviance, pearson = (np.asarray(residuals[kind]) for kind in ("deviance", "pearson"))
        assert_allclose(np.sum(deviance**2), case["deviance"], rtol=RTOL)
        if case["family"] in ("Gamma", "gaussian"):
            X2 = case["dispersion"] * case["df_residual"]
            assert_allclose(np.sum(pearson**2), X2, rtol=RTOL)


def test_poisson_against_statsmodels(r_outputs):
    case = r_inference()["cases"]["warpbreaks_poisson_log"]
    X, y, _, _, newX, _ = arrays(case)
    ref = sm.GLM(y, X, family=sm.families.Poisson()).fit(tol=1e-13, maxiter=200)
    frame = ref.get_prediction(newX).summary_frame(alpha=0.05)
    _, pred = r_outputs["warpbreaks_poisson_log"]
    assert_allclose(pred.mean, frame["mean"], rtol=RTOL)
    assert_allclose(pred.se_mean, frame["mean_se"], rtol=RTOL)
    # a known dispersion: both use the normal quantile, so the intervals agree
    assert_allclose(pred.mean_ci_lower, frame["mean_ci_lower"], rtol=RTOL)
    assert_allclose(pred.mean_ci_upper, frame["mean_ci_upper"], rtol=RTOL)
    assert_allclose(pred.se_linear, ref.get_prediction(newX).linpred.se_mean, rtol=RTOL)


def test_gamma_against_statsmodels(r_outputs):
    case = r_inference()["cases"]["cancer_gamma_inverse"]
    X, y, _, _, newX, _ = arrays(case)
    family = sm.families.Gamma(link=sm.families.links.InversePower())
    with warnings.catch_warnings():
        # the inverse link "does not respect the domain"; its IRLS start divides by zero
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, X, family=family).fit(tol=1e-13, maxiter=200)
        frame = ref.get_prediction(newX).summary_frame(alpha=0.05)
        linpred = ref.get_prediction(newX).linpred
    _, pred = r_outputs["cancer_gamma_inverse"]
    assert_allclose(pred.mean, frame["mean"], rtol=RTOL)
    assert_allclose(pred.se_mean, frame["mean_se"], rtol=RTOL)
    # statsmodels' interval uses the normal quantile also for an estimated dispersion; glmjax
    # uses t on df_resid (as its conf_int and summary's t values, and R's confint): its ends are
    # statsmodels' linear predictor -/+ t's quantile times its standard error, mapped by 1 / eta
    q = st.t.ppf(0.975, ref.df_resid)
    eta, se = linpred.predicted_mean, linpred.se_mean
    ends = 1 / (eta - q * se), 1 / (eta + q * se)
    assert_allclose(pred.mean_ci_lower, np.minimum(*ends), rtol=RTOL)
    assert_allclose(pred.mean_ci_upper, np.maximum(*ends), rtol=RTOL)
    # so the t interval is wider than statsmodels' normal one
    assert np.all(pred.mean_ci_lower < frame["mean_ci_lower"])
    assert np.all(pred.mean_ci_upper > frame["mean_ci_upper"])


# ----- real fits: Categorical(3) under jax.vmap -------------------------------------------------


@pytest.fixture(scope="module")
def categorical():
    """`fit_glm` under ``jax.vmap`` over three label draws for one design (60 rows, p = 3)."""
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(60), rng.normal(size=(60, 2))])
    B = np.array([[0.3, -0.2], [1.0, 0.5], [-0.5, 0.8]])
    P = sp.softmax(np.column_stack([X @ B, np.zeros(60)]), axis=1)
    ys = np.array([[rng.choice(3, p=p) for p in P] for _ in range(3)], float)
    fits = jax.vmap(lambda v: gj.fit_glm(X, v, gj.Categorical(3), tol=1e-12))(ys)
    assert np.all(fits.converged)
    return fits, X, ys


def member(fits, i):
    return jax.tree.map(lambda a: a[i], fits)


def test_categorical_delta_method(categorical):
    fits, X, _ = categorical
    fit = member(fits, 0)
    newX = X[:5] + 0.25
    pred = fit.get_prediction(newX)
    coef, cov = np.asarray(fit.coef), np.asarray(fit.cov)
    p, m = coef.shape

    def probabilities(c):
        return sp.softmax(np.column_stack([newX @ c.reshape(p, m), np.zeros(5)]), axis=1)

    # the Jacobian of the probabilities in coef.ravel() by central differences (error ~h^2)
    h = 1e-6
    J = np.stack([(probabilities(coef.ravel() + s) - probabilities(coef.ravel() - s)) / (2 * h)
                  for s in np.eye(p * m) * h], axis=-1)  # fmt: skip
    se = np.sqrt(np.einsum("ikq,qr,ikr->ik", J, cov, J))
    P = probabilities(coef.ravel())
    assert pred.mean.shape == pred.se_mean.shape == (5, 3)
    assert_allclose(pred.mean, P, rtol=1e-12)
    assert_allclose(pred.se_mean, se, rtol=RTOL)
    # the linear predictor, (n, m), and its covariance (I (x) x_i)^T cov (I (x) x_i)
    assert_allclose(pred.linear, newX @ coef, rtol=1e-12)
    rows = np.einsum("ij,rs->irjs", newX, np.eye(m)).reshape(5, m, p * m)
    se_linear = np.sqrt(np.einsum("irq,qs,irs->ir", rows, cov, rows))
    assert_allclose(pred.se_linear, se_linear, rtol=1e-10)
    # the interval: logit(p) -/+ z se / (p (1 - p)), through the sigmoid
    half = st.norm.ppf(0.975) * se / (P * (1 - P))
    assert_allclose(pred.mean_ci_lower, sp.expit(sp.logit(P) - half), rtol=RTOL)
    assert_allclose(pred.mean_ci_upper, sp.expit(sp.logit(P) + half), rtol=RTOL)
    assert np.all((0 < pred.mean_ci_lower) & (pred.mean_ci_lower < P))
    assert np.all((P < pred.mean_ci_upper) & (pred.mean_ci_upper < 1))


def test_categorical_residuals(categorical):
    fits, X, ys = categorical
    fit = member(fits, 0)
    r = fit.residuals(X, ys[0], kind="response")
    onehot = np.eye(3)[ys[0].astype(int)]
    P = sp.softmax(np.column_stack([X @ np.asarray(fit.coef), np.zeros(60)]), axis=1)
    assert r.shape == (60, 2)  # minimal=True: the k - 1 classes of T(y)
    assert_allclose(r, (onehot - P)[:, :2], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="`kind` must be 'response'"):
        fit.residuals(X, ys[0], kind="deviance")


def test_vmap_matches_members(categorical):
    fits, X, ys = categorical
    newX = X[:5] + 0.25
    batched = jax.vmap(lambda f: f.get_prediction(newX, alpha=0.1))(fits)
    residuals = jax.vmap(lambda f, v: f.residuals(X, v, kind="response"))(fits, ys)
    assert batched.mean.shape == (3, 5, 3)
    for i in range(3):
        fit = member(fits, i)
        one = fit.get_prediction(newX, alpha=0.1)
        for name in ("mean", "se_mean", "mean_ci_lower", "mean_ci_upper", "linear", "se_linear"):
            assert_allclose(getattr(batched, name)[i], getattr(one, name), rtol=1e-12)
        assert_allclose(residuals[i], fit.residuals(X, ys[i], kind="response"), rtol=1e-12)
    # the members differ (different labels): the batch axis is real
    assert not np.allclose(batched.mean[0], batched.mean[1])


# ----- float32 and bad input --------------------------------------------------------------------


def test_float32():
    # R's optimum rounded to float32: the residuals and predictions keep the dtype and agree with
    # R to 1e-4 (float32's eps is 1.2e-7; a deviance residual is the root of a difference)
    with jax.enable_x64(False):
        case = r_inference()["cases"]["insectsprays_poisson_log_wo"]
        fit = at_r_optimum(case, np.float32)
        X, y, w, o, newX, new_o = arrays(case, np.float32)
        pred = fit.get_prediction(newX, new_o)
        R = case["predict"]
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(pred))
        for name, ref in (("mean", "response"), ("se_mean", "response_se"), ("linear", "link"),
                          ("se_linear", "link_se")):  # fmt: skip
            assert_allclose(getattr(pred, name), R[ref], rtol=1e-4)
        for kind in KINDS:
            r = fit.residuals(X, y, kind=kind, weights=w, offset=o)
            assert r.dtype == jnp.float32
            # a deviance residual is the root of a difference of terms ~ y log y: near 0 it
            # keeps only about half of float32's digits
            atol = 1e-3 if kind == "deviance" else 1e-5
            assert_allclose(r, case["residuals"][kind], rtol=1e-4, atol=atol)


def test_bad_input():
    case = r_inference()["cases"]["insectsprays_poisson_log_wo"]
    fit = at_r_optimum(case)
    X, y, w, o, newX, new_o = arrays(case)
    with pytest.raises(ValueError, match="`X` must have shape"):
        fit.get_prediction(newX[:, :-1])
    with pytest.raises(ValueError, match="`X` must have shape"):
        fit.residuals(X[:, :-1], y)
    with pytest.raises(ValueError, match="`offset` must have shape"):
        fit.get_prediction(newX, new_o[:-1])
    with pytest.raises(ValueError, match="`offset` must have shape"):
        fit.residuals(X, y, offset=o[:-1])
    with pytest.raises(ValueError, match="`y` must have shape"):
        fit.residuals(X, y[:-1])
    with pytest.raises(ValueError, match="`weights` must have shape"):
        fit.residuals(X, y, weights=w[1:])
    with pytest.raises(ValueError, match="`kind` must be one of"):
        fit.residuals(X, y, kind="studentized")
    for alpha in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="`alpha` must be a number in"):
            fit.get_prediction(newX, new_o, alpha=alpha)
    bare = dataclasses.replace(fit, cov=None, stderr=None, zvalues=None, pvalues=None)
    with pytest.raises(ValueError, match="covariance=True"):
        bare.get_prediction(newX, new_o)
