"""`fit_glm` against outside references on real data sets that ship with statsmodels/scikit-learn.

The bar is R's ``glm`` (and Stata / R ``nnet`` for the multinomial logit): statsmodels keeps their
printed outputs in its own test-results modules, which are imported here and compared directly:

- ``statsmodels/genmod/tests/results/results_glm.py``: ``Star98`` (R, binomial with
  ``weights = trials``), ``Scotvote`` (R, Gamma, inverse link), ``Cpunish`` (R, poisson),
  ``Longley`` (R and Stata, gaussian);
- ``statsmodels/discrete/tests/results/results_discrete.py``: ``Anes.mnlogit_basezero`` (Stata 11,
  "checked vs R nnet"), ``Spector.logit`` (Stata 11).

Those numbers are printed to 7-10 significant digits, so they are compared to ``1e-6`` relative
(``2e-6`` where only 6-7 digits were printed: noted at the number). The same fits are compared with
statsmodels' own fits (``GLM`` with ``var_weights``, ``MNLogit``, ``Logit``), run here to a tight
tolerance, to ``1e-6`` relative as well. Gamma: R's inverse link is ``1/mu = -eta``, so R's
coefficients are minus ours. Categorical: the reference category is class 0 in Stata/statsmodels
and the last class here, so labels are rotated by one.
"""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from statsmodels.discrete.tests.results.results_discrete import Anes, Spector
from statsmodels.genmod.tests.results.results_glm import Cpunish, Longley, Scotvote, Star98

import glmjax as gj

RTOL = 1e-6


def _sm_glm(y, X, family, **kwargs):
    # IRLS to a tight tolerance, so statsmodels' own convergence does not limit the comparison
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gamma's inverse link "does not respect the domain"
        return sm.GLM(y, X, family=family, **kwargs).fit(tol=1e-13, maxiter=200)


def _check_against_statsmodels(res, ref, sign=1.0):
    assert bool(res.converged)
    assert_allclose(sign * np.asarray(res.coef), ref.params, rtol=RTOL)
    assert_allclose(res.stderr, ref.bse, rtol=RTOL)
    assert_allclose(res.cov, ref.cov_params(), rtol=RTOL, atol=1e-12 * np.max(ref.bse) ** 2)
    assert_allclose(res.deviance, ref.deviance, rtol=RTOL)
    assert_allclose(res.null_deviance, ref.null_deviance, rtol=RTOL)
    assert_allclose(res.scale, ref.scale, rtol=RTOL)
    assert float(res.df_resid) == ref.df_resid


# ----- binomial: star98 (R: glm(cbind(s, f) ~ ., binomial)) -------------------------------------


@pytest.fixture(scope="module")
def star98():
    data = sm.datasets.star98.load_pandas()
    counts = data.endog.to_numpy(float)
    trials = counts.sum(axis=1)
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = counts[:, 0] / trials
    res = gj.fit_glm(X, y, gj.Binomial(), weights=trials)
    ref = _sm_glm(y, X, sm.families.Binomial(), var_weights=trials)
    return res, ref


def test_star98_binomial_against_R(star98):
    res, _ = star98
    R = Star98()
    assert_allclose(res.coef, R.params, rtol=RTOL)
    assert_allclose(res.stderr, R.bse, rtol=RTOL)
    assert_allclose(res.deviance, R.deviance, rtol=RTOL)
    assert_allclose(res.null_deviance, R.null_deviance, rtol=RTOL)
    assert_allclose(res.aic, R.aic_R, rtol=RTOL)
    assert_allclose(res.loglik, R.llf, rtol=RTOL)  # "from R"
    assert (float(res.df_resid), float(res.df_null)) == (R.df_resid, R.df_null)
    assert float(res.scale) == 1.0


def test_star98_binomial_against_statsmodels(star98):
    res, ref = star98
    _check_against_statsmodels(res, ref)
    # statsmodels' llf with var_weights is not a binomial likelihood; R's is the sum of
    # log dbinom(k_i; n_i, mu_i): recompute it independently with scipy
    from scipy.stats import binom

    counts = sm.datasets.star98.load_pandas().endog.to_numpy(float)
    n = counts.sum(axis=1)
    assert_allclose(res.loglik, binom.logpmf(counts[:, 0], n, ref.mu).sum(), rtol=RTOL)


