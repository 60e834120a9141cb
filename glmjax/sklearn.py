r"""scikit-learn estimators around `glmjax.fit_glm`: `GLMRegressor` and `GLMClassifier`.

Both minimise scikit-learn's GLM objective (that of ``PoissonRegressor``, ``GammaRegressor``,
``TweedieRegressor``; and of ``LogisticRegression`` with ``C = 1 / (l2 sum_i s_i)``)

``(1 / sum_i s_i) sum_i s_i [a(theta_i) - <theta_i, T(y_i)>] + (l2 / 2) ||w||^2``

(the first term is half the mean unit deviance up to a constant), with ``s_i`` the sample
weights, ``w`` the coefficients of the features and the intercept unpenalised. So `l2` is
scikit-learn's ``alpha``. `fit_glm` averages over its ``n`` rows, ``(1/n) sum_i w_i [...]``: the
estimators pass it the weights ``w_i = n s_i / sum_j s_j`` (mean 1), so that its objective is the
one above and `l2` its ridge, unchanged.

**Sample weights** are frequency-like, as in scikit-learn: an integer weight equals repeating the
row, a zero weight equals dropping it, and multiplying all weights by a constant changes nothing.

**Unidentifiable designs.** With ``l2=0`` and a design `fit_glm` refuses unpenalised (more
coefficients than samples of positive weight, an all-zero column, a constant column beside the
intercept) the estimators fit in an orthonormal basis of the row space of the (weighted, centred)
features: the maximum-likelihood estimate whose coefficients have the least norm, the intercept
free -- the limit of the ridge fit as ``l2 -> 0``, and ``LinearRegression``'s least squares for
the Gaussian. Repeated rows and integer weights give the same basis and so the same estimate.

**Compiled fits are shared between shapes.** Each new shape of the design compiles `fit_glm`
anew (about 5 s on a CPU) while a small fit runs in milliseconds. The estimators therefore pad
the rows, with zero-weight copies of the heaviest row, to at least 512 and else to within 25%
(four sizes per doubling), and the columns, with zero columns whose coefficients a ridge keeps at
exactly 0, to at least 8 and else to within 50% (two sizes per doubling). Fits on data of nearby
shapes (cross-validation folds, ``GridSearchCV``, feature selection) share one compiled fit; the
estimates are those of the unpadded data.

**Precision.** Fits and predictions run in float64 when JAX's x64 mode is on, else in float32;
predictions are NumPy arrays.

**Non-convergence** (separable classes with ``l2=0``, where the maximum-likelihood estimate does
not exist; ``max_iter`` reached) is a ``sklearn.exceptions.ConvergenceWarning`` with
`glmjax.ResultCode`'s message, as scikit-learn's own estimators warn; the coefficients are then
finite but their size arbitrary. ``result_`` keeps the `glmjax.GLMResult` behind the estimate:
that of the weighted, padded design (and of its basis for an unidentifiable one), fitted with
``covariance=False``; for inference fit with `glmjax.fit_glm` itself.

Needs scikit-learn >= 1.6 (``pip install 'glmjax[sklearn]'``); ``import glmjax`` alone does not
import it.
"""

import numbers
import warnings

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as error:  # validate_data is new in scikit-learn 1.6
    raise ImportError(
        f"glmjax.sklearn needs scikit-learn >= 1.6: pip install 'glmjax[sklearn]' ({error})"
    ) from error

import jax.numpy as jnp
import numpy as np
from scipy.special import log_expit, log_softmax

from ._exponential_family import ExponentialFamily, Support
from ._families import Bernoulli, Categorical, Gamma, Gaussian, InverseGaussian, Poisson
from ._fit import fit_glm
from ._result import GLMResult
from ._solution import ConvergenceWarning as GLMConvergenceWarning
from ._solution import ResultCode

__all__ = ["GLMClassifier", "GLMRegressor"]

# designs are padded to shapes (rows, columns) of these sizes (module docstring)
_MIN_ROWS, _ROWS_PER_OCTAVE = 512, 4
_MIN_COLUMNS, _COLUMNS_PER_OCTAVE = 8, 2


class PoissonResponse(Poisson):
    """Poisson's likelihood for any ``y >= 0``, as scikit-learn's ``PoissonRegressor``: the
    coefficients solve the quasi-likelihood equations, which need only ``E[y] = mu`` (rates,
    counts divided by an exposure). ``log b(y) = -log Gamma(y + 1)`` as for the counts."""

    support = Support.named("nonnegative_real")

    @property
    def name(self) -> str:
        return "Poisson"


