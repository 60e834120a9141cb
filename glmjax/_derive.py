"""Moments and the canonical link of an exponential family, derived from its log-partition.

For ``p(y; eta) = b(y) exp(<eta, T(y)> - a(eta))`` the log-partition ``a`` is the cumulant generating
function of ``T(y)``, so

    E[T(y)]   = grad a(eta)        (the mean map)
    Var[T(y)] = hessian a(eta)     (the variance map)

and the canonical link ``g = (grad a)^-1`` is the maximiser of the concave function
``<eta, mu> - a(eta)`` (the convex conjugate ``a*(mu)``), which this module finds by damped Newton's
method using only ``grad a`` and ``hessian a``. Nothing here knows a closed form.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

LogPartition = Callable[[Float[Array, "*m"]], Float[Array, ""]]


def mean_map(log_partition: LogPartition) -> Callable:
    """``eta -> grad a(eta)``: the mean of the sufficient statistic."""
    return jax.grad(log_partition)


def variance_map(log_partition: LogPartition) -> Callable:
    """``eta -> hessian a(eta)``: the covariance of the sufficient statistic."""
    return jax.hessian(log_partition)


def _solve(hessian: Float[Array, "*mm"], rhs: Float[Array, "*m"], singular: bool) -> Float[Array, "*m"]:
    """``hessian^-1 rhs``, or ``hessian^+ rhs`` for an over-parametrised family (singular hessian)."""
    if rhs.ndim == 0:
        return rhs / hessian
    if singular:
        return jnp.linalg.pinv(hessian, hermitian=True) @ rhs
    return jnp.linalg.solve(hessian, rhs)


def conjugate_link(
    log_partition: LogPartition,
    mu: Float[Array, "*m"],
    eta_start: Float[Array, "*m"],
    *,
    singular: bool = False,
    max_iter: int = 2000,
) -> Float[Array, "*m"]:
    """The natural parameter whose mean is ``mu``: ``argmax_eta <eta, mu> - a(eta)``.

    Damped Newton on the convex function ``f(eta) = a(eta) - <eta, mu>`` from ``eta_start`` (a point in
    the interior of the natural parameter space), with a backtracking line search that rejects
    non-finite values, so the iterates stay in the domain of ``a`` and ``f`` never increases beyond
    rounding. Stops when the Newton step no longer changes ``eta`` in floating point.

    ``singular=True`` (an over-parametrised family) takes pseudo-inverse steps, which keep ``eta`` in
    the range of the hessian: the minimum-norm solution. Accurate while ``mu`` is resolved by the
    dtype: the residual ``grad a(eta) - mu`` must not underflow (e.g. Poisson ``mu > 1e-290`` in
    float64), and near a boundary of the mean space (Bernoulli ``mu -> 1``) the link is only as
    accurate as ``mu``'s rounding allows (relative error ~ eps / (mu (1 - mu)) in eta).

    Differentiable: ``jax.lax.custom_root`` supplies the implicit-function derivative
    ``d eta / d mu = (hessian a(eta))^+``, also with respect to anything ``log_partition`` closes over.
    """
    mu = jnp.asarray(mu)
    eps = jnp.finfo(mu.dtype).eps
    grad_a = jax.grad(log_partition)
    hess_a = jax.hessian(log_partition)

    def residual(eta):
        return grad_a(eta) - mu

    def newton(residual_fn, eta0):
        def objective(eta):
            return log_partition(eta) - jnp.vdot(eta, mu)

        def backtrack(eta, f0, step):
            # f is convex and step a descent direction: halve until f is finite and not larger
            # (up to rounding); a sufficient-decrease slope could overflow for extreme mu.
            def cond(t):
                f = objective(eta + t * step)
                return ~(jnp.isfinite(f) & (f <= f0 + 16 * eps * jnp.abs(f0))) & (t > jnp.finfo(mu.dtype).tiny)

            return lax.while_loop(cond, lambda t: 0.5 * t, jnp.ones((), mu.dtype))

        def body(state):
            i, eta, _ = state
            step = -_solve(hess_a(eta), residual_fn(eta), singular)
            t = backtrack(eta, objective(eta), step)
            new = eta + t * step
            moved = jnp.any(jnp.abs(new - eta) > 2 * eps * jnp.maximum(jnp.abs(eta), 1e-300))
            return i + 1, new, ~moved

        def cond(state):
            i, _, done = state
            return (i < max_iter) & ~done

        init = (jnp.zeros((), jnp.int32), eta0, jnp.zeros((), bool))
        return lax.while_loop(cond, body, init)[1]

    def tangent_solve(linear_fn, rhs):
        jac = jax.jacobian(linear_fn)(rhs) if rhs.ndim else jax.grad(linear_fn)(rhs)
        return _solve(jac, rhs, singular)

    eta_start = jnp.broadcast_to(jnp.asarray(eta_start, mu.dtype), mu.shape)
    return lax.custom_root(residual, eta_start, newton, tangent_solve)