# ----- Gamma: Scottish vote (R: glm(y ~ ., Gamma)) ----------------------------------------------


@pytest.fixture(scope="module")
def scotland():
    data = sm.datasets.scotland.load_pandas()
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = data.endog.to_numpy(float)
    return gj.fit_glm(X, y, gj.Gamma()), _sm_glm(y, X, sm.families.Gamma())


def test_scotland_gamma_against_R(scotland):
    res, _ = scotland
    R = Scotvote()
    # R's coefficients (inverse link 1/mu) are minus ours; printed to 7 digits
    assert_allclose(-np.asarray(res.coef), R.params, rtol=2e-6)
    assert_allclose(res.stderr, R.bse, rtol=2e-6)
    assert_allclose(res.deviance, R.deviance, rtol=RTOL)
    assert_allclose(res.null_deviance, R.null_deviance, rtol=2e-6)  # 6 digits printed
    assert_allclose(res.scale, R.scale, rtol=2e-6)
    assert_allclose(res.aic, R.aic_R, rtol=RTOL)  # R counts the dispersion: rank + 1
    assert (float(res.df_resid), float(res.df_null)) == (R.df_resid, R.df_null)
    # t statistics, p-values from t(df_resid) as R's summary.glm
    from scipy.stats import t

    z = np.divide(R.params, R.bse)
    assert_allclose(res.pvalues, 2 * t.sf(np.abs(z), R.df_resid), rtol=1e-4)


def test_scotland_gamma_against_statsmodels(scotland):
    res, ref = scotland
    _check_against_statsmodels(res, ref, sign=-1.0)
    assert_allclose(res.predict(ref.model.exog), ref.mu, rtol=RTOL)


# ----- Poisson: capital punishment (R: glm(y ~ ., poisson)) -------------------------------------


def _cpunish():
    data = sm.datasets.cpunish.load_pandas()
    X = data.exog.to_numpy(float).copy()
    X[:, 3] = np.log(X[:, 3])
    return sm.add_constant(X, prepend=False), data.endog.to_numpy(float)


@pytest.fixture(scope="module")
def cpunish():
    X, y = _cpunish()
    return gj.fit_glm(X, y, gj.Poisson()), _sm_glm(y, X, sm.families.Poisson())


def test_cpunish_poisson_against_R(cpunish):
    res, _ = cpunish
    R = Cpunish()
    assert_allclose(res.coef, R.params, rtol=2e-6)  # 7 digits printed
    # R's printed standard errors are those at its last IRLS iterate (glm stops when the deviance
    # changes by < 1e-8 relative), ~1e-5 from the converged values statsmodels and we agree on
    assert_allclose(res.stderr, R.bse, rtol=1e-5)
    assert_allclose(res.deviance, R.deviance, rtol=RTOL)
    assert_allclose(res.null_deviance, R.null_deviance, rtol=RTOL)
    assert_allclose(res.aic, R.aic_R, rtol=RTOL)
    assert_allclose(res.loglik, R.llf, rtol=RTOL)
    assert_allclose(res.predict(_cpunish()[0]), R.fittedvalues, rtol=2e-6)


def test_cpunish_poisson_against_statsmodels(cpunish):
    res, ref = cpunish
    _check_against_statsmodels(res, ref)
    assert_allclose(res.loglik, ref.llf, rtol=RTOL)
    assert_allclose(res.pvalues, ref.pvalues, rtol=1e-5)


