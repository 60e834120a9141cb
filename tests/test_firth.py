"""Firth's penalised GLM (`glmjax._firth`) against R's brglm2, an independent scipy fit, numpy
closed forms and finite differences.

Every logistic case shares one compiled fit: each is embedded in a ``(189, 9)`` problem (lbw's
shape) whose spare columns have ten rows of their own each (weight 1, five with ``y = 1``, five
with ``y = 0``) and whose spare rows have weight 0. The information is then block diagonal and
the likelihood separates, so the real coefficients and their standard errors are those of the
case itself, and each spare coefficient is 0 (its block's modified score
``sum (y - mu) + (1/2 - mu) sum h`` with ``sum h = 1`` vanishes at ``mu = 1/2``).
"""

import json
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special

import glmjax as gj
from glmjax import links
from glmjax._firth import FirthObjective, check_firth, firth_covariance
from glmjax._iterate import minimise
from glmjax._objective import GLMObjective, RowLikelihood
from glmjax._solution import ResultCode
from glmjax._solver import IRLS, Needs
from glmjax._start import mean_statistic, start_coef

REFERENCE = pathlib.Path(__file__).parent / "data" / "r_inference" / "reference.json"
LOGISTIC = ("endometrial_logit", "lbw_logit", "separated_logit")
ROWS, COLS, SPARE_ROWS = 189, 9, 10
RTOL_R = 1e-6  # brglm2 stops at epsilon = 1e-12; the fits below at tol = 1e-10


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())["firth"]


def _problem(family, link, X, y, weights, offset, chunk_size=None):
    link, canonical = links.get(link, family)
    model = RowLikelihood(family, link, canonical)
    glm = GLMObjective.from_data(model, X, y, weights, offset, 0.0, chunk_size=chunk_size)
    return FirthObjective(glm)


@eqx.filter_jit
def _fit(problem, solver, tol):
    glm = problem.objective
    coef0 = start_coef(glm, glm.family.link(mean_statistic(glm)))
    return minimise(problem, solver, coef0, max_iter=100, tol=tol, scale=glm.column_scale())


_stderr = eqx.filter_jit(lambda problem, coef: firth_covariance(problem, coef)[1])


def _embed(case, weights=None, offset=None, dtype=np.float64):
    """A logistic case in the shared ``(ROWS, COLS)`` problem (module docstring)."""
    X, y = np.asarray(case["X"], float), np.asarray(case["y"], float)
    n, p = X.shape
    spare = COLS - p
    Xe, ye, we, oe = np.zeros((ROWS, COLS)), np.zeros(ROWS), np.zeros(ROWS), np.zeros(ROWS)
    Xe[:n, :p], ye[:n] = X, y
    we[:n] = case["weights"] if weights is None else weights
    oe[:n] = 0.0 if offset is None else offset
    rows = n + np.arange(spare * SPARE_ROWS)
    Xe[rows, p + np.arange(spare).repeat(SPARE_ROWS)] = 1.0
    ye[rows], we[rows] = np.arange(rows.size) % 2, 1.0
    return (jnp.asarray(a, dtype) for a in (Xe, ye, we, oe))


def _fit_logistic(case, weights=None, offset=None, dtype=np.float64, tol=1e-10):
    """``(problem, all coefficients, the case's coefficients)`` of an embedded logistic case,
    checked converged with the spare coefficients at 0."""
    X, y, w, o = _embed(case, weights, offset, dtype)
    problem = _problem(gj.Bernoulli(), None, X, y, w, o)
    solution = _fit(problem, IRLS(), jnp.asarray(tol, dtype))
    p = np.shape(case["X"])[1]
    coef = np.asarray(solution.coef, np.float64)
    assert int(solution.result) == ResultCode.successful
    np.testing.assert_allclose(coef[p:], 0.0, atol=1e-8 if dtype == np.float64 else 1e-4)
    return problem, solution.coef, coef[:p]


@pytest.fixture(scope="module")
def logistic_fits(reference):
    """Each case's coefficients and standard errors."""
    fits = {}
    for name in LOGISTIC:
        problem, full, coef = _fit_logistic(reference[name])
        fits[name] = coef, np.asarray(_stderr(problem, full))[: coef.size]
    return fits


@pytest.mark.parametrize("name", LOGISTIC)
def test_logistic_matches_brglm2(reference, logistic_fits, name):
    case = reference[name]
    coef, se = logistic_fits[name]
    # the maximum-likelihood estimate of these does not exist; Firth's is finite
    assert case["ml_separated"] == (name != "lbw_logit")
    assert np.all(np.isfinite(coef)) and np.all(np.isfinite(se))
    np.testing.assert_allclose(coef, case["coef"], rtol=RTOL_R)
    np.testing.assert_allclose(se, case["se"], rtol=RTOL_R)


