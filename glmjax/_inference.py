r"""Inference for a fitted GLM, from sums over rows (so in-memory, sharded and streamed fits share
it), defined as R's ``glm`` and ``summary.glm`` define it.

Notation: ``eta_i = x_i^T coef + offset_i``, ``theta_i`` its natural parameter, ``mu_i`` its mean,
``v_i = hessian a(theta_i)`` the unit variance, prior weights ``w_i``; ``n_obs`` counts the rows
with ``w_i > 0`` (R's ``nobs``). Families that estimate their dispersion
(`ExponentialFamily.estimates_dispersion`: Gaussian, Gamma, inverse Gaussian) use
``omega_i = w_i``; the others ``omega_i = w_i / phi`` (so `Binomial(trials)` with `weights` has
``trials * w_i`` trials per row, R's ``weights``).

**Deviance** (R's unscaled deviance): ``D = sum_i 2 omega_i [a*(t_i) - (<theta_i, t_i> -
a(theta_i))]`` with ``a*(t) = sup_theta <theta, t> - a(theta)`` the saturated model's value: the
Fenchel-Young bound at ``theta* = link(t')``, ``t'`` the statistic moved a relative ``eps^{3/4}``
towards the family's central mean (on the boundary of the mean space — a count of 0, a one-hot
label — the supremum is a limit at infinite ``theta``; the bound's gap is ``O(eps^{3/4})`` there
and ``O(eps^{3/2})`` inside). Each row's term is clipped at 0 (rounding). ``null_deviance`` is
``D`` of the intercept-only model (with the same link, offset and weights; fitted again when there
is an offset) when ``X`` has a constant non-zero column, else of ``eta = offset``, as R.

**Dispersion.** ``scale = X2 / df_resid`` for estimating families, Pearson's
``X2 = sum_i w_i (t_i - mu_i)^2 / v_i``, as R's ``summary.glm`` (NaN when ``df_resid <= 0``);
``scale = 1`` otherwise.

**Covariance.** ``cov = scale * K^+`` with the information ``K = n H / phi_f`` (``phi_f`` the
family's fixed dispersion, 1 for estimating families) and ``H`` the Hessian of `fit_glm`'s
objective with the expected information (``information="observed"``: observed) — including the
ridge, so with ``l2 > 0`` this is the inverse Hessian of the penalised likelihood (a
Laplace/Bayesian covariance; the p-values are then only approximate). ``K`` is inverted after
scaling it to unit diagonal; the known null directions of an over-parametrised family give the
covariance of the minimum-norm (sum-zero) coefficients, and any other null direction (collinear
columns, no information at all) an *infinite* variance of the coefficients involved.
``stderr = sqrt(diag cov)``, ``zvalues = coef / stderr``; two-sided p-values from the normal
distribution, or from Student's t with ``df_resid`` degrees of freedom when the dispersion is
estimated.

**Robust covariance** (``cov_type``), as R's ``sandwich::vcovHC`` and ``vcovCL``: ``cov = B M
B`` with the bread ``B = (n H)^+`` (the covariance above without the dispersion, which cancels)
and the meat ``M = sum_i U_i U_i^T`` of the rows' scores ``U_i = x_i (kron) w_i d ell_i / d
eta`` (R's ``estfun``); HC1 multiplies by ``n_obs / (n_obs - rank)``; HC2 and HC3 divide ``U_i``
by ``sqrt(1 - h_i)`` and ``1 - h_i`` (hat values ``h_i = w_i c_i x_i^T B x_i``, ``c_i`` the
curvature with the fit's information: R's ``hatvalues`` for the expected one; scalar families
only); ``"cluster"`` sums ``U_i`` within each cluster before the product and multiplies by ``G /
(G - 1)`` (``G`` clusters with a row of weight > 0: vcovCL's default for a glm, Stata's
``vce(cluster)``; statsmodels also multiplies by ``(n - 1) / (n - p)``, and its GLM returns HC0
for HC1-HC3). Rows of weight 0 count nowhere (R's ``vcovHC`` counts them in HC1's ``n``). With a
ridge the bread is the penalised one. z (t) values and p-values use the chosen covariance with
the same reference distribution as above (``lmtest::coeftest`` on a glm uses the normal).

**Log-likelihood**, as R's ``logLik.glm``: ``sum_i [lb_i + w_i (<theta_i, t_i> - a(theta_i)) /
phi]`` with ``lb_i`` the family's `weighted_log_base_measure` (frequency weights ``w_i log b(y_i)``
for Poisson, Gamma, ...; ``log b`` at dispersion ``phi / w_i`` for the Gaussian; the binomial
coefficient of ``trials * w_i`` trials for the Binomial), at the family's ``phi``, or for an
estimating family at R's `loglik_dispersion` (Gaussian ``D / n_obs``, the MLE; Gamma and inverse
Gaussian ``D / sum w``). ``aic = -2 loglik + 2 k``, ``bic = -2 loglik + log(n_obs) k`` with
``k = rank (+ 1 for an estimated dispersion)``, ``rank = p x natural_rank``; ``df_resid = n_obs -
rank``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._batching import rare_cond
from ._distributions import normal_two_sided, t_two_sided
from ._objective import (
    RowLikelihood,
    Rows,
    _masked,
    fill_null_space,
    null_projector,
    packed_kron_gram,
    unpack_gram,
)
from ._solution import ResultCode
from ._solver import solve_newton
from ._solver._base import standardised_max

_NOT_OPTIMAL_STEP = 1e-2


def saturated(family, t: Array) -> Array:
    """``a*(t)`` for one row (module docstring), from the family's canonical link."""
    shrink = jnp.finfo(t.dtype).eps ** 0.75
    centre = family.mean(jnp.full(t.shape, family.eta_start, t.dtype))
    best = family.link((1 - shrink) * t + shrink * centre)
    return jnp.sum(best * t) - family.log_partition(best)