def test_cpunish_poisson_offset_and_weights_against_statsmodels():
    """An offset (the null model is refitted with it, as R) and prior weights (R's poisson weights
    are frequency weights: checked against the data set with rows repeated)."""
    X, y = _cpunish()
    offset = np.linspace(-0.5, 0.5, len(y))
    res = gj.fit_glm(X, y, gj.Poisson(), offset=offset)
    _check_against_statsmodels(res, _sm_glm(y, X, sm.families.Poisson(), offset=offset))

    counts = np.arange(len(y)) % 3 + 1
    weighted = gj.fit_glm(X, y, gj.Poisson(), weights=counts)
    _check_against_statsmodels(weighted, _sm_glm(y, X, sm.families.Poisson(), var_weights=counts))
    freq = _sm_glm(y, X, sm.families.Poisson(), freq_weights=counts)
    assert_allclose(weighted.stderr, freq.bse, rtol=RTOL)
    assert_allclose(weighted.loglik, freq.llf, rtol=RTOL)
    assert_allclose(weighted.aic, freq.aic, rtol=RTOL)


# ----- Gaussian: Longley (R: glm(y ~ ., gaussian)) ----------------------------------------------


@pytest.fixture(scope="module")
def longley():
    data = sm.datasets.longley.load_pandas()
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = data.endog.to_numpy(float)
    return gj.fit_glm(X, y, gj.Gaussian()), _sm_glm(y, X, sm.families.Gaussian())


def test_longley_gaussian_against_R(longley):
    res, _ = longley
    R = Longley()
    assert_allclose(res.coef, R.params, rtol=RTOL)
    assert_allclose(res.stderr, R.bse, rtol=RTOL)
    assert_allclose(res.deviance, R.deviance, rtol=RTOL)
    assert_allclose(res.null_deviance, R.null_deviance, rtol=RTOL)  # printed as an integer
    assert_allclose(res.scale, R.scale, rtol=RTOL)
    assert_allclose(res.aic, R.aic_R, rtol=RTOL)
    assert_allclose(res.loglik, R.llf, rtol=RTOL)


def test_longley_gaussian_against_statsmodels(longley):
    res, ref = longley
    _check_against_statsmodels(res, ref)
    assert_allclose(res.loglik, ref.llf, rtol=RTOL)


def test_gaussian_var_weights_against_statsmodels():
    """Gaussian prior weights are inverse-variance weights; R's loglik adds (1/2) sum log w.
    (Longley with standardised columns: the same shapes as above, so no new compilation.)"""
    data = sm.datasets.longley.load_pandas()
    X = data.exog.to_numpy(float)
    X = sm.add_constant((X - X.mean(0)) / X.std(0), prepend=False)
    y = data.endog.to_numpy(float)
    w = 1.0 + np.arange(len(y)) % 4
    res = gj.fit_glm(X, y, gj.Gaussian(), weights=w)
    ref = _sm_glm(y, X, sm.families.Gaussian(), var_weights=w)
    _check_against_statsmodels(res, ref)
    assert_allclose(res.loglik, ref.llf, rtol=RTOL)
    # statsmodels' aic leaves out the dispersion parameter that R (and we) count
    assert_allclose(res.aic, ref.aic + 2, rtol=RTOL)


# ----- Categorical: ANES 1996 (Stata mlogit / R nnet::multinom) ---------------------------------


@pytest.fixture(scope="module")
def anes():
    data = sm.datasets.anes96.load_pandas()
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = data.endog.to_numpy().astype(int)
    res = gj.fit_glm(X, (y - 1) % 7, gj.Categorical(7))  # class 0 becomes the reference (last)
    ref = sm.MNLogit(y, X).fit(method="newton", tol=1e-14, maxiter=100, disp=0)
    return res, ref, X


def test_anes_multinomial_against_stata_and_R(anes):
    res, _, _ = anes
    ref = Anes.mnlogit_basezero
    assert_allclose(res.coef, ref.params, rtol=2e-6)  # 8 significant digits printed
    assert_allclose(res.stderr, ref.bse, rtol=RTOL)
    assert_allclose(res.loglik, ref.llf, rtol=RTOL)
    # the saturated multinomial log-likelihood is 0: deviance = -2 loglik, null deviance = -2 llnull
    assert_allclose(res.deviance, -2 * ref.llf, rtol=RTOL)
    assert_allclose(res.null_deviance, -2 * ref.llnull, rtol=RTOL)
    assert float(res.df_resid) == ref.df_resid