def _scipy_firth_logistic(X, y, w, offset):
    """Maximise ``sum w (y eta - log(1 + e^eta)) + (1/2) log det(X^T W X)`` by BFGS, with
    logistf's modified score ``X^T (w (y - mu) + h (1/2 - mu))`` as the gradient."""

    def negative(b):
        eta = X @ b + offset
        mu = scipy.special.expit(eta)
        info = (X * (w * mu * (1 - mu))[:, None]).T @ X
        loglik = np.sum(w * (y * eta - np.logaddexp(0.0, eta)))
        h = w * mu * (1 - mu) * np.sum(X @ np.linalg.inv(info) * X, axis=1)
        score = X.T @ (w * (y - mu) + h * (0.5 - mu))
        return -(loglik + 0.5 * np.linalg.slogdet(info)[1]), -score

    out = scipy.optimize.minimize(
        negative, np.zeros(X.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-9}
    )
    # BFGS stops at rounding ("precision loss") with a gradient near 1e-7 here
    assert np.max(np.abs(out.jac)) < 1e-6, out.message
    return out.x


@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_matches_scipy(reference, logistic_fits, weighted):
    case = reference["endometrial_logit"]
    X, y = np.asarray(case["X"], float), np.asarray(case["y"], float)
    rng = np.random.default_rng(1)
    if weighted:
        w, offset = rng.integers(0, 4, X.shape[0]).astype(float), 0.3 * rng.normal(size=len(y))
        coef = _fit_logistic(case, w, offset)[2]
    else:
        w, offset = np.ones(len(y)), np.zeros(len(y))
        coef = logistic_fits["endometrial_logit"][0]
    np.testing.assert_allclose(coef, _scipy_firth_logistic(X, y, w, offset), rtol=1e-6)


def test_float32(reference):
    """The embedded logistic fits in float32 (``tol = 1e-6``): converged, within ``1e-3`` of R."""
    with jax.enable_x64(False):
        for name in LOGISTIC:
            coef = _fit_logistic(reference[name], dtype=np.float32, tol=1e-6)[2]
            np.testing.assert_allclose(coef, reference[name]["coef"], rtol=1e-3, err_msg=name)


@eqx.filter_jit
def _derivatives(problem, coef, v):
    ev = problem.evaluate(coef, Needs(hessian="expected", hess_diag=True))
    return ev, problem.value(coef), problem.hvp_at(coef)(v)


def _cloglog_data(rng, n):
    X = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    y = rng.binomial(1, -np.expm1(-np.exp(X @ [-0.3, 0.8, -0.5]))).astype(float)
    return X, y, np.array([0.2, -0.4, 0.3])


def _categorical_data(rng, n):
    X = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    y = rng.integers(0, 3, n).astype(float)
    return X, y, np.array([[0.2, -0.1], [0.5, 0.3], [-0.4, 0.2]])


def _cloglog_closed_form(X, y, w, offset, coef):
    """``(f, I)`` with ``mu = 1 - exp(-e^eta)`` and the weights ``mu'^2 / (mu (1 - mu))``."""
    eta = X @ coef + offset
    mu, dmu = -np.expm1(-np.exp(eta)), np.exp(eta - np.exp(eta))
    f = np.sum(-w * (y * np.log(mu) + (1 - y) * np.log1p(-mu))) / len(y)
    return f, (X * (w * dmu**2 / (mu * (1 - mu)))[:, None]).T @ X


def _categorical_closed_form(X, y, w, offset, coef):
    """``(f, I)`` with the softmax information ``sum w x x^T (kron) (diag p - p p^T)``."""
    eta = np.c_[X @ coef + offset, np.zeros(len(y))]
    prob = scipy.special.softmax(eta, axis=1)[:, :2]
    nll = scipy.special.logsumexp(eta, axis=1) - eta[np.arange(len(y)), y.astype(int)]
    curv = prob[:, :, None] * np.eye(2) - prob[:, :, None] * prob[:, None, :]
    info = np.einsum("i,ij,ik,irs->jrks", w, X, X, curv).reshape(6, 6)
    return np.sum(w * nll) / len(y), info


