"""`fit_glm` with ``Gamma(shape=None)``: the shape by maximum likelihood after the coefficients,
against R's ``MASS::gamma.shape`` (tests/data/r_inference, key ``gamma_shape``), R's
``summary(fit, dispersion = gamma.dispersion(fit))`` standard errors (R's vcov rescaled from its
Pearson dispersion to ``1 / shape``) and scipy's Gamma log-density; then ``jax.vmap``, an exact
fit and bad input. Measured: 1e-13 or better; asserted at 1e-8 (the fit's ``tol`` 1e-12)."""

import jax
import numpy as np
import pytest
import scipy.stats as st
from helpers import r_inference
from numpy.testing import assert_allclose

import glmjax as gj

RTOL = 1e-8
NAME = "cancer_gamma_inverse"


def _data():
    case = r_inference()["gamma_shape"][NAME]
    return case, *(np.asarray(case[k], float) for k in ("X", "y", "weights"))


def _fit(X, y, w):
    return gj.fit_glm(X, y, gj.Gamma(None), link="inverse", weights=w, tol=1e-12)


def test_matches_gamma_shape():
    case, X, y, w = _data()
    fit = _fit(X, y, w)
    assert int(fit.result) == gj.ResultCode.successful
    shape = case["shape"]
    assert isinstance(fit.family, gj.Gamma)
    assert_allclose(fit.family.shape, shape, rtol=RTOL)
    assert_allclose(fit.scale, 1 / shape, rtol=RTOL)
    assert_allclose(fit.coef, case["coef"], rtol=RTOL)
    R = r_inference()["cases"][NAME]
    se = np.sqrt(np.diag(R["vcov"]) / R["dispersion"] / shape)
    assert_allclose(fit.stderr, se, rtol=RTOL)
    assert_allclose(fit.pvalues, 2 * st.t.sf(np.abs(fit.coef / se), R["df_residual"]), rtol=1e-6)
    mu = 1 / (X @ np.asarray(case["coef"]))
    loglik = np.sum(st.gamma.logpdf(y, a=w * shape, scale=mu / (w * shape)))
    assert_allclose(fit.loglik, loglik, rtol=RTOL)
    assert_allclose(fit.aic, -2 * loglik + 2 * (X.shape[1] + 1), rtol=RTOL)


def test_vmap_and_scale_equivariance():
    # y -> c y: the inverse-link coefficients scale by 1 / c, the shape stays
    case, X, y, w = _data()
    fits = jax.vmap(lambda v: _fit(X, v, w))(np.stack([y, 2.5 * y]))
    assert np.all(np.asarray(fits.result) == gj.ResultCode.successful)
    assert_allclose(fits.coef[1], fits.coef[0] / 2.5, rtol=1e-8)
    assert_allclose(fits.family.shape, [case["shape"]] * 2, rtol=RTOL)


def test_exact_fit_warns():
    # y = mu up to rounding: the deviance is rounding, the shape as large as it lets it be
    _, X, _, w = _data()
    y = 1 / (X @ np.array([0.03, 0.002, -0.03]))
    with pytest.warns(gj.ConvergenceWarning, match="the fit is exact up to rounding"):
        fit = _fit(X, y, w)
    assert float(fit.family.shape) > 1e20 and float(fit.scale) < 1e-20


def test_only_the_gamma_shape_is_estimated():
    with pytest.raises(ValueError, match="`shape` must be a positive number"):
        gj.InverseGaussian(shape=None)