# name -> (family, link for ``link=None``: scikit-learn's, the log link for positive responses)
_FAMILIES = {
    "gaussian": (Gaussian(), "identity"),
    "normal": (Gaussian(), "identity"),
    "poisson": (PoissonResponse(), "log"),
    "gamma": (Gamma(), "log"),
    "inverse_gaussian": (InverseGaussian(), "log"),
}


def _float_dtype() -> np.dtype:
    # float64 when JAX's x64 mode is on, else float32
    return np.dtype(jnp.result_type(float))


def _bucket(size: int, minimum: int, per_octave: int) -> int:
    """The size ``size`` is padded to: ``minimum`` if no larger, else the next multiple of
    ``2^(k-1) / per_octave`` for ``2^(k-1) < size <= 2^k`` (``per_octave`` a power of 2)."""
    if size <= minimum:
        return minimum
    step = 2 ** ((size - 1).bit_length() - 1) // per_octave
    return -(-size // step) * step


def _padded_rows(n: int) -> int:
    return _bucket(n, _MIN_ROWS, _ROWS_PER_OCTAVE)


def _pad(arrays: list[np.ndarray], weights: np.ndarray, rows: int) -> list[np.ndarray]:
    """``arrays`` (first axis ``n``) and ``weights`` padded to ``rows`` rows with copies of the
    heaviest row at weight 0 (a valid response; constant columns stay constant)."""
    extra = rows - weights.shape[0]
    if extra == 0:
        return arrays + [weights]
    heaviest = int(np.argmax(weights))
    padded = [np.concatenate([a, np.repeat(a[heaviest : heaviest + 1], extra, axis=0)])
              for a in arrays]  # fmt: skip
    return padded + [np.concatenate([weights, np.zeros(extra, weights.dtype)])]


def _check_hyperparameters(estimator) -> None:
    l2 = estimator.l2
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) or not np.isfinite(l2) or l2 < 0:
        raise ValueError(f"`l2` must be a finite number >= 0, got {l2!r}")
    if not isinstance(estimator.fit_intercept, bool | np.bool_):
        raise ValueError(f"`fit_intercept` must be True or False, got {estimator.fit_intercept!r}")


def _design(estimator, X: np.ndarray) -> np.ndarray:
    if not estimator.fit_intercept:
        return X
    return np.concatenate([np.ones((X.shape[0], 1), X.dtype), X], axis=1)


def _deficient_basis(estimator, X: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """For a design `fit_glm` refuses unpenalised (more coefficients than samples of positive
    weight, an all-zero column, a constant column beside the intercept): an orthonormal basis
    `(n_features, r)` of the row space of the samples of positive weight, weighted by
    ``sqrt(s_i)`` and centred (weighted) when there is an intercept, which then absorbs the rest
    (the right singular vectors, each signed to make its largest entry positive; repeating rows
    leaves them unchanged). ``None`` for any other design."""
    positive = weights > 0
    rows, w = X[positive], weights[positive]
    constant = np.all(rows == rows[:1], axis=0)
    zero = constant & (rows[0] == 0)
    allowed = 0 if estimator.fit_intercept else 1  # constant columns: one intercept
    q = X.shape[1] + estimator.fit_intercept
    if rows.shape[0] >= q and not zero.any() and constant.sum() <= allowed:
        return None
    if estimator.fit_intercept:
        rows = rows - np.average(rows, axis=0, weights=w)
    _, s, vt = np.linalg.svd(np.sqrt(w)[:, None] * rows, full_matrices=False)
    cut = s[0] * max(rows.shape) * np.finfo(rows.dtype).eps if s.size else 0.0
    basis = vt[: np.count_nonzero(s > cut)].T
    return basis * np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(basis.shape[1])])