class FitSums(eqx.Module):
    """Sums over rows at the fitted coefficients (they add up over chunks and devices)."""

    deviance: Float[Array, ""]
    null_deviance: Float[Array, ""]
    pearson: Float[Array, ""]
    loglik_core: Float[Array, ""]
    log_base: Float[Array, ""]
    weight_sum: Float[Array, ""]
    nobs: Int[Array, ""]
    fisher: Float[Array, "p p *u"] | None


def deviance_weights(family, w: Float[Array, " c"]) -> Float[Array, " c"]:
    """``omega_i`` (module docstring): ``w_i`` for an estimating family, else ``w_i / phi``."""
    return w if family.estimates_dispersion else w / jnp.asarray(family.dispersion, w.dtype)


def row_deviances(
    model: RowLikelihood, eta, t, sat
) -> tuple[Float[Array, " c"], Float[Array, " c"]]:
    """Each row's deviance term before its weight, ``2 [a*(t_i) - ll_i]`` clipped at 0 (module
    docstring), and ``ll_i = <theta_i, t_i> - a(theta_i)``; ``sat``: the rows' `saturated`."""
    theta = jax.vmap(model.natural)(eta)
    inner = jnp.sum(theta * t, axis=-1) if t.ndim > 1 else theta * t
    ll = inner - jax.vmap(model.family.log_partition)(theta)
    return jnp.maximum(2 * (sat - ll), 0.0), ll


