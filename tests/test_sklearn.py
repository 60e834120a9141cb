"""`glmjax.sklearn`: scikit-learn's estimator checks, and agreement with scikit-learn's own GLMs.

Speed: the estimators pad designs to shared shapes (`glmjax.sklearn` docstring), so the data here
have at most 512 rows and 7 columns and share one compiled fit per family with most checks.
"""

import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    GammaRegressor,
    LinearRegression,
    LogisticRegression,
    PoissonRegressor,
    TweedieRegressor,
)
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import glmjax as gj
from glmjax.sklearn import GLMClassifier, GLMRegressor

# scikit-learn 1.8 deprecated penalty=None for C=np.inf
_SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2])
UNPENALISED = {"C": np.inf} if _SKLEARN_VERSION >= (1, 8) else {"penalty": None}


# scikit-learn's checks fit tiny separable classes (and p > n designs) with l2=0, where the
# maximum-likelihood estimate does not exist: the estimators then warn with scikit-learn's
# ConvergenceWarning, as LogisticRegression does, and return finite coefficients. That warning
# alone is ignored here; any other warning still fails a check. scikit-learn itself skips one
# check, check_array_api_input (SkipTest unless SCIPY_ARRAY_API=1 is set before SciPy is
# imported, which this process cannot do); in a process with it set that check passes too.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([GLMRegressor(), GLMClassifier()])
def test_estimator_checks(estimator, check):
    check(estimator)


def _design(n=300, p=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p)), rng


def _poisson_data(n=300, seed=0):
    X, rng = _design(n, seed=seed)
    return X, rng.poisson(np.exp(0.3 + X @ [0.4, -0.3, 0.2])).astype(float), rng


def _logistic_data(k, n=300, seed=0):
    X, rng = _design(n, seed=seed)
    logits = np.c_[X @ rng.normal(size=(3, k - 1)), np.zeros(n)]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in p])
    return X, np.array(["a", "b", "c", "d"])[labels]


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_poisson_matches_poisson_regressor(alpha, weighted):
    X, y, rng = _poisson_data()
    w = rng.uniform(0.2, 3.0, size=y.size) if weighted else None
    ours = GLMRegressor(family="poisson", l2=alpha).fit(X, y, sample_weight=w)
    theirs = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    theirs.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)
    np.testing.assert_allclose(ours.score(X, y, w), theirs.score(X, y, w), rtol=0, atol=1e-9)


def _gamma(mean, rng):
    return rng.gamma(2.0, mean / 2.0)


def _inverse_gaussian(mean, rng):
    return rng.wald(mean, 4.0)


def _gaussian(mean, rng):
    return mean + rng.normal(size=mean.size)


@pytest.mark.parametrize(
    "family, draw, reference",
    [
        ("gamma", _gamma, lambda a: GammaRegressor(alpha=a, solver="newton-cholesky")),
        # scikit-learn's Newton-Cholesky falls back to lbfgs (with a warning) for power 3
        ("inverse_gaussian", _inverse_gaussian,
         lambda a: TweedieRegressor(power=3, link="log", alpha=a, solver="lbfgs")),
        ("gaussian", _gaussian,
         lambda a: TweedieRegressor(power=0, link="identity", alpha=a, solver="newton-cholesky")),
    ],
)  # fmt: skip
def test_families_match_scikit_learn(family, draw, reference):
    X, rng = _design()
    y = draw(np.exp(0.5 + X @ [0.3, -0.2, 0.1]), rng)
    for alpha in (0.0, 0.1):
        ours = GLMRegressor(family=family, l2=alpha).fit(X, y)
        theirs = reference(alpha).set_params(tol=1e-12, max_iter=1000).fit(X, y)
        np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours.score(X, y), theirs.score(X, y), rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_classifier_matches_logistic_regression(k, l2):
    X, y = _logistic_data(k)
    ours = GLMClassifier(l2=l2).fit(X, y)
    # LogisticRegression minimises C sum_i loss_i + ||w||^2 / 2: C = 1 / (l2 n)
    penalty = {"C": 1 / (l2 * y.size)} if l2 > 0 else UNPENALISED
    theirs = LogisticRegression(**penalty, tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.coef_.shape == theirs.coef_.shape
    assert ours.intercept_.shape == theirs.intercept_.shape
    # unpenalised multinomial coefficients are unique up to a shift over the classes: both are
    # centred (lbfgs from 0 stays so, the gradient summing to 0 over the classes)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-6)


def test_without_intercept():
    X, y, _ = _poisson_data()
    ours = GLMRegressor(fit_intercept=False).fit(X, y)
    theirs = PoissonRegressor(alpha=0.0, fit_intercept=False, solver="newton-cholesky",
                              tol=1e-12).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6)
    assert ours.intercept_ == 0.0
    Xc, yc = _logistic_data(3)
    ours = GLMClassifier(fit_intercept=False).fit(Xc, yc)
    theirs = LogisticRegression(**UNPENALISED, fit_intercept=False, tol=1e-10, max_iter=10000)
    np.testing.assert_allclose(ours.predict_proba(Xc), theirs.fit(Xc, yc).predict_proba(Xc),
                               rtol=0, atol=1e-5)  # fmt: skip
    np.testing.assert_array_equal(ours.intercept_, np.zeros(3))


