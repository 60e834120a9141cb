"""Moments and the canonical link of an exponential family, derived from its log-partition.

For ``p(y; eta) = b(y) exp(<eta, T(y)> - a(eta))`` the log-partition ``a`` is the cumulant
generating function of ``T(y)``, so

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

# the line search lengthens a Newton step at most this much (enough to cross the ~700 unit steps
# of the slow phase at once; a bounded stretch keeps a vector step, whose coordinates converge at
# different rates, from running far past the solution in a coordinate that has already arrived)
_MAX_STRETCH = 1024.0


def mean_map(log_partition: LogPartition) -> Callable:
    """``eta -> grad a(eta)``: the mean of the sufficient statistic."""
    return jax.grad(log_partition)


def variance_map(log_partition: LogPartition) -> Callable:
    """``eta -> hessian a(eta)``: the covariance of the sufficient statistic."""
    return jax.hessian(log_partition)


def _null_projector(hessian: Float[Array, "m m"]) -> Float[Array, "m m"]:
    """Orthogonal projector onto the null space of a (positive semi-definite) hessian of ``a``.

    For an exponential family the null space of ``hessian a(eta) = Cov[T(y)]`` is the set of
    directions ``v`` with ``<v, T(y)>`` constant on the support, which does not depend on ``eta``:
    computing it once at a well-conditioned point (``eta_start``) gives it everywhere.
    """
    w, v = jnp.linalg.eigh(hessian)
    null = w <= jnp.sqrt(jnp.finfo(w.dtype).eps) * w[-1]
    return (v * null) @ v.T


def _solver(mu: Float[Array, "*m"], null_projector: Float[Array, "m m"] | None) -> Callable:
    """``(hessian, rhs) -> delta`` with ``hessian @ delta = rhs``; for an over-parametrised family
    the solution orthogonal to the null space (``hessian^+ rhs``).

    The singular case solves ``(hessian + mu mu^T) delta = rhs`` and projects out the null space.
    For a null direction ``v`` (``<v, T(y)> = c``) and a consistent ``mu`` (``<v, mu> = c``, with
    ``c != 0``, e.g. one-hot ``T``: ``c = 1``) the matrix is non-singular and multiplying by ``v``
    shows ``<mu, delta> = 0``, so ``hessian @ delta = rhs``. For the softmax ``hessian + mu mu^T``
    is about ``diag(p)``, so every class keeps its relative accuracy; a pseudo-inverse (or
    ``hessian + P``) instead spreads the rounding of the largest probability over all classes
    (and ``pinv`` cuts off the genuine eigenvalues of classes with probability < ~1e-14).
    """

    def solve(hessian, rhs):
        if rhs.ndim == 0:
            return rhs / hessian
        if null_projector is None:
            return jnp.linalg.solve(hessian, rhs)
        delta = jnp.linalg.solve(hessian + jnp.outer(mu, mu), rhs)
        return delta - null_projector @ delta

    return solve


def conjugate_link(
    log_partition: LogPartition,
    mu: Float[Array, "*m"],
    eta_start: Float[Array, "*m"],
    *,
    singular: bool = False,
    max_iter: int = 500,
) -> Float[Array, "*m"]:
    """The natural parameter whose mean is ``mu``: ``argmax_eta <eta, mu> - a(eta)``.

    Damped Newton on the convex function ``f(eta) = (a(eta) - <eta, mu>) / s`` from ``eta_start`` (a
    point in the interior of the natural parameter space). The line search halves the step until
    ``f`` is finite (so the iterates stay in the domain of ``a``) and not larger (up to the
    rounding of its two terms ``a`` and ``<eta, mu>``);
    when the full step is accepted it keeps doubling it (at most 1024-fold) while the Newton step
    at the doubled point still points along it and ``f`` has not increased (for scalar ``eta``:
    the minimum on that line lies further): far from the solution Newton's step can be much too
    short (where ``a`` grows like ``e^eta``, the step from ``eta = 0`` towards Poisson
    ``mu = 1e-290`` is about -1: 700 iterations without doubling, 10 with). ``s``, a power of two
    >= max(1, |mu|), keeps ``<eta, mu>`` from overflowing for huge ``mu`` (Poisson
    ``mu = 1e300``). Stops when a Newton step no longer
    changes ``eta`` in floating point, or after ``max_iter`` steps.

    ``singular=True`` (an over-parametrised family) steps orthogonally to the hessian's null space:
    the minimum-norm solution (see `_solver`).

    Accuracy limits (float64; ``glmjax verify`` checks inside them):
    - ``mu`` must be resolved by the dtype: where the mean map saturates (Bernoulli ``mu -> 1``,
      the reference-class probability ``1 - sum(mu) -> 0`` of a minimal Categorical) the
      residual ``grad a(eta) - mu`` is rounding noise, so ``eta`` has an absolute error of about
      ``eps * |d eta / d mu| * |mu|`` (``eps / (1 - mu)`` for Bernoulli), as for any method that
      starts from the rounded ``mu``;
    - the residual must not be subnormal: XLA on CPU flushes subnormals to zero, which stops the
      iteration early when ``|grad a(eta) - mu| < 2.2e-308``, i.e. for ``mu`` below ~1e-290
      (Poisson ``mu = 1e-304`` comes back with an absolute error ~1e-5 in eta);
    - the hessian (the variance) and ``a`` must be finite and non-zero at the solution: Gamma and
      Exponential for ``1e-150 < mu < 1e150`` (their hessian ``mu^2`` overflows beyond),
      Gaussian for ``|mu| < 1e154`` (``eta^2 / 2`` overflows beyond);
    - over-parametrised (``singular=True``, ``Categorical(k, minimal=False)``): measured accurate
      (relative 1e-14) for class probabilities down to ~1e-20; with several classes below ~1e-30
      next to a dominant one the iteration can stall or diverge (a known gap: a reference-class
      reparametrisation pivoted on the largest ``mu`` would fix it). The minimal Categorical is
      accurate down to 1e-280 while its reference class is resolved.

    Differentiable: ``jax.lax.custom_root`` supplies the implicit-function derivative
    ``d eta / d mu = (hessian a(eta))^+``, also through anything ``log_partition`` closes over.
    """
    mu = jnp.asarray(mu)
    eps = jnp.finfo(mu.dtype).eps
    tiny = jnp.finfo(mu.dtype).tiny
    grad_a = jax.grad(log_partition)
    hess_a = jax.hessian(log_partition)
    eta_start = jnp.broadcast_to(jnp.asarray(eta_start, mu.dtype), mu.shape)
    solve = _solver(mu, _null_projector(hess_a(eta_start)) if singular and mu.ndim else None)
    scale = jnp.exp2(jnp.ceil(jnp.log2(jnp.maximum(1.0, jnp.max(jnp.abs(mu))))))
    mu_scaled = mu / scale

    def residual(eta):
        return grad_a(eta) - mu

    def objective(eta):
        return log_partition(eta) / scale - jnp.vdot(eta, mu_scaled)

    def rounding(eta):
        # f is a difference of two large terms near the solution (a and <eta, mu>), so it is
        # only known to a few ulps of those terms, not of f itself
        return (
            16
            * eps
            * (jnp.abs(log_partition(eta) / scale) + jnp.vdot(jnp.abs(eta), jnp.abs(mu_scaled)))
        )

    def line_search(eta, step):
        f0 = objective(eta)
        tol = rounding(eta)

        def rejected(t):
            f = objective(eta + t * step)
            return ~(jnp.isfinite(f) & (f <= f0 + tol)) & (t > tiny)

        t = lax.while_loop(rejected, lambda t: 0.5 * t, jnp.ones((), mu.dtype))

        def longer(t):
            # Double while the Newton step at the doubled point still points along ``step``
            # (for scalar eta: the slope of f there is negative, so the minimum on the line lies
            # further and doubling never overshoots it) and f has not increased. The Newton step
            # is scale-free: the raw slope <residual, step> would be swamped by rounding in the
            # converged coordinates while a class of probability 1e-280 still has far to go.
            # Both must be finite, which keeps eta where a and its curvature are representable.
            t_eta, longer_eta = eta + t * step, eta + 2 * t * step
            f_t, f_longer = objective(t_eta), objective(longer_eta)
            agree = -jnp.vdot(solve(hess_a(longer_eta), residual(longer_eta)), step)
            decreased = jnp.isfinite(f_longer) & (f_longer <= f_t + rounding(t_eta))
            return (t >= 1) & (t < _MAX_STRETCH) & decreased & jnp.isfinite(agree) & (agree > 0)

        return lax.while_loop(longer, lambda t: 2 * t, t)

    def newton(residual_fn, eta0):
        def body(state):
            i, eta, _ = state
            step = -solve(hess_a(eta), residual_fn(eta))
            new = eta + line_search(eta, step) * step
            moved = jnp.any(jnp.abs(new - eta) > 2 * eps * jnp.abs(eta))
            return i + 1, new, ~moved

        def cond(state):
            i, _, done = state
            return (i < max_iter) & ~done

        init = (jnp.zeros((), jnp.int32), eta0, jnp.zeros((), bool))
        return lax.while_loop(cond, body, init)[1]

    def tangent_solve(linear_fn, rhs):
        jac = jax.jacobian(linear_fn)(rhs) if rhs.ndim else jax.grad(linear_fn)(rhs)
        return solve(jac, rhs)

    return lax.custom_root(residual, eta_start, newton, tangent_solve)