def fit_sums(
    model: RowLikelihood, coef, null_coef, rows: Rows, *, information: str | None
) -> FitSums:
    """`FitSums` of one chunk of rows; ``null_coef`` is the null model's ``eta - offset``;
    ``information`` (``None``: skip) the curvature of the Fisher information to add up."""
    family = model.family
    X, t, w = rows.X, rows.t, rows.weights
    eta = X @ coef + rows.offset
    omega = deviance_weights(family, w)
    sat = jax.vmap(lambda ti: saturated(family, ti))(t)

    def deviance(eta):
        d, ll = row_deviances(model, eta, t, sat)
        return jnp.sum(_masked(omega, d)), ll

    dev, ll = deviance(eta)
    null_dev, _ = deviance(rows.offset + null_coef)
    if family.estimates_dispersion:
        mu = jax.vmap(model.mean)(eta)
        unit_variance = jax.vmap(jax.hessian(family.log_partition))(jax.vmap(model.natural)(eta))
        pearson = jnp.sum(_masked(w, (t - mu) ** 2 / unit_variance))
    else:
        pearson = jnp.zeros((), X.dtype)
    log_base = jnp.sum(jax.vmap(family.weighted_log_base_measure)(rows.y, w))
    fisher = None
    if information is not None:
        curv = jax.vmap(lambda e, ti: model.curvature(e, ti, information))(eta, t)
        fisher = packed_kron_gram(X, w, curv)
    return FitSums(
        deviance=dev,
        null_deviance=null_dev,
        pearson=pearson,
        loglik_core=jnp.sum(_masked(w, ll)),
        log_base=log_base,
        weight_sum=jnp.sum(jnp.where(w > 0, w, 0.0)),
        nobs=jnp.sum(w > 0),
        fisher=fisher,
    )


def log_base_at(family, phi, rows: Rows) -> Float[Array, ""]:
    """``sum_i lb_i`` of an estimating family at dispersion ``phi`` (its log-likelihood's
    ``log b`` part at R's `loglik_dispersion`; a sum over rows of ``y`` alone)."""
    at = family.with_dispersion(phi)
    return jnp.sum(jax.vmap(at.weighted_log_base_measure)(rows.y, rows.weights))


def covariance(H: Float[Array, "q q"], factor, P) -> tuple[Float[Array, "q q"], Bool[Array, " q"]]:
    """``(factor * H)^+`` (module docstring: unit-diagonal scaling, the known null space ``P``
    filled then removed) and which coefficients lie in an unexpected null direction (their
    variance is set to ``inf``).

    The inverse of the unit-diagonal matrix ``S`` comes from its Cholesky factor when that is
    finite and ``q tr(S^-1) < 1 / (q eps)``: then ``cond(S) <= |S| |S^-1| <= q tr(S^-1)``, so
    every eigenvalue exceeds ``q eps`` times the largest and the eigendecomposition would keep
    them all. Otherwise (under ``vmap``: only when some member needs it, `rare_cond`) the
    eigendecomposition drops the eigenvalues below that bound."""
    K = factor * H
    q = K.shape[0]
    eps = jnp.finfo(K.dtype).eps
    filled = fill_null_space(K, P)
    diag = jnp.diagonal(filled)
    d = 1 / jnp.sqrt(jnp.where(diag > 0, diag, 1))
    S = d[:, None] * filled * d[None, :]
    inv = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(S), True), jnp.eye(q, dtype=K.dtype))
    ok = jnp.all(jnp.isfinite(inv)) & (q * q * eps * jnp.trace(inv) < 1)
    common = (inv, jnp.zeros(q, bool))
    inv, unidentified = rare_cond(~ok, _pseudo_inverse, common, S)
    cov = d[:, None] * inv * d[None, :]
    if P is not None:
        cov = cov - P.astype(K.dtype) / (jnp.trace(K) / q)
    cov = jnp.where(jnp.diag(unidentified), jnp.inf, cov)
    return cov, unidentified


def _pseudo_inverse(S):
    """`covariance`'s fallback: ``S^+`` over the eigenvalues above ``q eps max e``, and which
    coordinates lie in the dropped directions."""
    q = S.shape[0]
    eps = jnp.finfo(S.dtype).eps
    e, V = jnp.linalg.eigh(S)
    keep = e > q * eps * jnp.max(e)
    inv = jnp.where(keep, 1 / jnp.where(keep, e, 1), 0)
    unidentified = jnp.sum(jnp.where(keep, 0.0, V**2), axis=1) > jnp.sqrt(eps)
    return (V * inv) @ V.T, unidentified