@pytest.mark.parametrize(
    "estimator, data",
    [
        (GLMRegressor(family="poisson", l2=0.1), lambda: _poisson_data(n=60)[:2]),
        (GLMClassifier(), lambda: _logistic_data(3, n=60)),
        (GLMClassifier(l2=0.1), lambda: _logistic_data(2, n=60)),
    ],
)
def test_integer_weights_equal_repeated_rows(estimator, data):
    X, y = data()
    counts = np.random.default_rng(1).integers(0, 4, size=y.size)
    weighted = sklearn.clone(estimator).fit(X, y, sample_weight=counts)
    repeated = sklearn.clone(estimator).fit(X.repeat(counts, axis=0), y.repeat(counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=0, atol=1e-9)
    # a constant factor on the weights changes nothing
    scaled = sklearn.clone(estimator).fit(X, y, sample_weight=2.5 * counts)
    np.testing.assert_allclose(scaled.coef_, weighted.coef_, rtol=0, atol=1e-9)


def test_pipeline_and_grid_search():
    X, y, _ = _poisson_data()
    X = 3.0 * X + 5.0
    pipe = make_pipeline(StandardScaler(), GLMRegressor(l2=0.01)).fit(X, y)
    direct = GLMRegressor(l2=0.01).fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_allclose(pipe[-1].coef_, direct.coef_, rtol=0, atol=1e-10)
    search = GridSearchCV(pipe, {"glmregressor__l2": [0.0, 0.01, 1.0]}, cv=3).fit(X, y)
    assert search.best_params_["glmregressor__l2"] in (0.0, 0.01)  # 1.0 shrinks too much
    assert search.predict(X).shape == y.shape

    Xc, yc = _logistic_data(3)
    search = GridSearchCV(make_pipeline(StandardScaler(), GLMClassifier()),
                          {"glmclassifier__l2": [0.0, 0.01]}, cv=3).fit(Xc, yc)  # fmt: skip
    assert search.predict_proba(Xc).shape == (yc.size, 3)
    assert search.score(Xc, yc) > 0.5


def test_data_frame_feature_names():
    X, y, _ = _poisson_data()
    frame = pd.DataFrame(X, columns=["age", "dose", "weight"])
    model = GLMRegressor().fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["age", "dose", "weight"])
    assert model.n_features_in_ == 3
    np.testing.assert_allclose(model.predict(frame), GLMRegressor().fit(X, y).predict(X))
    assert isinstance(model.predict(frame), np.ndarray)
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame[["dose", "age", "weight"]])


def test_separation_warns_and_stays_finite():
    x = np.linspace(-1.0, 1.0, 20)[:, None]
    y = (x[:, 0] > 0).astype(int)
    with pytest.warns(ConvergenceWarning, match="maximum-likelihood estimate does not exist"):
        model = GLMClassifier().fit(x, y)
    assert np.all(np.isfinite(model.coef_)) and model.coef_[0, 0] > 0
    np.testing.assert_array_equal(model.predict(x), y)
    assert GLMClassifier(l2=0.01).fit(x, y).coef_[0, 0] > 0  # a ridge makes it exist: no warning


def test_unidentifiable_design_gives_minimum_norm_estimate():
    # p > n and a constant column: the Gaussian fit is LinearRegression's minimum-norm one
    rng = np.random.default_rng(3)
    X = np.c_[rng.normal(size=(6, 9)), np.ones(6)]
    y = rng.normal(size=6)
    ours = GLMRegressor(family="gaussian").fit(X, y)
    theirs = LinearRegression().fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.predict(X), y, rtol=0, atol=1e-10)


def test_float32_without_x64():
    X, y, _ = _poisson_data()
    with jax.enable_x64(False):
        model = GLMRegressor(l2=0.01).fit(X, y)
        mean = model.predict(X)
    assert model.coef_.dtype == np.float32 and mean.dtype == np.float32
    reference = GLMRegressor(l2=0.01).fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "estimator, match",
    [
        (GLMRegressor(family="binomial"), "`family` must be"),
        (GLMRegressor(family=gj.Categorical(3)), "scalar ExponentialFamily"),
        (GLMRegressor(l2=-1.0), "`l2` must be"),
        (GLMClassifier(l2="big"), "`l2` must be"),
        (GLMClassifier(fit_intercept=1), "`fit_intercept`"),
    ],
)
def test_bad_hyperparameters(estimator, match):
    X, y, _ = _poisson_data(n=10)
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, y > 1 if isinstance(estimator, GLMClassifier) else y)


def test_tags_follow_the_family():
    assert GLMRegressor().__sklearn_tags__().target_tags.positive_only
    assert GLMRegressor(family="gamma").__sklearn_tags__().target_tags.positive_only
    assert not GLMRegressor(family="gaussian").__sklearn_tags__().target_tags.positive_only
    assert GLMClassifier().__sklearn_tags__().estimator_type == "classifier"


def test_importing_glmjax_does_not_import_scikit_learn():
    code = (
        "import sys, glmjax\n"
        "assert 'sklearn' not in sys.modules\n"
        "sys.modules['sklearn'] = None  # as if it were not installed\n"
        "try:\n"
        "    import glmjax.sklearn\n"
        "except ImportError as error:\n"
        "    assert \"pip install 'glmjax[sklearn]'\" in str(error), error\n"
        "else:\n"
        "    raise AssertionError('no ImportError')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
