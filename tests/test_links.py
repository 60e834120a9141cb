"""Links: non-canonical fits against R's ``glm`` (fully converged: `tests/data/r_reference`), with
Newton (observed information) and Fisher scoring; a link written by a user; links with weights,
offsets, ridge, vmap, streaming and every solver; step halving back into the valid region."""

import functools
import json
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import glmjax as gj

_REFERENCE = Path(__file__).parent / "data" / "r_reference" / "reference.json"
LINKS = {
    "inverse": "inverse",
    "log": "log",
    "identity": "identity",
    "1/mu^2": "inverse_squared",
    "probit": "probit",
    "cloglog": "cloglog",
    "cauchit": "cauchit",
    "logit": "logit",
    "loglog": "loglog",
    "sqrt": "sqrt",
}


@functools.cache
def _cases() -> dict:
    return json.loads(_REFERENCE.read_text())["cases"]


def _family(case):
    name = case["family"]
    if name == "negative.binomial":
        return gj.NegativeBinomial(case["theta"])
    return {
        "Gamma": gj.Gamma(),
        "inverse.gaussian": gj.InverseGaussian(),
        "gaussian": gj.Gaussian(),
        "binomial": gj.Binomial(),
        "poisson": gj.Poisson(),
    }[name]


def _fit(name, method):
    case = _cases()[name]
    offset = None if case["offset"] is None else np.asarray(case["offset"])
    return gj.fit_glm(
        np.asarray(case["X"]),
        np.asarray(case["y"]),
        _family(case),
        link=LINKS[case["link"]],
        method=method,
        weights=np.asarray(case["weights"]),
        offset=offset,
        tol=1e-11,
        max_iter=500,
    ), case


# R's numbers are printed with 17 digits from fits polished to R's own rounding floor; ours
# converge to tol = 1e-11. They agree to ~1e-9 (see the measurements in the module below); the
# issue's bar is 1e-6 relative, and that is what is asserted.
RTOL = 1e-6


# R fits by Fisher scoring; Newton (observed information) reaches the same optimum by other
# iterates. Every case is fitted by Newton, and Fisher scoring runs on one case with a
# non-canonical link per data set (test_solvers checks that it reaches Newton's optimum on every
# family x link of helpers.CASES; each fit here compiles anew for its data set's shape).
_ALL = sorted(_cases())
_IRLS = [
    "cancer_gamma_log", "insectsprays_poisson_sqrt", "invgauss_ig_log", "lbw_binomial_cloglog",
    "longley_gaussian_log_offset", "medpar1_ig_identity", "quine_negbin_thetahat",
    "scotland_gamma_log_weights", "spector_binomial_probit", "star98_binomial_cloglog",
    "warpbreaks_poisson_sqrt_weights",
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method"), [(n, "newton") for n in _ALL] + [(n, "irls") for n in _IRLS]
)
def test_fit_matches_r(name, method):
    fit, case = _fit(name, method)
    assert int(fit.result) == gj.ResultCode.successful, fit.message
    np.testing.assert_allclose(fit.coef, case["coefficients"], rtol=RTOL)
    # R's summary estimates a dispersion for negative.binomial(theta); its likelihood (and ours,
    # and MASS's own summary) has dispersion 1
    stderr = case.get("stderr_dispersion1", case["stderr"])
    np.testing.assert_allclose(fit.stderr, stderr, rtol=RTOL)
    if case["family"] != "negative.binomial":
        np.testing.assert_allclose(fit.scale, case["dispersion"], rtol=RTOL)
    for ours, theirs in [("deviance", "deviance"), ("null_deviance", "null_deviance"),
                         ("aic", "aic"), ("loglik", "loglik")]:  # fmt: skip
        np.testing.assert_allclose(getattr(fit, ours), case[theirs], rtol=RTOL, err_msg=ours)
    assert float(fit.df_resid) == case["df_residual"]
    assert float(fit.df_null) == case["df_null"]
    offset = None if case["offset"] is None else np.asarray(case["offset"])
    np.testing.assert_allclose(fit.predict(np.asarray(case["X"]), offset), case["fitted"],
                               rtol=RTOL)  # fmt: skip


