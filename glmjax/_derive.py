r"""Moments and the canonical link of an exponential family, derived from its log-partition.

For ``p(y; eta) = b(y) exp(<eta, T(y)> - a(eta))`` the log-partition ``a`` is the cumulant
generating function of ``T(y)``, so

    E[T(y)]   = grad a(eta)        (the mean map)
    Var[T(y)] = hessian a(eta)     (the variance map)

and the canonical link ``g = (grad a)^-1`` is the maximiser of the concave ``<eta, mu> - a(eta)``
(the convex conjugate ``a*(mu)``). Nothing here knows a closed form.

**Scalar eta: bisection on the bits.** ``grad a`` is increasing, so ``g(mu)`` is the smallest
``eta`` with ``grad a(eta) >= mu``. Floating-point numbers, read as integers with the sign folded
in, are in the same order as their values; bisecting that integer range from ``-inf`` to ``+inf``
finds the smallest such float in exactly 64 steps (32 in float32) with no tolerance and no
starting point: the root to the last bit of ``eta`` at which the computed ``grad a`` crosses
``mu``, from ``mu = 1e-290`` to ``1e300`` alike. Where the computed mean map is flat around
``mu`` (it saturates: Bernoulli ``mu -> 1``) a second bisection finds the end of the run of
``eta`` that give ``mu`` exactly, and the middle of the run is returned. Outside the natural
parameter space (where ``a`` is not finite) points above the family's `eta_start` count as
"beyond the root". The result is
NaN outside the closed mean space (the support's bounds) and ``-inf``/``+inf`` on its lower/upper
boundary.

**Vector eta: Newton on the conjugate**, ``min_eta (a(eta) - <eta, mu>) / s`` from `eta_start`
with the package's one solver loop (`glmjax._iterate.minimise`: Newton with the shared line
search, which here also lengthens accepted full steps by doubling — far from the solution, where
``a`` grows like ``e^eta``, Newton's steps have length about 1). ``s``, a power of two
``>= max(1, |mu|)``, keeps ``<eta, mu>`` from overflowing. An over-parametrised family
(``a(eta + c 1) = a(eta) + c``) solves with ``hessian + mu mu^T``, which is non-singular and keeps
each class's relative accuracy (for one-hot-like ``T``, ``<1, mu> = 1``), and returns the
representative with ``sum(eta) = 0``. NaN when no ``eta`` reproduces ``mu`` (outside the mean
space).

Both are differentiable: ``jax.lax.custom_root`` supplies ``d eta / d mu = hessian a(eta)^+``,
also through anything ``log_partition`` closes over.

Accuracy limits (float64; ``glmjax verify`` checks inside them): ``mu`` must be resolved by the
dtype (where the mean map saturates, Bernoulli ``mu -> 1``, ``eta`` has an absolute error of about
``eps |d eta / d mu| |mu|``, as for any method starting from the rounded ``mu``); the vector
solve needs the residual ``grad a(eta) - mu`` above the subnormal range (XLA on CPU flushes
subnormals to zero).
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from ._iterate import minimise
from ._solver import Backtracking, Evaluation, NewtonDescent, Solver

LogPartition = Callable[[Float[Array, "*m"]], Float[Array, ""]]

_CONJUGATE_SOLVER = Solver(
    NewtonDescent(), Backtracking(full_step_at_rounding=True, extrapolate=True)
)
_CONJUGATE_MAX_ITER = 500


def mean_map(log_partition: LogPartition) -> Callable:
    """``eta -> grad a(eta)``: the mean of the sufficient statistic."""
    return jax.grad(log_partition)


def variance_map(log_partition: LogPartition) -> Callable:
    """``eta -> hessian a(eta)``: the covariance of the sufficient statistic."""
    return jax.hessian(log_partition)


# ----- scalar: bisection over the ordered bits ---------------------------------------------------


def _int_type(dtype):
    return {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[jnp.dtype(dtype).itemsize]


def _to_key(x: Array) -> Array:
    """An integer with the order of the float ``x`` (negative floats' magnitudes folded)."""
    bits = lax.bitcast_convert_type(x, _int_type(x.dtype))
    return jnp.where(bits >= 0, bits, -(bits & jnp.iinfo(bits.dtype).max))


def _from_key(k: Array, dtype) -> Array:
    sign = jnp.asarray(jnp.iinfo(k.dtype).min, k.dtype)
    return lax.bitcast_convert_type(jnp.where(k >= 0, k, (-k) | sign), dtype)


def bisect(predicate: Callable[[Array], Array], dtype) -> tuple[Array, Array]:
    """For a monotone ``predicate`` (false below some point, true above it) over the floats of
    ``dtype``: the largest float where it is false and the smallest where it is true (``-inf`` and
    ``+inf`` are assumed false and true). Exactly ``8 * itemsize`` evaluations."""
    lo = _to_key(jnp.asarray(-jnp.inf, dtype))
    hi = _to_key(jnp.asarray(jnp.inf, dtype))

    def body(_, bounds):
        lo, hi = bounds
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
        above = predicate(_from_key(mid, dtype))
        return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = lax.fori_loop(0, 8 * jnp.dtype(dtype).itemsize, body, (lo, hi))
    return _from_key(lo, dtype), _from_key(hi, dtype)


def _scalar_link(family, mu: Float[Array, ""]) -> Float[Array, ""]:
    a = family.log_partition
    grad_a = jax.grad(a)
    start = jnp.asarray(family.eta_start, mu.dtype)

    def residual(eta):
        return jnp.where(jnp.isfinite(a(eta)), grad_a(eta) - mu, jnp.nan)

    def solve(f, eta0):
        # compares grad a with mu instead of testing f >= 0: their difference can be subnormal,
        # which XLA on CPU flushes to zero
        def beyond(eta, strictly):
            inside = jnp.isfinite(a(eta)) & jnp.isfinite(grad_a(eta))
            above = jnp.where(strictly, grad_a(eta) > mu, grad_a(eta) >= mu)
            return jnp.where(inside, above, eta > eta0)

        lo, first = bisect(lambda eta: beyond(eta, False), mu.dtype)
        _, past = bisect(lambda eta: beyond(eta, True), mu.dtype)
        # where the computed mean map is flat (saturating, Bernoulli mu -> 1) every eta in
        # [first, past) gives mu exactly: the middle of that run is the best estimate
        plateau = (past > first) & jnp.isfinite(past) & jnp.isfinite(first)
        middle = first + 0.5 * (past - first)
        r_lo, r_first = jnp.abs(f(lo)), jnp.abs(f(first))
        crossing = jnp.where(jnp.isfinite(r_lo) & ~(r_lo >= r_first), lo, first)
        return jnp.where(plateau, middle, crossing)

    def tangent_solve(linear, y):
        return y / jax.grad(linear)(y)

    eta = lax.custom_root(residual, start, solve, tangent_solve)
    # XLA on CPU flushes subnormals: a root in that range is zero
    eta = jnp.where(jnp.abs(eta) < jnp.finfo(mu.dtype).tiny, 0.0, eta)
    support = family.support
    return jnp.select(
        [
            jnp.isnan(mu) | (mu < support.lower) | (mu > support.upper),
            mu == support.lower,
            mu == support.upper,
        ],  # fmt: skip
        [jnp.nan, -jnp.inf, jnp.inf],
        eta,
    )


# ----- vector: Newton on the conjugate, in the solver loop ---------------------------------------


class _Conjugate(eqx.Module):
    """``(a(eta) - <eta, mu>) / s`` as an objective of ``coef = eta[None]`` for the solver loop."""

    family: object
    mu: Float[Array, " m"]
    scale: Float[Array, ""]

    def evaluate(self, coef, needs, start=True):
        eta = coef[0]
        a = self.family.log_partition(eta)
        inner = eta * self.mu
        grad = (jax.grad(self.family.log_partition)(eta) - self.mu) / self.scale
        hess = jax.hessian(self.family.log_partition)(eta) / self.scale if needs.hessian else None
        return Evaluation(
            f=(a - jnp.sum(inner)) / self.scale,
            f_scale=(jnp.abs(a) + jnp.sum(jnp.abs(inner))) / self.scale,
            grad=grad[None],
            hessian=hess,
        )

    def exact_hessian(self, information: str) -> bool:
        return True  # jax.hessian of the objective itself

    def fill_null_space(self, H):
        if self.family.identifiable:
            return H
        return H + jnp.outer(self.mu, self.mu) / self.scale


def _sum_zero(eta):
    return eta - jnp.mean(eta)


def _vector_link(family, mu: Float[Array, " m"]) -> Float[Array, " m"]:
    grad_a = jax.grad(family.log_partition)
    start = jnp.full(mu.shape, family.eta_start, mu.dtype)
    scale = jnp.exp2(jnp.ceil(jnp.log2(jnp.maximum(1.0, jnp.max(jnp.abs(mu))))))

    def residual(eta):
        return grad_a(eta) - mu

    def solve(f, eta0):
        problem = _Conjugate(family, mu, scale)
        solution = minimise(
            problem, _CONJUGATE_SOLVER, eta0[None], max_iter=_CONJUGATE_MAX_ITER, tol=0.0,
            scale=jnp.ones((1,) + mu.shape, mu.dtype),
        )  # fmt: skip
        eta = solution.coef[0]
        return eta if family.identifiable else _sum_zero(eta)

    def tangent_solve(linear, y):
        jac = jax.jacobian(linear)(y)
        if family.identifiable:
            return jnp.linalg.solve(jac, y)
        return _sum_zero(jnp.linalg.solve(jac + jnp.outer(mu, mu), y))

    eta = lax.custom_root(residual, start, solve, tangent_solve)
    eps = jnp.finfo(mu.dtype).eps
    off = jnp.max(jnp.abs(lax.stop_gradient(residual(eta))))
    reproduced = off <= jnp.sqrt(eps) * (1 + jnp.max(jnp.abs(mu)))
    return jnp.where(reproduced, eta, jnp.nan)


def canonical_link(family, mu: Array) -> Array:
    """``(grad a)^-1 (mu)`` for each ``mu`` (leading axes broadcast), derived from ``a`` alone
    (module docstring)."""
    if family.natural_dim is None:
        return jnp.vectorize(lambda m: _scalar_link(family, m))(mu)
    return jnp.vectorize(lambda m: _vector_link(family, m), signature="(m)->(m)")(mu)
