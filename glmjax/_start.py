r"""Where a fit starts: R's intercept-only start, made generic.

The intercept-only model's fitted mean is the weighted mean of ``T(y)``; its linear predictor is
``eta0 = g(mean T)`` for the link ``g``. The start is the weighted least-squares fit of
``eta0 - offset`` on ``X`` — with an intercept column and no offset simply that intercept and zero
slopes — or zero where that is not finite or has a larger objective. (R starts from per-row
``mustart`` values and one weighted least-squares step; both reach the same optimum.) The sums
behind the least-squares fit add up over chunks of rows, so streaming fits start the same way.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._batching import rare_cond
from ._objective import GLMObjective, Rows, rows_dot


class StartSums(eqx.Module):
    """Sums over rows for the start: ``X^T W X``, ``X^T w``, ``X^T (w offset)``, ``sum w T(y)``
    and ``sum w`` (they add up over chunks of rows, also streamed ones)."""

    gram: Float[Array, "p p"]
    x_weight: Float[Array, " p"]
    x_offset: Float[Array, "p *m"]
    t_sum: Float[Array, "*m"]
    weight_sum: Float[Array, ""]

    @property
    def mean_statistic(self) -> Float[Array, "*m"]:
        """The weighted mean of ``T(y)``: the intercept-only model's fitted mean."""
        return self.t_sum / self.weight_sum

    @property
    def column_scale(self) -> Float[Array, " p"]:
        """The root mean square of each column over the weighted rows (1 for a zero column)."""
        rms = jnp.sqrt(jnp.diagonal(self.gram) / self.weight_sum)
        return jnp.where(rms > 0, rms, 1.0)


def start_sums(rows: Rows) -> StartSums:
    """`StartSums` of one chunk of rows (a `GLMObjective.chunked_sum` block)."""
    X, t, w = rows.X, rows.t, rows.weights
    wb = w if t.ndim == 1 else w[:, None]
    gram = (X * w[:, None]).T @ X
    x_weight, x_offset = rows_dot(X, w), rows_dot(X, wb * rows.offset)
    return StartSums(gram, x_weight, x_offset, jnp.sum(wb * t, axis=0), jnp.sum(w))


def least_squares_start(sums: StartSums, eta0) -> Float[Array, "p *m"]:
    """The weighted least-squares fit of ``eta0 - offset`` on ``X`` from `StartSums`; NaN when
    ``X^T W X`` is singular (plain Cholesky: no eigendecomposition compiled into every fit)."""
    rhs = jnp.multiply.outer(sums.x_weight, eta0) - sums.x_offset
    return jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(sums.gram), True), rhs)


def _least_squares(objective: GLMObjective, eta0) -> Float[Array, "p *m"]:
    return least_squares_start(objective.chunked_sum(start_sums), eta0)


def mean_statistic(objective: GLMObjective) -> Float[Array, "*m"]:
    """The weighted mean of ``T(y)`` (rows with positive weight)."""
    w, t = objective.weights, objective.t
    wb = w if t.ndim == 1 else w[:, None]
    return jnp.sum(wb * t, axis=0) / jnp.sum(w)


def start_coef(
    objective: GLMObjective, eta0: Array, intercepts: Bool[Array, " p"] | None = None
) -> Float[Array, "p *m"]:
    """The start (module docstring) for ``eta0 = g(mean T(y))``, computed by the caller once per
    family and link (its own compiled function: the canonical link of a family without a closed
    form is an iteration); ``intercepts``: `ColumnSummary.intercepts` (default: computed here)."""
    zero = jnp.zeros(objective.coef_shape, objective.X.dtype)
    first = objective.X[0]
    constant = objective.column_summary().intercepts if intercepts is None else intercepts
    j = jnp.argmax(constant)

    shortcut = jnp.any(constant) & jnp.all(objective.offset == 0)
    intercept_only = zero.at[j].set(eta0 / jnp.where(shortcut, first[j], 1))
    # under vmap the least-squares sums run only if some member has no intercept or an offset
    ls = rare_cond(~shortcut, _least_squares, intercept_only, objective, eta0)
    ls = jnp.where(jnp.all(jnp.isfinite(ls)), ls, zero)
    f_ls, f_zero = jax.vmap(objective.value)(jnp.stack([ls, zero]))
    use_ls = jnp.isfinite(f_ls) & ~(f_ls > f_zero)
    return jnp.where(use_ls, ls, zero)