def infer(
    family,
    coef,
    grad,
    sums: FitSums,
    log_base_estimated,
    *,
    hessian,
    n_rows: int,
    has_intercept,
    l2,
    result,
    covariance_: bool,
    check_optimum: bool,
    scale_columns,
    cov_type: str = "nonrobust",
    meat_of=None,
) -> tuple[dict, Array]:
    """The inference quantities (module docstring) from `FitSums` and, for an estimating family,
    ``log_base_estimated(phi)`` (its ``sum lb_i`` at a dispersion), as a dict of `GLMResult`
    fields, and the result code. ``hessian`` is the Hessian of the objective at ``coef`` with the
    wanted information (ridge included); ``check_optimum`` (first-order solvers): a
    `ResultCode.successful` becomes `ResultCode.not_optimal` when a Newton step would still move
    the standardised coefficients by more than ``1e-2 (1 + max |coef s|)``. A robust
    ``cov_type`` takes its meat from ``meat_of(bread)`` (`meat_sums` summed over the rows).
    Every floating quantity is NaN when the fit had no valid start or invalid data."""
    dtype = coef.dtype
    p = coef.shape[0]
    nobs = sums.nobs
    rank = p * family.natural_rank
    df_resid = (nobs - rank).astype(dtype)
    df_null = (nobs - jnp.where(has_intercept, family.natural_rank, 0)).astype(dtype)
    estimated = family.estimates_dispersion
    if estimated:
        scale = jnp.where(
            df_resid > 0, sums.pearson / jnp.where(df_resid > 0, df_resid, 1), jnp.nan
        )
        phi = family.loglik_dispersion(sums.deviance, sums.weight_sum, nobs.astype(dtype))
        loglik = log_base_estimated(phi) + sums.loglik_core / phi
    else:
        scale = jnp.ones((), dtype)
        loglik = sums.log_base + sums.loglik_core / jnp.asarray(family.dispersion, dtype)
    k = rank + (1 if estimated else 0)
    P = null_projector(family, l2, coef.shape)
    stderr = cov = zvalues = pvalues = None
    if covariance_:
        phi_fixed = jnp.asarray(1.0 if estimated else family.dispersion, dtype)
        unscaled, unidentified = covariance(hessian, n_rows / phi_fixed, P)
        if cov_type == "nonrobust":
            cov = scale * unscaled
        else:
            # the bread (sum_i w_i c_i x_i x_i^T)^+: the dispersion cancels in a sandwich
            bread = jnp.where(unidentified[:, None] | unidentified[None, :], 0.0, unscaled)
            meat, counts = meat_of(bread / phi_fixed)
            cov = sandwich(bread / phi_fixed, meat, unidentified, counts, cov_type=cov_type,
                           nobs=nobs, rank=rank)  # fmt: skip
        stderr = jnp.sqrt(jnp.diagonal(cov)).reshape(coef.shape)
        zvalues = coef / stderr
        pvalues = t_two_sided(zvalues, df_resid) if estimated else normal_two_sided(zvalues)
    if check_optimum and hessian is not None:
        step, _ = solve_newton(fill_null_space(hessian, P), grad.reshape(-1))
        moves = standardised_max(step.reshape(coef.shape), scale_columns)
        limit = _NOT_OPTIMAL_STEP * (1 + standardised_max(coef, scale_columns))
        result = jnp.where(
            (result == ResultCode.successful) & ~(moves <= limit), ResultCode.not_optimal, result
        ).astype(jnp.int32)
    void = (result == ResultCode.nonfinite) | (result == ResultCode.invalid_data)
    fields = {
        "stderr": stderr,
        "cov": cov,
        "zvalues": zvalues,
        "pvalues": pvalues,
        "loglik": loglik,
        "deviance": sums.deviance,
        "null_deviance": sums.null_deviance,
        "aic": -2 * loglik + 2 * k,
        "bic": -2 * loglik + jnp.log(nobs.astype(dtype)) * k,
        "scale": scale,
    }
    fields = {key: None if v is None else jnp.where(void, jnp.nan, v) for key, v in fields.items()}
    fields.update(df_resid=df_resid, df_null=df_null, nobs=nobs, has_intercept=has_intercept)
    return fields, result


def fisher_hessian(sums: FitSums, family, l2, coef_shape, n_rows: int) -> Float[Array, "q q"]:
    """The penalised Hessian of the objective from the summed Fisher information."""
    l2 = jnp.broadcast_to(l2, coef_shape).reshape(-1)
    return unpack_gram(sums.fisher, family.natural_dim) / n_rows + jnp.diag(l2)


COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


def row_scores(model: RowLikelihood, coef, rows: Rows) -> Float[Array, "c q"]:
    """Each row's score of the (unpenalised) objective, ``U_i = x_i (kron) w_i d ell / d eta``
    (``(c, p m)`` row-major for a vector family): the rows of R's ``estfun`` for a glm (its
    sign and the dispersion do not matter in a sandwich)."""
    eta = rows.X @ coef + rows.offset
    s = _masked(rows.weights, jax.vmap(model.score)(eta, rows.t))
    u = rows.X[:, :, None] * s.reshape(s.shape[0], 1, -1)
    return u.reshape(s.shape[0], -1)


def leverage(model: RowLikelihood, coef, bread, rows: Rows, information: str) -> Float[Array, " c"]:
    """The hat values ``h_i = w_i c_i x_i^T B x_i`` of a scalar family (``c_i`` the curvature of
    ``ell`` with the fit's information, ``B = (sum_i w_i c_i x_i x_i^T)^+``): R's
    ``hatvalues`` of a glm with the expected information."""
    eta = rows.X @ coef + rows.offset
    c = jax.vmap(lambda e, t: model.curvature(e, t, information))(eta, rows.t)
    return _masked(rows.weights, c * jnp.sum((rows.X @ bread) * rows.X, axis=1))


def meat_sums(
    model: RowLikelihood, coef, rows: Rows, groups, *, cov_type: str, bread, n_groups: int,
    information: str,
) -> tuple[Float[Array, "q q"] | Float[Array, "g q"], Int[Array, " g"]]:  # fmt: skip
    """One chunk's part of the sandwich's meat, a sum over its rows: ``sum_i U_i U_i^T``
    (`row_scores`; HC2 / HC3 scale ``U_i`` by ``(1 - h_i)^{-1/2}`` / ``(1 - h_i)^{-1}``,
    `leverage` with the bread ``B``), and per cluster the number of rows with weight > 0. For
    ``"cluster"`` the sum is of the scores within each of the ``n_groups`` clusters (``groups``:
    labels ``0..n_groups - 1``), ``(G, q)``: a cluster may span chunks, so the product waits
    for the sum over all of them (`sandwich`)."""
    U = row_scores(model, coef, rows)
    if cov_type in ("HC2", "HC3"):
        h = leverage(model, coef, bread, rows, information)
        U = U * ((1 - h) ** (-0.5 if cov_type == "HC2" else -1.0))[:, None]
    if cov_type != "cluster":
        return U.T @ U, jnp.zeros(1, jnp.int32)
    Ug = jax.ops.segment_sum(U, groups, num_segments=n_groups)
    counts = jax.ops.segment_sum((rows.weights > 0).astype(jnp.int32), groups, n_groups)
    return Ug, counts


def sandwich(bread, meat, unidentified, counts, *, cov_type: str, nobs, rank):
    """``B M B`` (``meat``: `meat_sums` over all rows; for ``"cluster"`` the clusters' score
    sums ``S``, and ``M = S^T S``) with R's small-sample factors (``sandwich::vcovHC``,
    ``vcovCL``): HC1 times ``n_obs / (n_obs - rank)``; ``"cluster"`` times ``G / (G - 1)``,
    ``G`` the clusters with a row of weight > 0. Coefficients in an unexpected null direction
    keep an infinite variance."""
    dtype = bread.dtype
    mask = unidentified[:, None] | unidentified[None, :]
    B = jnp.where(mask, 0.0, bread)
    if cov_type == "cluster":
        meat = meat.T @ meat
    cov = B @ meat @ B
    if cov_type == "HC1":
        cov = cov * (nobs / (nobs - rank)).astype(dtype)
    elif cov_type == "cluster":
        G = jnp.sum(counts > 0).astype(dtype)
        cov = cov * G / (G - 1)
    return jnp.where(jnp.diag(unidentified), jnp.inf, cov)
