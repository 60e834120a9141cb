r"""Predictions with standard errors and residuals of a fitted GLM (`GLMResult.get_prediction`,
`GLMResult.residuals`), as R's ``predict.glm(se.fit = TRUE)`` and ``residuals.glm`` and
statsmodels' ``GLMResults.get_prediction``.

Notation: a new row ``x_i`` (``p`` entries) has the linear predictor ``eta_i = x_i^T coef +
offset_i`` (`GLMResult.linear_predictor`), ``mu_i = g^-1(eta_i)`` its mean, ``C`` the fit's
covariance of ``coef`` (`GLMResult.cov`, row-major over ``coef.ravel()``, scaled by the estimated
dispersion and following ``cov_type``) and ``c`` the half-width of a ``1 - alpha`` interval in
standard errors (`GLMResult.critical_value`: Student's t on ``df_resid`` when the dispersion is
estimated, else normal).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from . import links
from ._inference import deviance_weights, row_deviances, saturated
from ._misc import check_alpha, check_choice
from ._objective import RowLikelihood, _masked
from ._validation import as_array

RESIDUAL_KINDS = ("deviance", "pearson", "working", "response")


class Prediction(eqx.Module):
    r"""Predicted means with delta-method standard errors and intervals (`get_prediction`); a
    pytree (batched under ``jax.vmap``). statsmodels' names.

    **Scalar families** (``n`` new rows):

    - `linear`: ``eta_i = x_i^T coef + offset_i``, `(n,)`;
    - `se_linear`: ``sqrt(x_i^T C x_i)``, `(n,)` (R's ``predict(type = "link", se.fit =
      TRUE)``);
    - `mean`: ``mu_i = g^-1(eta_i)``, `(n,)`;
    - `se_mean`: the delta method ``|d mu / d eta| se_linear`` (the derivative of the inverse link
      by autodiff; R's ``predict(type = "response", se.fit = TRUE)``);
    - `mean_ci_lower`, `mean_ci_upper`: the linear predictor's interval ``eta_i -/+ c
      se_linear`` mapped through ``g^-1``, its ends sorted (so a decreasing inverse link such as
      ``"inverse"`` gives ``lower <= upper``). The interval lies inside the mean's range and is
      not symmetric about `mean`; it needs the linear interval to lie where ``g^-1`` is defined
      (``eta > 0`` for ``"inverse"``: else NaN or a meaningless range).

    **Vector families** (`Categorical(k)`, ``m = natural_dim``): `linear` and `se_linear` are
    `(n, m)` (``se_linear`` the square roots of the diagonal of ``V_i = Cov(eta_i) = (I_m (x)
    x_i)^T C (I_m (x) x_i)``, an ``(m, m)`` matrix per row); `mean` holds the probabilities of
    all ``k`` classes ``pi_i(eta_i)`` (as `GLMResult.predict`), `(n, k)`, and `se_mean` their
    delta-method standard errors ``sqrt(diag(J_i V_i J_i^T))`` with ``J_i = d pi / d eta`` at
    ``eta_i`` (``(k, m)``, by autodiff; the Jacobian with respect to ``coef`` is ``J_i (x)
    x_i^T``, so this is the delta method in ``coef``). The interval of class ``j`` is built on
    the logit scale, where a probability is unbounded: ``logit(pi_ij) -/+ c s_ij`` with ``s_ij
    = se_mean_ij / (pi_ij (1 - pi_ij))`` (the delta method for the logit), mapped back by the
    sigmoid. It lies in ``(0, 1)``.
    """

    mean: Float[Array, "n *k"]
    se_mean: Float[Array, "n *k"]
    mean_ci_lower: Float[Array, "n *k"]
    mean_ci_upper: Float[Array, "n *k"]
    linear: Float[Array, "n *m"]
    se_linear: Float[Array, "n *m"]


def _linear_covariance(fit, X: Float[Array, "n p"]) -> Float[Array, "n *mm"]:
    """``Var(eta_i) = x_i^T C x_i``, `(n,)`, or ``Cov(eta_i)``, `(n, m, m)` for a vector
    family."""
    m = fit.family.natural_dim
    if m is None:
        return jnp.sum((X @ fit.cov) * X, axis=1)
    p = X.shape[1]
    return jnp.einsum("ij,jrls,il->irs", X, fit.cov.reshape(p, m, p, m), X)


def get_prediction(fit, X: ArrayLike, offset: ArrayLike | None, alpha) -> Prediction:
    """`Prediction` (its docstring has the definitions) of the fitted ``fit`` at new rows ``X``
    `(n, p)` with ``offset`` `(n,)` (or `(n, m)`) and level ``1 - alpha``.

    **Raises:** ``ValueError`` (before any compilation) for a fit without covariance, ``alpha``
    outside ``(0, 1)``, ``X`` without ``p`` columns or an ``offset`` of the wrong shape.
    """
    if fit.cov is None:
        raise ValueError("`get_prediction` needs the covariance: fit with covariance=True")
    check_alpha(alpha)
    X, offset = _design(fit, X, offset)
    return _get_prediction(fit, X, offset, jnp.asarray(alpha, fit.coef.dtype))


@eqx.filter_jit
def _get_prediction(fit, X, offset, alpha) -> Prediction:
    c = fit.critical_value(alpha)
    linear = fit.linear_predictor(X, offset)
    V = _linear_covariance(fit, X)
    if fit.family.natural_dim is None:
        se_linear = jnp.sqrt(jnp.maximum(V, 0))
        inverse = fit.link.inverse
        mean, slope = jax.jvp(inverse, (linear,), (jnp.ones_like(linear),))
        ends = inverse(linear - c * se_linear), inverse(linear + c * se_linear)
        return Prediction(
            mean=mean,
            se_mean=jnp.abs(slope) * se_linear,
            mean_ci_lower=jnp.minimum(*ends),
            mean_ci_upper=jnp.maximum(*ends),
            linear=linear,
            se_linear=se_linear,
        )
    se_linear = jnp.sqrt(jnp.maximum(jnp.diagonal(V, axis1=1, axis2=2), 0))
    probabilities = fit.family.response_mean
    mean = probabilities(linear)
    J = jax.vmap(jax.jacfwd(probabilities))(linear)
    se_mean = jnp.sqrt(jnp.maximum(jnp.einsum("ikr,irs,iks->ik", J, V, J), 0))
    logit = jnp.log(mean) - jnp.log1p(-mean)
    half = c * se_mean / (mean * (1 - mean))
    return Prediction(
        mean=mean,
        se_mean=se_mean,
        mean_ci_lower=jax.nn.sigmoid(logit - half),
        mean_ci_upper=jax.nn.sigmoid(logit + half),
        linear=linear,
        se_linear=se_linear,
    )


def _design(fit, X, offset) -> tuple[Float[Array, "n p"], Float[Array, "n *m"] | None]:
    """``X`` and ``offset`` as arrays of the fit's dtype, their shapes checked
    (`GLMResult.linear_predictor`'s rules) without computing anything."""
    dtype = fit.coef.dtype
    X = as_array(X, "X", dtype)
    offset = None if offset is None else as_array(offset, "offset", dtype)
    jax.eval_shape(fit.linear_predictor, X, offset)
    return X, offset


def _rows(fit, name: str, value, n: int, default: float) -> Float[Array, " n"]:
    """``value`` (``default`` if ``None``) as an `(n,)` array of the fit's dtype."""
    if value is None:
        return jnp.full((n,), default, fit.coef.dtype)
    value = as_array(value, name, fit.coef.dtype)
    if value.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},) to match `X`, got {value.shape}")
    return value