def _fit(
    estimator, X, y, sample_weight, family: ExponentialFamily, link
) -> tuple[GLMResult, np.ndarray]:
    """`fit_glm` of the validated ``X, y`` with scikit-learn's objective (module docstring):
    ``(result, coef)``, ``coef`` of the design ``[1, X]`` (or ``X``), intercept first."""
    weights = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
    total = float(weights.sum())
    if total <= 0:
        raise ValueError("`sample_weight` are all zero: there is nothing to fit")
    basis = _deficient_basis(estimator, X, weights) if estimator.l2 == 0 else None
    design = _design(estimator, X if basis is None else X @ basis)
    n, q = design.shape
    if basis is None:
        # fit_glm counts the zero columns too against the rows of positive weight
        columns = max(q, min(_bucket(q, _MIN_COLUMNS, _COLUMNS_PER_OCTAVE), np.sum(weights > 0)))
    else:
        # no zero columns: their ridge would move the threshold below which Newton drops the
        # Hessian's tiny eigenvalues (q eps max |e|), and with it the path of a separated fit
        columns = q
    rows = _padded_rows(n)
    m = () if family.natural_dim is None else (family.natural_dim,)
    l2 = np.full((columns, *m), estimator.l2, X.dtype)
    if estimator.fit_intercept:
        l2[0] = 0.0
    l2[q:] = 1.0  # any ridge keeps the coefficients of the zero columns at 0
    design = np.concatenate([design, np.zeros((n, columns - q), X.dtype)], axis=1)
    # weights of mean 1 over the padded rows: fit_glm's objective is then scikit-learn's
    design, y, weights = _pad([design, y], weights * (rows / total), rows)
    with warnings.catch_warnings():
        # a fit that did not converge is reported once, below, in scikit-learn's category
        warnings.simplefilter("ignore", GLMConvergenceWarning)
        fit = fit_glm(
            design, y, family, link=link, method=estimator.method, weights=weights, l2=l2,
            max_iter=estimator.max_iter, tol=estimator.tol, covariance=False,
        )  # fmt: skip
    code = ResultCode(int(fit.result))
    if not code.converged:
        warnings.warn(
            f"{type(estimator).__name__} ({fit.family.name}, l2={estimator.l2!r}) stopped after "
            f"{int(fit.n_iter)} iterations: {code.message}",
            ConvergenceWarning,
            stacklevel=3,
        )
    coef = np.asarray(fit.coef)[:q]
    if basis is not None:
        k = int(estimator.fit_intercept)
        coef = np.concatenate([coef[:k], basis @ coef[k:]])
    return fit, coef