def test_rs_default_stop_is_far_from_the_optimum_that_we_match():
    """R's default ``glm.control(epsilon = 1e-8)`` stops on the relative change of the deviance,
    which is quadratic in the coefficients' error: a linearly converging (Fisher scoring)
    non-canonical fit stops up to ~1e-3 (relative) short of the optimum. Numbers stored from such
    fits cannot be matched to 1e-6; the reference here is the converged fit (R's own iterations
    continued to its rounding floor), which we match far more closely."""
    case = _cases()["lbw_binomial_cauchit"]
    converged = np.asarray(case["coefficients"])
    default = np.asarray(case["default_control"]["coefficients"])
    assert np.max(np.abs(default / converged - 1)) > 1e-4
    fit, _ = _fit("lbw_binomial_cauchit", "newton")
    np.testing.assert_allclose(fit.coef, converged, rtol=1e-8)


def test_newton_and_fisher_scoring_take_different_paths_to_the_probit_optimum():
    newton, case = _fit("spector_binomial_probit", "newton")
    irls, _ = _fit("spector_binomial_probit", "irls")
    np.testing.assert_allclose(newton.coef, irls.coef, rtol=1e-9)
    assert np.max(np.abs(np.asarray(newton.history[1:3]) - np.asarray(irls.history[1:3]))) > 1e-8


def test_user_link_written_as_its_mean_function_reproduces_probit():
    class NormCdf(gj.Link):
        def inverse(self, eta):
            return jax.scipy.stats.norm.cdf(eta)

    link = NormCdf()
    mu = jnp.array([1e-6, 0.025, 0.5, 0.975, 0.999])
    np.testing.assert_allclose(link(mu), scipy.stats.norm.ppf(mu), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(link.derivative(jnp.array([0.0, 1.0])),
                               scipy.stats.norm.pdf([0.0, 1.0]), rtol=1e-14)  # fmt: skip
    case = _cases()["spector_binomial_probit"]
    X, y = np.asarray(case["X"]), np.asarray(case["y"])
    ours = gj.fit_glm(X, y, gj.Bernoulli(), link=link, tol=1e-11)
    named = gj.fit_glm(X, y, gj.Bernoulli(), link="probit", tol=1e-11)
    np.testing.assert_allclose(ours.coef, named.coef, rtol=1e-10)
    np.testing.assert_allclose(ours.stderr, named.stderr, rtol=1e-9)
    np.testing.assert_allclose(ours.coef, case["coefficients"], rtol=RTOL)
    assert isinstance(ours.link, NormCdf)


def _probit_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    offset = 0.2 * rng.normal(size=n)
    y = (X @ np.array([0.2, 0.7, -0.4]) + offset + rng.normal(size=n) > 0).astype(float)
    weights = rng.integers(1, 4, n).astype(float)
    return X, y, offset, weights


@pytest.mark.parametrize("method", ["newton", "irls", "newton-cg", "lbfgs", "gd"])
def test_probit_with_weights_offset_and_ridge_agrees_across_solvers(method):
    """Weights, an offset and a ridge: every solver reaches the Newton optimum; the ridge's
    optimum has zero penalised gradient (jax.grad of the objective written out here)."""
    X, y, offset, weights = _probit_data()
    l2 = np.array([0.0, 0.01, 0.01])
    kwargs = dict(link="probit", weights=weights, offset=offset, l2=l2, max_iter=20_000)
    ref = gj.fit_glm(X, y, gj.Bernoulli(), tol=1e-12, **kwargs)
    # gradient descent crawls on this problem: a looser tolerance, and its coefficients then
    # within ~tol / (smallest Hessian eigenvalue) of the optimum
    tol, atol = (1e-7, 1e-4) if method == "gd" else (1e-9, 1e-6)
    fit = gj.fit_glm(X, y, gj.Bernoulli(), method=method, tol=tol, **kwargs)
    assert int(fit.result) == gj.ResultCode.successful
    np.testing.assert_allclose(fit.coef, ref.coef, atol=atol)

    def penalised(coef):
        mu = jax.scipy.stats.norm.cdf(X @ coef + offset)
        ll = weights * (y * jnp.log(mu) + (1 - y) * jnp.log1p(-mu))
        return -jnp.mean(ll) + 0.5 * jnp.sum(l2 * coef**2)

    assert np.max(np.abs(jax.grad(penalised)(ref.coef))) < 1e-10


def test_links_under_vmap_equal_single_fits():
    X, y, offset, weights = _probit_data(200)
    ys = np.stack([y, 1 - y, np.roll(y, 7)])
    fits = jax.vmap(lambda v: gj.fit_glm(X, v, gj.Bernoulli(), link="cloglog"))(ys)
    for i in range(3):
        single = gj.fit_glm(X, ys[i], gj.Bernoulli(), link="cloglog")
        np.testing.assert_allclose(fits.coef[i], single.coef, rtol=1e-10)
        np.testing.assert_allclose(fits.stderr[i], single.stderr, rtol=1e-9)
        np.testing.assert_allclose(fits.deviance[i], single.deviance, rtol=1e-10)


def test_log_link_binomial_steps_back_into_the_valid_region():
    """A log-link Binomial (risk ratios): a full step would put some mu above 1; the line search
    halves it back (R's step halving), and the fit converges to an interior optimum."""
    rng = np.random.default_rng(4)
    n = 500
    X = np.c_[np.ones(n), rng.uniform(0, 1, n)]
    y = rng.binomial(1, np.exp(-1.6 + 1.2 * X[:, 1])).astype(float)
    fit = gj.fit_glm(X, y, gj.Binomial(), link="log", tol=1e-10)
    assert int(fit.result) == gj.ResultCode.successful
    mu = np.asarray(fit.predict(X))
    assert np.all((mu > 0) & (mu < 1))
    history = np.asarray(fit.history)[: int(fit.n_iter) + 1]
    assert np.all(np.isfinite(history)) and np.all(np.diff(history) <= 1e-15)
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import DomainWarning

    with warnings.catch_warnings():  # statsmodels warns that a log link can leave (0, 1)
        warnings.simplefilter("ignore", DomainWarning)
        ref = sm.GLM(y, X, family=sm.families.Binomial(sm.families.links.Log())).fit(tol=1e-13)
    np.testing.assert_allclose(fit.coef, ref.params, rtol=1e-7)


def test_identity_poisson_with_an_infeasible_start_is_reported():
    """An identity-link Poisson whose start has negative means (mu < 0 for some rows): the result
    says so (no NaN passed off as a fit) and suggests a start or another link."""
    X = np.c_[np.ones(6), np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])]
    y = np.array([1.0, 1, 2, 4, 5, 7])
    with pytest.warns(gj.ConvergenceWarning, match="start"):
        fit = gj.fit_glm(X, y, gj.Poisson(), link="identity", start=np.array([0.5, 1.0]))
    assert int(fit.result) == gj.ResultCode.nonfinite
    assert np.isnan(float(fit.loglik)) and np.all(np.isnan(np.asarray(fit.stderr)))
    good = gj.fit_glm(X, y, gj.Poisson(), link="identity", start=np.array([2.0, 0.5]))
    assert int(good.result) == gj.ResultCode.successful
    assert np.all(np.asarray(good.predict(X)) > 0)