def residuals(
    fit,
    X: ArrayLike,
    y: ArrayLike,
    kind: str,
    weights: ArrayLike | None,
    offset: ArrayLike | None,
) -> Float[Array, " n *m"]:
    r"""The residuals of rows ``(X, y)`` with prior weights ``weights`` (ones) and ``offset``, as
    R's ``residuals.glm(type = kind)`` of the fit on those rows.

    With ``t_i = T(y_i)`` (``y_i`` itself for the scalar built-in families; `Binomial` responses
    are proportions, as in `fit_glm`), ``mu_i = g^-1(eta_i)``, the unit variance ``v_i =
    a''(theta_i)`` and the deviance weights ``omega_i`` of `glmjax._inference` (``w_i`` when the
    dispersion is estimated, else ``w_i / phi``: for `Binomial` the number of trials, R's prior
    weights; the estimated dispersion is never divided out, as in R):

    - ``"response"``: ``t_i - mu_i``;
    - ``"working"``: ``(t_i - mu_i) / (d mu / d eta)(eta_i)`` (by autodiff);
    - ``"pearson"``: ``(t_i - mu_i) sqrt(omega_i / v_i)`` (their squares sum to Pearson's
      ``X2``, the fit's ``scale * df_resid`` for an estimating family);
    - ``"deviance"``: ``sign(t_i - mu_i) sqrt(omega_i d_i)`` with ``d_i`` the row's deviance
      term (`glmjax._inference.row_deviances`; their squares sum to the fit's `deviance`).

    Rows with weight 0 have Pearson and deviance residuals 0, as R.

    **Vector families** (`Categorical`): only ``kind="response"``, the residual of the
    sufficient statistic ``t_i - E[T(y_i)]``, `(n, m)`: for `Categorical(k, minimal=False)` the
    one-hot labels minus all ``k`` probabilities; for ``minimal=True`` its first ``k - 1``
    columns (the reference class's column is minus their sum). A vector residual has no sign and
    no scalar variance to standardise by, so the other kinds raise.

    **Raises:** ``ValueError`` (before any compilation) for an unknown ``kind`` (or one other than
    ``"response"`` for a vector family), ``X`` without ``p`` columns, ``y`` or ``weights`` not
    `(n,)`, or an ``offset`` of the wrong shape.
    """
    check_choice(kind, "kind", RESIDUAL_KINDS)
    family = fit.family
    if family.natural_dim is not None and kind != "response":
        raise ValueError(
            f"`kind` must be 'response' for {family.name} (a vector natural parameter), "
            f"got {kind!r}"
        )
    X, offset = _design(fit, X, offset)
    n = X.shape[0]
    y = _rows(fit, "y", y, n, 0.0)
    w = _rows(fit, "weights", weights, n, 1.0)
    return _residuals(fit, X, y, kind, w, offset)


@eqx.filter_jit
def _residuals(fit, X, y, kind: str, w, offset) -> Float[Array, " n *m"]:
    family = fit.family
    eta = fit.linear_predictor(X, offset)
    t = jax.vmap(family.sufficient_statistic)(y).astype(eta.dtype)
    model = RowLikelihood(family, *links.get(fit.link, family))
    if kind == "response":
        return t - jax.vmap(model.mean)(eta)
    mu, slope = jax.jvp(jax.vmap(model.mean), (eta,), (jnp.ones_like(eta),))
    if kind == "working":
        return (t - mu) / slope
    omega = deviance_weights(family, w)
    if kind == "pearson":
        unit_variance = jax.vmap(jax.hessian(family.log_partition))(jax.vmap(model.natural)(eta))
        return (t - mu) * jnp.sqrt(_masked(omega, 1 / unit_variance))
    sat = jax.vmap(lambda ti: saturated(family, ti))(t)
    d, _ = row_deviances(model, eta, t, sat)
    return jnp.where(t > mu, 1.0, -1.0) * jnp.sqrt(_masked(omega, d))
