"""Model comparison: `anova` against R's ``anova.glm`` (tests/data/r_inference, key ``anova``),
`lr_test` against the same numbers (``lmtest::lrtest``'s statistic is the deviance difference for
a fixed dispersion) and statsmodels' log-likelihoods, `GLMResult.wald_test` against statsmodels'
``wald_test``; then every ``ValueError``.

Every compared column agrees to ``rtol=1e-6`` (the issue's tolerance; the fits here reach
~1e-11). Each distinct design shape costs a compile, so every model is fitted once, in
module-scoped fixtures, and the bad-input tests reuse those fits (altered with
``eqx.tree_at`` where a test needs a property no real fit of these data has)."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
import statsmodels.api as sm
from helpers import fit_r_case, r_inference
from numpy.testing import assert_allclose
from statsmodels.tools.sm_exceptions import DomainWarning

import glmjax as gj

RTOL = 1e-6
CASES = ["warpbreaks_poisson_log", "cancer_gamma_inverse", "lbw_binomial_logit"]
# the fits the Wald tests use carry a covariance; the others skip it (a shorter compile)
COVARIANCE = {("warpbreaks_poisson_log", 2), ("cancer_gamma_inverse", 2)}
SM_FAMILIES = {"poisson": sm.families.Poisson, "Gamma": sm.families.Gamma,
               "binomial": sm.families.Binomial}  # fmt: skip


def _column(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


@pytest.fixture(scope="module")
def nested():
    """Per case: R's record and the nested fits ``X[:, :c]`` for R's ``columns``."""
    out = {}
    for name in CASES:
        case = r_inference()["anova"][name]
        X = np.asarray(case["X"], float)
        fits = [fit_r_case({**case, "X": X[:, :c]}, covariance=(name, j) in COVARIANCE)
                for j, c in enumerate(case["columns"])]  # fmt: skip
        out[name] = case, fits
    return out


def _statsmodels(case, columns: int):
    X = np.asarray(case["X"], float)[:, :columns]
    with warnings.catch_warnings():  # Gamma's inverse link "does not respect the domain"
        warnings.simplefilter("ignore", DomainWarning)
        model = sm.GLM(np.asarray(case["y"], float), X, family=SM_FAMILIES[case["family"]](),
                       var_weights=np.asarray(case["weights"], float))  # fmt: skip
    return model.fit(tol=1e-13)


@pytest.mark.parametrize("name", CASES)
def test_anova_matches_r(nested, name):
    case, fits = nested[name]
    table = gj.anova(*fits)
    assert table.test == case["test"]
    assert_allclose(table.resid_df, case["resid_df"], rtol=0)
    assert_allclose(table.df, _column(case["df"]), rtol=0)
    assert_allclose(table.resid_dev, case["resid_dev"], rtol=RTOL)
    assert_allclose(table.deviance, _column(case["deviance"]), rtol=RTOL)
    assert_allclose(table.pvalue, _column(case["p"]), rtol=RTOL)
    if case["test"] == "F":
        assert_allclose(table.F, _column(case["F"]), rtol=RTOL)
        assert_allclose(table.dispersion, case["dispersion"], rtol=RTOL)
    else:
        assert table.F is None and table.dispersion == 1.0
    text = str(table)
    assert text.startswith("Analysis of Deviance Table")
    assert ("Pr(>F)" if case["test"] == "F" else "Pr(>Chi)") in text
    assert f"{case['p'][1]:.4g}" in text and repr(table) == text


def test_anova_chisq_with_an_estimated_dispersion_scales_by_the_largest_fit(nested):
    # R: anova(..., test = "Chisq") divides the deviances by the largest model's dispersion
    case, fits = nested["cancer_gamma_inverse"]
    table = gj.anova(*fits, test="Chisq")
    expected = st.chi2.sf(_column(case["deviance"])[1:] / case["dispersion"], case["df"][1:])
    assert_allclose(table.pvalue[1:], expected, rtol=RTOL)
    assert table.F is None and str(table).count("Pr(>Chi)") == 1
    assert_allclose(gj.anova(*fits, test="LRT").pvalue[1:], expected, rtol=RTOL)


def test_anova_in_decreasing_order_gives_the_same_tests(nested):
    # R's anova.glmlist: negative Df and Deviance, the same p-values
    case, fits = nested["warpbreaks_poisson_log"]
    forward, backward = gj.anova(*fits), gj.anova(*fits[::-1])
    assert_allclose(backward.df[1:], -forward.df[1:][::-1], rtol=0)
    assert_allclose(backward.deviance[1:], -forward.deviance[1:][::-1], rtol=1e-12)
    assert_allclose(backward.pvalue[1:], forward.pvalue[1:][::-1], rtol=1e-12)
    case, fits = nested["cancer_gamma_inverse"]
    forward, backward = gj.anova(*fits), gj.anova(fits[2], fits[0], fits[1])
    # the largest fit sets the dispersion wherever it is in the list
    assert backward.dispersion == forward.dispersion
    F = _column(case["deviance"])[1:].sum() / 2 / case["dispersion"]
    assert_allclose(backward.F[1], F, rtol=RTOL)


@pytest.mark.parametrize("name", ["warpbreaks_poisson_log", "lbw_binomial_logit"])
def test_lr_test_matches_r_and_statsmodels(nested, name):
    case, fits = nested[name]
    for j in range(1, len(fits)):
        statistic, df, pvalue = gj.lr_test(fits[j - 1], fits[j])
        assert_allclose(statistic, case["deviance"][j], rtol=RTOL)
        assert float(df) == case["df"][j]
        assert_allclose(pvalue, case["p"][j], rtol=RTOL)
        small, big = (
            _statsmodels(case, case["columns"][j - 1]),
            _statsmodels(case, case["columns"][j]),
        )
        assert_allclose(statistic, 2 * (big.llf - small.llf), rtol=RTOL)
        assert_allclose(pvalue, st.chi2.sf(2 * (big.llf - small.llf), df), rtol=RTOL)


def test_lr_test_counts_the_dispersion_like_aic(nested):
    _, fits = nested["cancer_gamma_inverse"]
    result = gj.lr_test(fits[0], fits[2])
    assert isinstance(result, gj.TestResult)
    assert_allclose(result.statistic, 2 * (fits[2].loglik - fits[0].loglik), rtol=1e-12)
    assert_allclose(result.df, (result.statistic - (fits[0].aic - fits[2].aic)) / 2, rtol=1e-12)
    assert_allclose(result.pvalue, st.chi2.sf(float(result.statistic), 2), rtol=1e-10)


def _stack(*fits):
    return jax.tree.map(lambda *a: jnp.stack(a), *fits)


def test_lr_test_under_vmap(nested):
    _, fits = nested["warpbreaks_poisson_log"]
    # two full fits of one shape: the second's log-likelihood moved up by 1
    fulls = [fits[3], eqx.tree_at(lambda f: f.loglik, fits[3], fits[3].loglik + 1)]
    statistic, df, pvalue = jax.vmap(gj.lr_test)(_stack(fits[1], fits[1]), _stack(*fulls))
    for k, full in enumerate(fulls):
        one = gj.lr_test(fits[1], full)
        assert_allclose([statistic[k], df[k], pvalue[k]], list(one), rtol=1e-12)


# (case, model index, R, q): joint and single hypotheses, q = 0 and q != 0
WALD = [
    ("warpbreaks_poisson_log", 2, [[0, 0, 1, 0], [0, 0, 0, 1]], None),
    ("warpbreaks_poisson_log", 2, [[0, 1, -1, 0], [1, 0, 0, 1]], [0.1, 3.0]),
    ("cancer_gamma_inverse", 2, [[0, 1, 0], [0, 0, 1]], None),
    ("cancer_gamma_inverse", 2, [0, 1, 2], [0.01]),
]


@pytest.mark.parametrize(("name", "model", "R", "q"), WALD)
def test_wald_test_matches_statsmodels(nested, name, model, R, q):
    case, fits = nested[name]
    fit = fits[model]
    reference = _statsmodels(case, case["columns"][model])
    # the same covariance (statsmodels scales a Gamma's by Pearson's dispersion, as R)
    cov = reference.cov_params()
    assert_allclose(fit.cov, cov, rtol=RTOL, atol=1e-12 * np.max(np.diag(cov)))
    R2 = np.atleast_2d(R).astype(float)
    hypothesis = R2 if q is None else (R2, np.asarray(q, float))
    expected = reference.wald_test(hypothesis, use_f=False, scalar=True)
    statistic, df, pvalue = fit.wald_test(R, q)
    assert_allclose(statistic, expected.statistic, rtol=RTOL)
    assert float(df) == len(R2) == expected.df_denom  # statsmodels keeps chi2's df there
    assert_allclose(pvalue, expected.pvalue, rtol=RTOL)


@pytest.mark.parametrize("name", ["warpbreaks_poisson_log", "cancer_gamma_inverse"])
def test_wald_test_of_one_coefficient_is_its_squared_z(nested, name):
    _, fits = nested[name]
    fit = fits[2]
    for j in range(fit.coef.size):
        statistic, df, pvalue = fit.wald_test(np.eye(fit.coef.size)[j])
        assert_allclose(statistic, fit.zvalues[j] ** 2, rtol=1e-10)
        assert float(df) == 1.0
        if not fit.estimated_dispersion:
            assert_allclose(pvalue, fit.pvalues[j], rtol=1e-10)


def test_wald_test_follows_the_fits_covariance(nested):
    # whatever covariance the fit carries: here statsmodels' HC0 (R's vcovHC HC0, which
    # fit_glm(cov_type="HC0") reproduces: test_robust.py) put in place of the model's
    case, fits = nested["warpbreaks_poisson_log"]
    model = _statsmodels(case, 4).model
    reference = sm.GLM(model.endog, model.exog, family=sm.families.Poisson())
    reference = reference.fit(tol=1e-13, cov_type="HC0")
    robust = eqx.tree_at(lambda f: f.cov, fits[2], jnp.asarray(reference.cov_params()))
    R = np.array([[0.0, 0, 1, 0], [0, 0, 0, 1]])
    expected = reference.wald_test(R, use_f=False, scalar=True)
    statistic, _, pvalue = robust.wald_test(R)
    assert_allclose([statistic, pvalue], [expected.statistic, expected.pvalue], rtol=RTOL)
    assert not np.isclose(float(statistic), float(fits[2].wald_test(R).statistic), rtol=0.1)


def test_wald_test_under_vmap(nested):
    _, fits = nested["warpbreaks_poisson_log"]
    R = jnp.array([[0.0, 0, 1, 0], [0, 0, 0, 1]])
    batch = _stack(fits[2], fits[2])
    statistic, _, _ = jax.vmap(lambda f: f.wald_test(R))(batch)
    assert_allclose(statistic, [fits[2].wald_test(R).statistic] * 2, rtol=1e-12)


# ----- bad input ---------------------------------------------------------------------------------


def test_comparisons_reject_batched_fits(nested):
    _, fits = nested["warpbreaks_poisson_log"]
    batch = _stack(fits[1], fits[1])
    with pytest.raises(ValueError, match=r"`full` is a batch of \(2,\) fits: index it"):
        gj.lr_test(fits[0], batch)
    with pytest.raises(ValueError, match=r"`fits\[1\]` is a batch"):
        gj.anova(fits[0], batch)
    with pytest.raises(ValueError, match="needs a single fit: index"):
        _stack(fits[2], fits[2]).wald_test(np.eye(4)[0])


def test_comparisons_reject_different_families_and_data(nested):
    _, (poisson, *_) = nested["warpbreaks_poisson_log"]
    _, (gamma, *_) = nested["cancer_gamma_inverse"]
    _, (_, binomial, _) = nested["lbw_binomial_logit"]
    with pytest.raises(ValueError, match="`full` and `restricted` must have the same family"):
        gj.lr_test(poisson, gamma)
    trials = eqx.tree_at(lambda f: f.family, binomial, gj.Binomial(2.0))
    with pytest.raises(ValueError, match=r"`fits\[1\]` and `fits\[0\]` .* family parameters"):
        gj.anova(binomial, trials)
    nb1, nb2 = (eqx.tree_at(lambda f: f.family, poisson, gj.NegativeBinomial(r)) for r in (1, 2))
    with pytest.raises(ValueError, match="family parameters"):
        gj.lr_test(nb1, nb2)
    with pytest.raises(ValueError, match="must be a GLMResult, got dict"):
        gj.lr_test({}, poisson)
    fewer = eqx.tree_at(lambda f: f.nobs, binomial, binomial.nobs - 1)
    with pytest.raises(ValueError, match="same observations, got nobs 188 and 189"):
        gj.anova(binomial, fewer)


def test_comparisons_compare_only_fixed_family_parameters(nested):
    # an estimated dispersion is not a family parameter; a different link is allowed
    _, fits = nested["cancer_gamma_inverse"]
    shaped = eqx.tree_at(lambda f: f.family, fits[0], gj.Gamma(3.0))
    assert_allclose(gj.lr_test(shaped, fits[1]).statistic, gj.lr_test(*fits[:2]).statistic)
    relinked = eqx.tree_at(lambda f: f.link, fits[0], gj.links.Log())
    assert_allclose(gj.anova(relinked, fits[1]).pvalue, gj.anova(*fits[:2]).pvalue)


def test_comparisons_reject_fits_that_are_not_nested(nested):
    _, fits = nested["warpbreaks_poisson_log"]
    with pytest.raises(ValueError, match="`restricted` must have fewer parameters than `full`"):
        gj.lr_test(fits[2], fits[1])
    with pytest.raises(ValueError, match="fewer parameters than `full`, got residual df 50 and 50"):
        gj.lr_test(fits[2], fits[2])
    better = eqx.tree_at(lambda f: (f.loglik, f.deviance), fits[1],
                         (fits[2].loglik + 1, fits[2].deviance - 2))  # fmt: skip
    with pytest.raises(ValueError, match="`restricted` must be nested in `full`"):
        gj.lr_test(better, fits[2])
    with pytest.raises(ValueError, match=r"`fits\[1\]` must be nested in `fits\[2\]`"):
        gj.anova(fits[0], better, fits[2])
    with pytest.raises(ValueError, match=r"`fits\[0\]` and `fits\[1\]` have the same number"):
        gj.anova(fits[2], fits[2])


def test_anova_rejects_bad_arguments(nested):
    _, fits = nested["warpbreaks_poisson_log"]
    with pytest.raises(ValueError, match="`anova` needs at least 2 fits, got 1"):
        gj.anova(fits[0])
    with pytest.raises(ValueError, match="`test` must be one of 'Chisq', 'LRT', 'F', got 'Wald'"):
        gj.anova(*fits, test="Wald")
    with pytest.raises(ValueError, match="`test='F'` needs an estimated dispersion"):
        gj.anova(*fits, test="F")
    with pytest.raises(ValueError, match="`anova` needs concrete fits"):
        jax.jit(lambda a, b: gj.anova(a, b).pvalue)(fits[0], fits[1])


def test_wald_test_rejects_bad_arguments(nested):
    _, fits = nested["warpbreaks_poisson_log"]
    fit = fits[2]
    with pytest.raises(ValueError, match=r"`R` must have shape \(r, 4\) or \(4,\), got \(1, 3\)"):
        fit.wald_test([0.0, 1, 0])
    with pytest.raises(ValueError, match=r"`R` must have shape .* got \(0, 4\)"):
        fit.wald_test(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="`R` must be finite"):
        fit.wald_test([0.0, np.nan, 0, 0])
    with pytest.raises(ValueError, match="`R` must have 2 linearly independent rows"):
        fit.wald_test([[0.0, 1, 0, 0], [0, 2, 0, 0]])
    with pytest.raises(ValueError, match=r"`q` must have shape \(2,\) .* got \(3,\)"):
        fit.wald_test(np.eye(4)[:2], [0.0, 0, 0])
    with pytest.raises(ValueError, match="`wald_test` needs the covariance: fit with covariance"):
        fits[1].wald_test(np.eye(2)[0])