@pytest.mark.parametrize(
    "family, link, make, closed_form",
    [
        (gj.Bernoulli(), "cloglog", _cloglog_data, _cloglog_closed_form),
        (gj.Categorical(3), None, _categorical_data, _categorical_closed_form),
    ],
    ids=["cloglog", "categorical"],
)
def test_derivatives(family, link, make, closed_form):
    """A non-canonical link and a vector family, with weights (zeros among them) and an
    offset: ``f_F = f - log det(I) / (2n)`` and the Fisher information ``I / n`` against numpy,
    the gradient (the chain rule through ``I^{-1}`` and the curvature's derivative) against
    central differences of ``f_F``, Newton-CG's products against ``I / n``."""
    rng = np.random.default_rng(0)
    n = 40
    X, y, coef = make(rng, n)
    w = rng.integers(0, 3, n).astype(float)
    offset = 0.2 * rng.normal(size=coef.shape[1:] + (n,)).T
    problem = _problem(family, link, X, y, w, offset)
    v = rng.normal(size=coef.shape)
    ev, value, hvp = _derivatives(problem, jnp.asarray(coef), jnp.asarray(v))
    f, info = closed_form(X, y, w, offset, coef)
    np.testing.assert_allclose(ev.f, f - np.linalg.slogdet(info)[1] / (2 * n), rtol=1e-12)
    np.testing.assert_allclose(value, ev.f, rtol=1e-14)
    np.testing.assert_allclose(ev.hessian, info / n, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ev.hess_diag.ravel(), np.diagonal(info) / n, rtol=1e-12)
    np.testing.assert_allclose(np.ravel(hvp), info @ v.ravel() / n, rtol=1e-12)
    h, steps = 1e-5, np.eye(coef.size).reshape((-1,) + coef.shape)
    at = [_derivatives(problem, jnp.asarray(coef + s * h * e), jnp.asarray(v))[1]
          for e in steps for s in (1, -1)]  # fmt: skip
    fd = (np.asarray(at[::2]) - np.asarray(at[1::2])) / (2 * h)
    np.testing.assert_allclose(np.ravel(ev.grad), fd, rtol=1e-7, atol=1e-10)
    with pytest.raises(ValueError, match="hessian"):
        problem.evaluate(jnp.asarray(coef), Needs(hessian="full"))


@pytest.mark.parametrize("family", [gj.Gaussian(), gj.Gamma(), gj.Categorical(3, minimal=False)])
def test_check_firth_rejects(family):
    with pytest.raises(ValueError, match="firth=True"):
        check_firth(family)


def test_check_firth_accepts():
    for family in (gj.Bernoulli(), gj.Binomial(trials=3.0), gj.Poisson(), gj.Categorical(3)):
        check_firth(family)


# ----- through fit_glm ------------------------------------------------------------------------


def _arrays(case):
    return (np.asarray(case[k], float) for k in ("X", "y", "weights"))


@pytest.mark.parametrize(("name", "family", "options"), [
    ("endometrial_logit", gj.Bernoulli(), {}),
    # observed information (Fisher's for this canonical link), chunks of 16 of the 54 rows
    ("warpbreaks_poisson_log", gj.Poisson(), {"method": "newton", "chunk_size": 16}),
])  # fmt: skip
def test_fit_glm_matches_brglm2(reference, name, family, options):
    """`fit_glm(firth=True)` at its default ``tol``: coefficients, standard errors and brglm2's
    unpenalised deviance, log-likelihood and AIC, and its null deviance (Firth's intercept-only
    fit)."""
    case = reference[name]
    X, y, w = _arrays(case)
    fit = gj.fit_glm(X, y, family, weights=w, firth=True, **options)
    assert int(fit.result) == ResultCode.successful and bool(fit.converged)
    pairs = [("coef", "coef"), ("stderr", "se"), ("deviance", "deviance"),
             ("null_deviance", "null_deviance"), ("loglik", "loglik"), ("aic", "aic")]  # fmt: skip
    for field, key in pairs:
        np.testing.assert_allclose(getattr(fit, field), case[key], rtol=RTOL_R, err_msg=field)


def test_fit_glm_under_vmap_is_label_equivariant(reference):
    """Firth's estimate of ``1 - y`` is minus that of ``y`` (Jeffreys' prior is symmetric):
    ``jax.vmap`` over both labellings of the (separated) endometrial data."""
    X, y, _ = _arrays(reference["endometrial_logit"])
    fits = jax.vmap(lambda v: gj.fit_glm(X, v, gj.Bernoulli(), firth=True))(np.stack([y, 1 - y]))
    assert np.all(np.asarray(fits.result) == ResultCode.successful)
    np.testing.assert_allclose(fits.coef[1], -fits.coef[0], rtol=1e-7)
    np.testing.assert_allclose(fits.stderr[1], fits.stderr[0], rtol=1e-7)
    np.testing.assert_allclose(fits.coef[0], reference["endometrial_logit"]["coef"], rtol=RTOL_R)


def test_separation_warning_suggests_firth(reference):
    X, y, _ = _arrays(reference["endometrial_logit"])
    with pytest.warns(gj.ConvergenceWarning, match="firth=True"):
        fit = gj.fit_glm(X, y, gj.Bernoulli())
    assert int(fit.result) == ResultCode.separation


def test_fit_glm_rejects_bad_firth_options():
    X, y = np.c_[np.ones(4), np.arange(4.0)], np.array([0.0, 0, 1, 1])
    with pytest.raises(ValueError, match="`firth` must be True or False"):
        gj.fit_glm(X, y, gj.Bernoulli(), firth=1)
    with pytest.raises(ValueError, match='`hessian="full"` is not offered with firth=True'):
        gj.fit_glm(X, y, gj.Bernoulli(), firth=True, hessian="full")
    with pytest.raises(ValueError, match="`cov_type='HC0'` is not offered with firth=True"):
        gj.fit_glm(X, y, gj.Bernoulli(), firth=True, cov_type="HC0")
    with pytest.raises(ValueError, match="firth=True` is not offered for Gaussian"):
        gj.fit_glm(X, y, gj.Gaussian(), firth=True)