def test_anes_multinomial_against_statsmodels(anes):
    res, ref, X = anes
    assert_allclose(res.coef, ref.params, rtol=RTOL)
    assert_allclose(res.stderr, ref.bse, rtol=RTOL)
    # statsmodels orders its covariance class-major; ours is row-major over (p, k - 1)
    p, m = ref.params.shape
    cov_sm = (
        ref.cov_params().to_numpy() if hasattr(ref.cov_params(), "to_numpy") else ref.cov_params()
    )
    cov_ours = np.asarray(res.cov).reshape(p, m, p, m).transpose(1, 0, 3, 2).reshape(p * m, p * m)
    assert_allclose(cov_ours, cov_sm, rtol=RTOL, atol=1e-12 * np.max(cov_sm))
    assert_allclose(res.loglik, ref.llf, rtol=RTOL)
    assert_allclose(res.aic, ref.aic, rtol=RTOL)
    assert_allclose(res.bic, ref.bic, rtol=RTOL)
    assert_allclose(res.pvalues, ref.pvalues, rtol=1e-5, atol=1e-300)
    probs = np.asarray(res.predict(X))
    assert_allclose(np.roll(probs, 1, axis=1), ref.predict(X), rtol=1e-6, atol=1e-12)


# ----- Bernoulli: Spector (Stata logit) ---------------------------------------------------------


def test_spector_logit_against_stata_and_statsmodels():
    data = sm.datasets.spector.load_pandas()
    X = sm.add_constant(data.exog.to_numpy(float), prepend=False)
    y = data.endog.to_numpy(float)
    res = gj.fit_glm(X, y, gj.Bernoulli())
    stata = Spector.logit
    assert_allclose(res.coef, stata.params, rtol=RTOL)
    assert_allclose(res.cov, stata.cov_params, rtol=RTOL)
    assert_allclose(res.zvalues, stata.z, rtol=RTOL)
    assert_allclose(res.pvalues, stata.pvalues, rtol=1e-6)
    assert_allclose(res.loglik, stata.llf, rtol=RTOL)
    assert_allclose(res.null_deviance, -2 * stata.llnull, rtol=RTOL)
    assert_allclose((res.aic, res.bic), (stata.aic, stata.bic), rtol=RTOL)
    ref = sm.Logit(y, X).fit(method="newton", tol=1e-14, disp=0)
    assert_allclose(res.coef, ref.params, rtol=RTOL)
    assert_allclose(res.stderr, ref.bse, rtol=RTOL)
    assert_allclose(res.predict(X), ref.predict(X), rtol=RTOL)


# ----- scikit-learn: ridge-penalised logistic regression ----------------------------------------


def _standardised(X):
    return np.column_stack([np.ones(len(X)), (X - X.mean(0)) / X.std(0)])


def test_ridge_softmax_regression_against_sklearn_on_iris():
    """sklearn minimises ``C sum_i loss_i + |coef|^2 / 2`` (here with the intercept as a column of
    ones, so it is penalised too): the same optimum as ours with ``l2 = 1 / (C n)``. Its multinomial
    model is the over-parametrised softmax, ``Categorical(k, minimal=False)``."""
    X, y = load_iris(return_X_y=True)
    X = np.column_stack([np.ones(len(X)), (X - X.mean(0)) / X.std(0)])
    C = 0.5
    clf = LogisticRegression(C=C, fit_intercept=False, solver="newton-cholesky", tol=1e-12)
    clf.fit(X, y)
    res = gj.fit_glm(X, y, gj.Categorical(3, minimal=False), l2=1.0 / (C * len(y)), tol=1e-12)
    assert_allclose(res.coef, clf.coef_.T, rtol=1e-6, atol=1e-9)
    assert_allclose(res.predict(X), clf.predict_proba(X), atol=1e-9)
    log_proba = clf.predict_log_proba(X)[np.arange(len(y)), y]
    assert_allclose(res.loglik, np.sum(log_proba), rtol=1e-8)