def test_bad_links_are_value_errors():
    X, y = np.c_[np.ones(4), np.arange(4.0)], np.array([0.0, 1, 1, 2])
    with pytest.raises(ValueError, match="`link`"):
        gj.fit_glm(X, y, gj.Poisson(), link="logarithm")
    with pytest.raises(ValueError, match="`link`"):
        gj.fit_glm(X, y, gj.Poisson(), link=np.log)
    with pytest.raises(ValueError, match="only its canonical link"):
        gj.fit_glm(X, y, gj.Categorical(3), link="log")
    with pytest.raises(ValueError, match="`p`"):
        gj.links.Power("half")


def test_canonical_names_take_the_canonical_path():
    """``link="logit"`` for a Bernoulli is its canonical link: the same fit as ``link=None``
    (and no loss of accuracy far out, where sigmoid(eta) rounds to 1)."""
    X, y, _, _ = _probit_data(100)
    by_name = gj.fit_glm(X, y, gj.Bernoulli(), link="logit")
    default = gj.fit_glm(X, y, gj.Bernoulli())
    np.testing.assert_array_equal(by_name.coef, default.coef)
    assert isinstance(default.link, gj.links.Canonical)
    assert isinstance(by_name.link, gj.links.Logit)
    np.testing.assert_allclose(default.link.inverse(jnp.array([0.0])), [0.5])