def _split(estimator, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(intercept, slopes)`` of a coefficient array whose first row is the intercept's when
    ``fit_intercept``."""
    if estimator.fit_intercept:
        return coef[0], coef[1:]
    return np.zeros(coef.shape[1:], coef.dtype), coef


class GLMRegressor(RegressorMixin, BaseEstimator):
    r"""A generalised linear model for a scalar response, fitted by `glmjax.fit_glm`.

    Minimises ``(1 / sum s) sum_i s_i [a(theta_i) - theta_i y_i] + (l2 / 2) ||coef_||^2`` (half
    the mean deviance plus the ridge, the intercept unpenalised): the objective of
    scikit-learn's ``PoissonRegressor(alpha=l2)``, ``GammaRegressor(alpha=l2)`` and
    ``TweedieRegressor(power, alpha=l2)`` (power 0, 1, 2, 3: ``"gaussian"``, ``"poisson"``,
    ``"gamma"``, ``"inverse_gaussian"``).

    **Arguments:**

    - `family`: ``"gaussian"`` (or ``"normal"``), ``"poisson"`` (any ``y >= 0``, as
      ``PoissonRegressor``: `PoissonResponse`), ``"gamma"``, ``"inverse_gaussian"`` (``y > 0``),
      or a scalar `glmjax.ExponentialFamily` (used as given: ``gj.Poisson()`` wants integer
      counts, its log-likelihood being defined for those only).
    - `link`: ``None``: for a named family scikit-learn's choice, the identity for the Gaussian
      and the log link otherwise (the canonical links of the Gamma and inverse Gaussian need a
      negative linear predictor, which new rows need not keep); for a family instance its
      canonical link. Else any `link` of `glmjax.fit_glm` (a name or a `glmjax.Link`).
    - `l2`: the ridge penalty, scikit-learn's ``alpha`` (0: the maximum-likelihood fit).
    - `fit_intercept`: add an unpenalised intercept.
    - `method`, `max_iter`, `tol`: `glmjax.fit_glm`'s (`tol` bounds the gradient in units of
      standardised columns, not scikit-learn's).

    **Fitted attributes:** `coef_` `(n_features,)`, `intercept_` (0.0 without intercept),
    `n_iter_`, `n_features_in_`, `feature_names_in_` (fitted on a DataFrame with string column
    names), `result_` (the `glmjax.GLMResult`, whose `coef` puts the intercept first).

    `score` is D^2, the fraction of deviance explained ``1 - D(y, mu) / D(y, ybar)`` (``ybar``
    the weighted mean), as scikit-learn's GLM regressors; for ``"gaussian"`` it is R^2.

    ```python
    import numpy as np
    from glmjax.sklearn import GLMRegressor
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = GLMRegressor(family="poisson", l2=0.1).fit(X, np.array([1.0, 0.0, 3.0, 4.0]))
    mean = model.predict(X)
    ```
    """

    def __init__(
        self, family="poisson", link=None, l2=0.0, fit_intercept=True, method="newton",
        max_iter=100, tol=1e-8,
    ):  # fmt: skip
        self.family = family
        self.link = link
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.method = method
        self.max_iter = max_iter
        self.tol = tol

    def _family_and_link(self) -> tuple[ExponentialFamily, object]:
        family = self.family
        if isinstance(family, str):
            if family not in _FAMILIES:
                raise ValueError(
                    f"`family` must be an ExponentialFamily or one of "
                    f"{', '.join(map(repr, _FAMILIES))}, got {family!r}"
                )
            family, default_link = _FAMILIES[family]
            return family, default_link if self.link is None else self.link
        if not isinstance(family, ExponentialFamily) or family.natural_dim is not None:
            raise ValueError(
                f"`family` must be a scalar ExponentialFamily or a name, got {family!r} (for "
                "classes use GLMClassifier)"
            )
        return family, self.link

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            family, _ = self._family_and_link()
        except ValueError:
            return tags  # reported by fit
        tags.target_tags.positive_only = float(family.support.lower) >= 0
        return tags

    def fit(self, X, y, sample_weight=None) -> "GLMRegressor":
        """Fit to ``X`` `(n_samples, n_features)` and ``y`` `(n_samples,)` with frequency-like
        ``sample_weight`` `(n_samples,)` (default ones). Returns the estimator."""
        _check_hyperparameters(self)
        family, link = self._family_and_link()
        X, y = validate_data(self, X, y, dtype=_float_dtype(), y_numeric=True)
        self.result_, coef = _fit(self, X, y, sample_weight, family, link)
        self.intercept_, self.coef_ = _split(self, coef)
        self.intercept_ = float(self.intercept_)
        self.n_iter_ = int(self.result_.n_iter)
        return self

    def _linear_predictor(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_float_dtype(), reset=False)
        return X @ self.coef_ + self.intercept_

    def predict(self, X) -> np.ndarray:
        """The fitted mean ``g^-1(X @ coef_ + intercept_)`` `(n_samples,)`."""
        eta = self._linear_predictor(X)
        return np.asarray(self.result_.link.inverse(jnp.asarray(eta)))

    def score(self, X, y, sample_weight=None) -> float:
        """D^2 of ``(X, y)``: ``1 - D(y, mu) / D(y, ybar)``, the deviance ``D`` of the family
        (weighted by ``sample_weight``; ``ybar`` their weighted mean of ``y``). 1 is a perfect
        fit, 0 no better than ``ybar``; if ``D(y, ybar) = 0`` it is 1 for a perfect fit, else 0
        (as ``sklearn.metrics.r2_score``)."""
        eta = self._linear_predictor(X)
        y = np.asarray(y, eta.dtype).reshape(-1)
        if y.shape != eta.shape:
            raise ValueError(f"`y` must have shape {eta.shape}, got {y.shape}")
        self.result_.family.check_support(y)
        weights = _check_sample_weight(sample_weight, eta[:, None], dtype=eta.dtype,
                                       ensure_non_negative=True)  # fmt: skip
        fit = self.result_
        null = float(fit.link(jnp.asarray(np.average(y, weights=weights))))
        # both deviances through one compiled residual function: the linear predictor (with
        # the null model's) enters as an offset to a design of zeros
        design, y, eta, weights = _pad([np.zeros((y.size, fit.coef.shape[0]), y.dtype), y, eta],
                                       weights, _padded_rows(y.size))  # fmt: skip

        def deviance(offset):
            residuals = fit.residuals(design, y, kind="deviance", weights=weights, offset=offset)
            return float(jnp.sum(residuals**2))

        model, baseline = deviance(eta), deviance(np.full_like(eta, null))
        if baseline == 0:
            return 1.0 if model == 0 else 0.0
        return 1.0 - model / baseline


class GLMClassifier(ClassifierMixin, BaseEstimator):
    r"""Logistic regression fitted by `glmjax.fit_glm`: `glmjax.Bernoulli` for two classes,
    the softmax (`glmjax.Categorical`) for more.

    Minimises ``(1 / sum s) sum_i s_i [-log p(y_i | x_i)] + (l2 / 2) ||coef_||^2`` (the
    intercepts unpenalised): scikit-learn's ``LogisticRegression(C=1 / (l2 * sum s))``, and for
    ``l2=0`` ``LogisticRegression(penalty=None)``. With ``l2 > 0`` and more than two classes the
    penalty is on all ``k`` rows of `coef_` (scikit-learn's symmetric multinomial); with
    ``l2=0`` the fit uses the identifiable parametrisation against the last class
    (`Categorical(k)`), and `coef_` and `intercept_` are then centred over the classes (the
    probabilities do not change).

    **Arguments:** `l2` (the ridge penalty), `fit_intercept`, and `method`, `max_iter`, `tol` of
    `glmjax.fit_glm`.

    **Fitted attributes:** `classes_`, `coef_` `(1, n_features)` for two classes else
    `(n_classes, n_features)`, `intercept_` `(1,)` or `(n_classes,)`, `n_iter_`,
    `n_features_in_`, `feature_names_in_`, `result_` (the `glmjax.GLMResult`).

    Separable classes with ``l2=0`` have no maximum-likelihood estimate: the fit warns
    (``sklearn.exceptions.ConvergenceWarning``) and returns finite coefficients of arbitrary
    size that separate the classes.

    ```python
    import numpy as np
    from glmjax.sklearn import GLMClassifier
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    model = GLMClassifier().fit(X, np.array(["a", "b", "a", "b", "b"]))
    proba = model.predict_proba(X)  # columns in the order of model.classes_
    ```
    """

    def __init__(self, l2=0.0, fit_intercept=True, method="newton", max_iter=100, tol=1e-8):
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.method = method
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y, sample_weight=None) -> "GLMClassifier":
        """Fit to ``X`` `(n_samples, n_features)` and class labels ``y`` `(n_samples,)` with
        frequency-like ``sample_weight`` (default ones). Returns the estimator."""
        _check_hyperparameters(self)
        X, y = validate_data(self, X, y, dtype=_float_dtype())
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        k = self.classes_.size
        weights = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        present = np.unique(labels[weights > 0]).size
        if present < 2:
            raise ValueError(
                f"GLMClassifier needs samples of at least 2 classes with positive weight; got "
                f"{present} class"
            )
        if k == 2:
            family = Bernoulli()
        else:
            family = Categorical(k, minimal=self.l2 == 0)
        fit, coef = _fit(self, X, labels.astype(X.dtype), weights, family, None)
        intercept, coef = _split(self, coef)
        if k == 2:
            self.coef_, self.intercept_ = coef[None, :], np.atleast_1d(intercept)
        else:
            if family.minimal:  # the reference class's coefficients are 0
                coef = np.concatenate([coef, np.zeros_like(coef[:, :1])], axis=1)
                intercept = np.append(intercept, 0.0)
            self.coef_ = (coef - coef.mean(axis=1, keepdims=True)).T
            self.intercept_ = intercept - intercept.mean()
        self.result_ = fit
        self.n_iter_ = int(fit.n_iter)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The linear predictor: `(n_samples,)` log-odds of ``classes_[1]`` for two classes,
        else `(n_samples, n_classes)` log-probabilities up to a constant per row."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_float_dtype(), reset=False)
        eta = X @ self.coef_.T + self.intercept_
        return eta[:, 0] if self.classes_.size == 2 else eta

    def predict_log_proba(self, X) -> np.ndarray:
        """The log-probabilities `(n_samples, n_classes)`, columns in the order of
        ``classes_``."""
        eta = self.decision_function(X)
        if eta.ndim == 1:
            return np.stack([log_expit(-eta), log_expit(eta)], axis=1)
        return log_softmax(eta, axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """The class probabilities `(n_samples, n_classes)`, columns in the order of
        ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row `(n_samples,)`."""
        eta = self.decision_function(X)
        index = (eta > 0).astype(int) if eta.ndim == 1 else np.argmax(eta, axis=1)
        return self.classes_[index]
