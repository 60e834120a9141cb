r"""`GLMResult`: the fitted model and its inference, defined as R's ``glm`` defines them.

Notation: ``n`` rows, ``eta_i = x_i^T coef + offset_i``, ``mu_i = grad a(eta_i)``, the unit
variance ``v_i = hessian a(eta_i)`` (``jax.hessian`` of the family's log-partition; no variance
function is written by hand), prior weights ``w_i``. Rows with ``w_i = 0`` drop out; ``n_obs`` is
the number of rows with ``w_i > 0`` (R's ``nobs``).

**Dispersion.** Gaussian and Gamma have a dispersion ``phi`` that is *estimated* (the family's own
``scale``/``shape`` is ignored): ``scale = X2 / df_resid`` with Pearson's statistic
``X2 = sum_i w_i (y_i - mu_i)^2 / v_i``, as R's ``summary.glm``. Every other family has its
dispersion fixed (``scale = 1``), and its prior weights are ``omega_i = w_i / phi_family`` — so
`Binomial(trials)` with `weights` means ``trials * w_i`` trials per row, R's ``weights``. For the
estimated families ``omega_i = w_i``.

**Covariance.** ``cov = scale * K^{-1}`` with the (penalised) Fisher information
``K = sum_i omega_i x_i x_i^T (kron) v_i + n diag(l2) / phi_family`` — for a canonical link the
observed and expected information agree, and with ``l2 > 0`` this is the inverse Hessian of the
penalised negative log-likelihood (a Laplace/Bayesian covariance; the p-values are then only
approximate). ``coef`` is flattened row-major, so ``cov`` is ``(p m, p m)`` for a vector family.
For `Categorical(k, minimal=False)` (and collinear ``X``) ``K`` is singular and ``cov`` is its
pseudo-inverse (the covariance of the minimum-norm coefficients). ``stderr = sqrt(diag cov)``,
``zvalues = coef / stderr``; p-values are two-sided, from the normal distribution, or from Student's
t with ``df_resid`` degrees of freedom when the dispersion is estimated (R's ``summary.glm``).

**Deviance** (R's unscaled deviance): ``D = 2 sum_i omega_i [a*(T(y_i)) - (<eta_i, T(y_i)> -
a(eta_i))]``, where ``a*(t) = sup_eta <eta, t> - a(eta)`` is the convex conjugate, the saturated
model's value, found by Newton's method (`_saturated`). ``null_deviance`` is ``D`` of the
intercept-only model (fitted here, with the same offset and weights) when ``X`` has a constant
non-zero column, otherwise of ``eta = offset``, as R.

**Log-likelihood**, as R's ``logLik.glm`` (``-aic/2`` of R's ``family()$aic`` plus the dispersion
term):

| family | ``loglik`` |
|---|---|
| Gaussian | ``-(n_obs/2) (log(2 pi D / n_obs) + 1) + (1/2) sum_{w_i>0} log w_i`` |
| Gamma | ``sum_i w_i log Gamma(y_i; shape 1/d, mean mu_i)`` with ``d = D / sum_i w_i`` |
| Binomial | ``sum_i log dbinom(n_i y_i; n_i, mu_i)`` with ``n_i = trials * w_i`` trials |
| others | ``sum_i w_i log p(y_i; eta_i)`` (frequency weights, as R's poisson) |

(the Gaussian's is at the MLE dispersion ``D / n_obs``, the Gamma's at ``D / sum w``, as R).

``aic = -2 loglik + 2 k`` and ``bic = -2 loglik + log(n_obs) k`` with ``k = rank + 1`` for Gaussian
and Gamma (the dispersion is a parameter) and ``k = rank`` otherwise; ``rank = p m`` (``p (k - 1)``
for `Categorical(k, minimal=False)`); ``X`` is assumed to have full column rank. ``df_resid = n_obs
- rank``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import betainc, erfc, gammaln
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ._families import Binomial, Categorical, Gamma, Gaussian
from ._family import ExponentialFamily
from ._objective import GLMObjective
from ._sharding import row_blocks
from ._solvers import ResultCode, Solution

_ESTIMATED_DISPERSION = (Gaussian, Gamma)


def _estimates_dispersion(family: ExponentialFamily) -> bool:
    return isinstance(family, _ESTIMATED_DISPERSION)


def _rank(family: ExponentialFamily, p: int) -> int:
    m = family.natural_dim or 1
    # an over-parametrised family is invariant under eta -> eta + c 1: one lost dimension per column
    return p * m if family.identifiable else p * (m - 1)


# ----- maximising concave functions row by row --------------------------------------------------


def _restrict(family, eta):
    """Coordinates of ``eta`` in which ``a`` is strictly convex: for an over-parametrised family
    (invariant under ``eta + c 1``, as `Categorical(k, minimal=False)`), fix the last entry to 0."""
    return eta if family.identifiable else eta[..., :-1] - eta[..., -1:]


def _embed(family, e):
    if family.identifiable:
        return e
    return jnp.concatenate([e, jnp.zeros(e.shape[:-1] + (1,), e.dtype)], axis=-1)


def _maximise_rows(fun, x0, args, *, derivatives=None, max_iter: int = 200):
    """Maximise the concave ``fun(x_r, *args_r)`` for every row ``r`` of ``x0`` at once.

    Newton's method with a line search on each row: the step is halved until Armijo's condition
    holds (``fun`` finite and increased by at least ``1e-4 t`` times the Newton decrement
    ``-g^T H^{-1} g``, up to rounding), or, when the full step is accepted, doubled (up to 64 times)
    while that increases ``fun`` further. Doubling matters where the maximiser is far out along a
    direction in which ``a`` grows exponentially (a mean near the boundary): plain Newton crawls
    there one unit of ``eta`` per iteration. A row stops when its decrement is at rounding level or
    no step is accepted, all rows after ``max_iter``. ``x0`` is ``(r,)`` (scalar unknowns) or
    ``(r, d)``; ``derivatives(x, *args)`` returns the rows' gradients and Hessians (default: by
    ``jax.grad``/``jax.hessian`` of ``fun``).
    """
    value = jax.vmap(fun)
    if derivatives is None:
        grad, hess = jax.vmap(jax.grad(fun)), jax.vmap(jax.hessian(fun))

        def derivatives(x, *args):
            return grad(x, *args), hess(x, *args)

    eps = jnp.finfo(x0.dtype).eps

    def rows(a, x):
        return a if x.ndim == 1 else a[:, None]

    def body(state):
        k, x, done = state
        f = value(x, *args)
        g, H = derivatives(x, *args)
        if x.ndim == 1:
            step = -g / H
            decrement = g * step
        else:
            step = -jnp.linalg.solve(H, g[..., None])[..., 0]
            decrement = jnp.sum(g * step, axis=-1)
        tol = 16 * eps * (1 + jnp.abs(f))
        # a numerically singular H (curvature at rounding level) ends the row where it is
        finite = jnp.isfinite(decrement)
        step = jnp.where(rows(finite, x), step, 0)
        decrement = jnp.where(finite, decrement, 0)

        def at(t):
            return value(x + rows(t, x) * step, *args)

        def bad(t):
            fn = at(t)
            return ~(jnp.isfinite(fn) & (fn >= f + 1e-4 * t * decrement - tol)) & (t > 2.0**-60)

        def longer(t):
            fn, f2 = at(t), at(2 * t)
            return (t >= 1) & (t < 64) & jnp.isfinite(f2) & (f2 > fn + tol)

        t = lax.while_loop(
            lambda t: jnp.any(bad(t)), lambda t: jnp.where(bad(t), 0.5 * t, t), jnp.ones_like(f)
        )
        t = lax.while_loop(
            lambda t: jnp.any(longer(t)), lambda t: jnp.where(longer(t), 2 * t, t), t
        )
        stuck = t <= 2.0**-60
        moved = jnp.where(rows(done | stuck, x), x, x + rows(t, x) * step)
        return k + 1, moved, done | stuck | ~(decrement > tol)

    def cond(state):
        k, _, done = state
        return (k < max_iter) & ~jnp.all(done)

    done = jnp.zeros(x0.shape[:1], bool)
    return lax.while_loop(cond, body, (jnp.array(0), x0, done))[1]


def _inner(family, eta, t):
    """``<eta, T>`` over the last axis of a vector family."""
    return eta * t if family.natural_dim is None else jnp.sum(eta * t, axis=-1)


def _saturated(family, t, start):
    r"""``a*(t_i) = sup_eta <eta, t_i> - a(eta)`` and its maximiser for every row, by Newton from
    ``start``.

    On the boundary of the mean space (a count of 0, a one-hot label) the supremum is a limit at
    infinite ``eta``. So the maximiser is found for ``t_i`` moved a relative ``eps^{3/4}`` towards
    the mean at the family's central ``eta_start`` (uniform class probabilities for `Categorical`),
    and evaluated at the true ``t_i`` (the Fenchel-Young bound, whose gap is the Bregman divergence
    of the move: ``O(eps^{3/4})`` on the boundary, ``O(eps^{3/2})`` inside).
    """
    shrink = jnp.finfo(t.dtype).eps ** 0.75
    centre = family.mean(jnp.full(start.shape[1:], family._eta_start, start.dtype))
    target = (1 - shrink) * t + shrink * centre

    def fun(e, ti):
        full = _embed(family, e)
        return _inner(family, full, ti) - family.log_partition(full)

    def derivatives(e, ti):
        # the family's own (autodiff-derived, vectorised) mean and variance; restricted to the
        # free coordinates of an over-parametrised family
        full = _embed(family, e)
        g = ti - family.mean(full)
        H = -family.variance(full) / jnp.asarray(family.dispersion, e.dtype)
        if family.identifiable:
            return g, H
        return g[..., :-1], H[..., :-1, :-1]

    best = _maximise_rows(fun, _restrict(family, start), (target,), derivatives=derivatives)
    best = _embed(family, best)
    return _inner(family, best, t) - family.log_partition(best), best


def _null_eta(family, t, omega, offset, c0):
    """The linear predictor ``c + offset_i`` of the intercept-only model (weighted MLE), by Newton
    from ``c0``."""

    def fun(c, t, omega, offset):
        full = _embed(family, c) + offset
        return jnp.sum(omega * (_inner(family, full, t) - family.log_partition(full)))

    c = _maximise_rows(fun, _restrict(family, c0)[None], (t[None], omega[None], offset[None]))[0]
    return _embed(family, c) + offset


# ----- the result -------------------------------------------------------------------------------


class GLMResult(eqx.Module):
    """A fitted GLM (a pytree: under ``jax.vmap`` every array gets a leading batch axis).

    The definitions (R's ``glm``/``summary.glm``) are in `glmjax._result`'s module docstring.

    - `family`: the family.
    - `coef`: coefficients, `(p,)` or `(p, m)`; `stderr`, `zvalues` (t values when the dispersion
      is estimated), `pvalues` have the same shape; `cov` is `(q, q)`, ``q = coef.size``, row-major.
      All four are ``None`` for a fit with ``covariance=False``.
    - `loglik`, `deviance`, `null_deviance`, `aic`, `bic`: as R's ``logLik``, ``deviance``,
      ``null.deviance``, ``AIC``, ``BIC``.
    - `scale`: the dispersion (Pearson estimate for Gaussian/Gamma, else 1).
    - `df_resid`, `df_null`, `nobs`: residual and null degrees of freedom, rows with weight > 0.
    - `has_intercept`: whether ``X`` has a constant non-zero column.
    - `n_iter`, `converged`, `grad_norm`, `history`, `result`: from the solver (`result` is a
      `ResultCode`; `message` says it in words).
    """

    family: ExponentialFamily
    coef: Float[Array, " p *m"]
    stderr: Float[Array, " p *m"] | None
    cov: Float[Array, "q q"] | None
    zvalues: Float[Array, " p *m"] | None
    pvalues: Float[Array, " p *m"] | None
    loglik: Float[Array, ""]
    deviance: Float[Array, ""]
    null_deviance: Float[Array, ""]
    aic: Float[Array, ""]
    bic: Float[Array, ""]
    scale: Float[Array, ""]
    df_resid: Float[Array, ""]
    df_null: Float[Array, ""]
    nobs: Int[Array, ""]
    has_intercept: Bool[Array, ""]
    n_iter: Int[Array, ""]
    converged: Bool[Array, ""]
    grad_norm: Float[Array, ""]
    history: Float[Array, " max_iter+1"]
    result: Int[Array, ""]

    @property
    def estimated_dispersion(self) -> bool:
        """Whether `scale` is estimated (Gaussian, Gamma) rather than fixed at 1."""
        return _estimates_dispersion(self.family)

    @property
    def message(self) -> str:
        """Why the solver stopped, in words (for an unbatched result)."""
        return ResultCode(int(self.result)).message

    def predict(self, X: ArrayLike, offset: ArrayLike | None = None) -> Float[Array, " n k"]:
        """The fitted mean ``E[T(y)] = grad a(X @ coef + offset)``; for `Categorical(k)` the
        probabilities of all ``k`` classes (also when ``minimal=True``, where the last class, whose
        ``T`` is zero, has probability ``exp(-a(eta))``)."""
        X = jnp.asarray(X, self.coef.dtype)
        p = self.coef.shape[-2] if self.family.natural_dim is not None else self.coef.shape[-1]
        if X.ndim != 2 or X.shape[1] != p:
            raise ValueError(f"`X` must have shape (n, {p}), got {X.shape}")
        eta = X @ self.coef
        if offset is not None:
            offset = jnp.asarray(offset, self.coef.dtype)
            if offset.shape not in {eta.shape, eta.shape[:1]}:
                raise ValueError(
                    f"`offset` must have shape {eta.shape[:1]} or {eta.shape}, got {offset.shape}"
                )
            eta = eta + (offset if offset.shape == eta.shape else offset[:, None])
        mean = self.family.mean(eta)
        if isinstance(self.family, Categorical) and self.family.minimal:
            last = jnp.exp(-self.family.log_partition(eta))
            mean = jnp.concatenate([mean, last[:, None]], axis=1)
        return mean

    def summary(self, names: list[str] | None = None) -> "Summary":
        """A printable coefficient table, statsmodels-like; ``names`` label the rows of ``coef``."""
        if self.coef.ndim != (1 if self.family.natural_dim is None else 2):
            raise ValueError("`summary` needs a single fit; index a batched result first")
        p = self.coef.shape[0]
        names = [f"x{j}" for j in range(p)] if names is None else list(names)
        if len(names) != p:
            raise ValueError(f"`names` must have {p} entries, got {len(names)}")
        return Summary(self, names)


class Summary:
    """The text of `GLMResult.summary` (``str()`` or ``print`` it)."""

    def __init__(self, result: GLMResult, names: list[str]):
        self.result = result
        self.names = names

    def _table(self, coef, stderr, z, pv, names) -> list[str]:
        stat = "t" if self.result.estimated_dispersion else "z"
        width = max(10, *(len(n) for n in names))
        lines = [f"{'':<{width}} {'coef':>12} {'std err':>12} {stat:>9} {'P>|' + stat + '|':>9}"]
        for row in zip(names, coef, stderr, z, pv, strict=True):
            if np.isnan(row[2]):  # fitted with covariance=False
                lines.append(f"{row[0]:<{width}} {row[1]:>12.6g} {'-':>12} {'-':>9} {'-':>9}")
                continue
            lines.append(
                f"{row[0]:<{width}} {row[1]:>12.6g} {row[2]:>12.6g} {row[3]:>9.3f} {row[4]:>9.3g}"
            )
        return lines

    def __str__(self) -> str:
        r = self.result
        coef = np.asarray(r.coef)
        arrays = [coef] + [
            np.full(coef.shape, np.nan) if a is None else np.asarray(a)
            for a in (r.stderr, r.zvalues, r.pvalues)
        ]
        fam = type(r.family).__name__
        rule = "=" * 78
        head = [
            rule,
            f"{'Generalized linear model':<40}{'Family:':<12}{fam}",
            f"{'No. observations:':<20}{int(r.nobs):<20}{'Df residuals:':<20}{float(r.df_resid):g}",
            f"{'Log-likelihood:':<20}{float(r.loglik):<20.6g}{'Scale:':<20}{float(r.scale):.6g}",
            f"{'Deviance:':<20}{float(r.deviance):<20.6g}"
            f"{'Null deviance:':<20}{float(r.null_deviance):.6g}",
            f"{'AIC:':<20}{float(r.aic):<20.6g}{'BIC:':<20}{float(r.bic):.6g}",
            f"{'Iterations:':<20}{int(r.n_iter):<20}{'Converged:':<20}{bool(r.converged)}",
            rule,
        ]
        body = []
        if arrays[0].ndim == 1:
            body += self._table(*arrays, self.names)
        else:
            for j in range(arrays[0].shape[1]):
                label = f"eta[{j}]"
                if isinstance(r.family, Categorical) and r.family.minimal:
                    label = f"class {j} vs class {r.family.num_classes - 1}"
                body += [label] + self._table(*(a[:, j] for a in arrays), self.names)
        return "\n".join(head + body + [rule, f"Solver: {r.message}"])

    def __repr__(self) -> str:
        return str(self)


# ----- building it ------------------------------------------------------------------------------


def _covariance(K: Float[Array, "q q"], scale: Float[Array, ""]) -> Float[Array, "q q"]:
    """``scale * K^+``, inverted after scaling ``K`` to unit diagonal (its entries span many orders
    of magnitude when X's columns do, e.g. Longley's); a pseudo-inverse, so that a singular ``K``
    (over-parametrised family, collinear X) gives finite numbers."""
    diag = jnp.diagonal(K)
    d = 1 / jnp.sqrt(jnp.where(diag > 0, diag, 1))
    e, V = jnp.linalg.eigh(d[:, None] * K * d[None, :])
    keep = e > K.shape[0] * jnp.finfo(K.dtype).eps * jnp.max(e)
    e_inv = jnp.where(keep, 1 / jnp.where(keep, e, 1), 0)
    return scale * (d[:, None] * V) @ (e_inv[:, None] * (V.T * d[None, :]))


def _sum_log_weights(w):
    """``sum log w_i`` over the rows with ``w_i > 0``."""
    positive = w > 0
    return jnp.sum(jnp.where(positive, jnp.log(jnp.where(positive, w, 1)), 0))


def _gaussian_loglik(deviance, nobs, sum_log_weights):
    """R's Gaussian log-likelihood, at the maximum-likelihood dispersion ``deviance / nobs``."""
    return -0.5 * nobs * (jnp.log(2 * jnp.pi * deviance / nobs) + 1) + 0.5 * sum_log_weights


def _gamma_loglik(y, eta, w, shape):
    """R's Gamma log-likelihood at the given shape (R's is ``sum w / deviance``)."""
    return jnp.sum(w * Gamma(shape=shape).log_prob(y, eta))


def _deviance(family, t, eta, omega, saturated):
    """R's unscaled deviance ``2 sum_i omega_i [a*(T(y_i)) - (<eta_i, T(y_i)> - a(eta_i))]``."""
    return 2 * jnp.sum(omega * (saturated - (_inner(family, eta, t) - family.log_partition(eta))))


def _loglik(family, y, t, eta, w, omega, deviance, nobs):
    """R's log-likelihood (module docstring); a sum over rows except for Gaussian and Gamma, whose
    dispersion comes from the deviance of all rows."""
    positive = w > 0
    if isinstance(family, Gaussian):
        return _gaussian_loglik(deviance, nobs, _sum_log_weights(w))
    if isinstance(family, Gamma):
        return _gamma_loglik(y, eta, w, jnp.sum(w) / deviance)
    if isinstance(family, Binomial):
        trials = family.trials * w
        k = trials * y
        log_choose = gammaln(trials + 1) - gammaln(k + 1) - gammaln(trials - k + 1)
        return jnp.sum(log_choose + omega * (_inner(family, eta, t) - family.log_partition(eta)))
    # log p = log b(y) + (<eta, T> - a(eta)) / phi, with the T(y) already computed
    log_prob = family.log_base_measure(y) + (
        _inner(family, eta, t) - family.log_partition(eta)
    ) / jnp.asarray(family.dispersion, eta.dtype)
    return jnp.sum(jnp.where(positive, w * log_prob, 0))


def make_result(
    family: ExponentialFamily,
    X: Float[Array, "n p"],
    y: Float[Array, " n"],
    weights: Float[Array, " n"],
    offset: Float[Array, " n *m"],
    l2: Float[Array, "..."],
    solution: Solution,
    *,
    covariance: bool = True,
) -> GLMResult:
    """Inference for a fitted GLM (the definitions are in the module docstring); without the
    ``(q, q)`` covariance (and so without `stderr`, `zvalues`, `pvalues`) if ``covariance`` is
    False.

    The inputs are those of `validate_glm_inputs`; works under ``jax.jit`` and ``jax.vmap``.
    """
    readable = all(_is_readable(a) for a in (y, weights, offset))
    # a concrete all-zero offset (also under vmap over the data, where `fit_glm` makes it) needs
    # no Newton refit of the null model: its eta is the maximiser for the weighted mean of T(y),
    # the link of that mean, which is computed anyway (a smaller program)
    refit_null = not (_is_readable(offset) and not np.any(np.asarray(offset)))
    by_value = _saturated_by_value(family, y, weights) if readable else None
    return _make_result(
        family, X, y, weights, offset, l2, solution, refit_null, by_value, row_blocks(X), covariance
    )


def _is_readable(x) -> bool:
    # neither traced nor a global array spread over several processes (jax.distributed)
    return not isinstance(x, jax.core.Tracer) and getattr(x, "is_fully_addressable", True)


_saturated_jit = eqx.filter_jit(_saturated)


def _saturated_by_value(family, y, weights):
    """`_saturated` for concrete data, once per distinct value of ``T(y)`` (``a*(T(y))`` depends
    on ``y`` alone): ``k`` one-hot rows for `Categorical` instead of ``n``. The weighted mean of
    ``T(y)`` is one more row; its maximiser is the offset-free null model's ``eta``. Rows are
    padded to a power of two so that few distinct shapes get compiled.

    **Returns:** the saturated values ``(n,)`` and the maximiser for the weighted mean."""
    dtype = jnp.asarray(y).dtype
    # as the objective computes it: no support check (a Binomial y is a proportion of weights)
    t = np.asarray(jax.vmap(family._sufficient_statistic)(jnp.asarray(y)), dtype)
    flat = t.reshape(len(t), -1)
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    w = np.asarray(weights, dtype)
    mean_t = (w[:, None] * flat).sum(axis=0) / w.sum()
    rows = np.concatenate([unique, mean_t[None]])
    size = 1 << (len(rows) - 1).bit_length()
    rows = np.concatenate([rows, np.repeat(rows[-1:], size - len(rows), axis=0)])
    rows = jnp.asarray(rows.reshape((size,) + t.shape[1:]))
    values, best = _saturated_jit(family, rows, jnp.full(rows.shape, family._eta_start, dtype))
    return values[: len(unique)][jnp.asarray(inverse.reshape(-1))], best[len(unique)]


@eqx.filter_jit
def _make_result(
    family, X, y, weights, offset, l2, solution, refit_null, by_value, blocks, covariance
) -> GLMResult:
    # refit_null, blocks and covariance are Python values: static under filter_jit
    objective = GLMObjective.from_data(family, X, y, weights, offset, l2, row_blocks=blocks)
    n, p = X.shape
    coef = solution.coef
    dtype = coef.dtype
    t = objective.t
    eta = objective.eta(coef)
    estimated = _estimates_dispersion(family)
    phi = jnp.asarray(1.0 if estimated else family.dispersion, dtype)
    omega = weights / phi
    nobs = jnp.sum(weights > 0)
    rank = _rank(family, p)
    df_resid = (nobs - rank).astype(dtype)

    # the saturated model, and the weighted mean of T(y), whose maximiser is the intercept-only
    # model's eta when there is no offset: per distinct T(y) outside (`by_value`) for readable
    # data, else here. Two solves, not one over n + 1 rows: rows sharded over devices
    # (`shard_rows`) must keep their count, n + 1 rows crash XLA's SPMD partitioner.
    wb = omega if t.ndim == 1 else omega[:, None]
    mean_t = jnp.sum(wb * t, axis=0) / jnp.sum(omega)
    mean_eta = jnp.sum(wb * eta, axis=0) / jnp.sum(omega)
    if by_value is None:
        saturated, _ = _saturated(family, t, eta)
        null_c = _saturated(family, mean_t[None], mean_eta[None])[1][0]
    else:
        saturated, null_c = by_value

    deviance = _deviance(family, t, eta, omega, saturated)
    has_intercept = jnp.any(jnp.all(X == X[:1], axis=0) & (X[0] != 0))
    offset = objective.offset
    if refit_null:
        null_fit = _null_eta(family, t, omega, offset, null_c)
    else:
        null_fit = jnp.broadcast_to(null_c, eta.shape) + offset
    null_eta = jnp.where(has_intercept, null_fit, offset)
    null_deviance = _deviance(family, t, null_eta, omega, saturated)
    df_null = (nobs - jnp.where(has_intercept, rank // p, 0)).astype(dtype)

    if estimated:
        resid = t - family.mean(eta)
        unit_variance = family.variance(eta) / family.dispersion
        scale = jnp.sum(weights * resid**2 / unit_variance) / df_resid
    else:
        scale = jnp.ones((), dtype)

    if covariance:
        cov = _covariance(n * objective.hessian(coef) / phi, scale)
        stderr = jnp.sqrt(jnp.diagonal(cov)).reshape(coef.shape)
        zvalues = coef / stderr
        if estimated:
            pvalues = betainc(0.5 * df_resid, 0.5, df_resid / (df_resid + zvalues**2))
        else:
            pvalues = erfc(jnp.abs(zvalues) / jnp.sqrt(2.0))
    else:
        cov = stderr = zvalues = pvalues = None

    loglik = _loglik(family, y, t, eta, weights, omega, deviance, nobs)
    k = rank + (1 if estimated else 0)
    return GLMResult(
        family=family,
        coef=coef,
        stderr=stderr,
        cov=cov,
        zvalues=zvalues,
        pvalues=pvalues,
        loglik=loglik,
        deviance=deviance,
        null_deviance=null_deviance,
        aic=-2 * loglik + 2 * k,
        bic=-2 * loglik + jnp.log(nobs.astype(dtype)) * k,
        scale=scale,
        df_resid=df_resid,
        df_null=df_null,
        nobs=nobs,
        has_intercept=has_intercept,
        n_iter=solution.n_iter,
        converged=solution.converged,
        grad_norm=solution.grad_norm,
        history=solution.history,
        result=solution.result,
    )
