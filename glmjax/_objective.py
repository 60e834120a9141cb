r"""The GLM objective, written once from the family's log-partition, and its derivatives.

With linear predictor ``eta_i = x_i^T coef + offset_i`` (``coef`` of shape ``(p,)`` for a scalar
family, ``(p, m)`` with ``m = family.natural_dim`` for a vector one, so ``eta_i`` has ``m``
entries), prior weights ``w_i`` and ridge ``l2``, the objective minimised by every solver is

$$
f(\mathrm{coef}) = \frac{1}{n} \sum_{i=1}^n w_i \big[a(\eta_i) - \langle \eta_i, T(y_i) \rangle\big]
    + \tfrac12 \sum_{jr} l2_{jr}\, \mathrm{coef}_{jr}^2 ,
$$

the mean (over all ``n`` rows, zero-weight rows included) negative log-likelihood up to the
constants left out: the dispersion ``phi`` (a positive factor ``1/phi`` on the likelihood part) and
``log b(y)``. Neither changes the minimiser without ridge; with ridge, ``l2`` is measured against
this scaled objective.

Its derivatives, for a canonical link (every family here), are

$$
\nabla f = \tfrac1n X^T [w \odot (\nabla a(\eta) - T(y))] + l2 \odot \mathrm{coef}, \qquad
H = \tfrac1n \sum_i w_i\, x_i x_i^T \otimes \nabla^2 a(\eta_i) + \mathrm{diag}(l2),
$$

with ``coef`` flattened row-major (index ``j m + r``). `GLMObjective.hessian` assembles ``H`` this
way ("structured", the default: ``hessian a`` from ``jax.hessian`` of the family's log-partition,
one example at a time, combined by matrix products) or as ``jax.hessian`` of ``f`` itself ("full",
the reference). The structured form never builds an ``(n, p, p)`` tensor: for a scalar family it is
one product ``X^T (s \odot X)``; for a vector family rows are processed in chunks, with memory
``O(p^2 m^2 + chunk p m^2)``.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from ._families import Categorical
from ._family import ExponentialFamily

# rows per chunk of the structured Hessian for a vector family: the chunk temporary holds
# chunk * p * m^2 numbers; keeping chunk <= n / m^2 makes it no larger than X (but never tiny).
_MIN_CHUNK = 256


def default_chunk_size(n: int, natural_dim: int | None) -> int:
    """All rows at once for a scalar family; ``max(256, ceil(n / m^2))`` rows for a vector one."""
    if natural_dim is None:
        return max(n, 1)
    return max(1, min(n, max(_MIN_CHUNK, math.ceil(n / natural_dim**2))))


class GLMObjective(eqx.Module):
    """The penalised mean negative log-likelihood of a GLM, as a pytree of data and family.

    **Arguments** (all already validated and converted to one floating dtype):

    - `family`: the exponential family.
    - `X`: the design matrix, `(n, p)`.
    - `t`: the sufficient statistics `T(y_i)`, `(n,)` or `(n, m)`.
    - `weights`: prior weights, `(n,)`.
    - `offset`: added to the linear predictor, `(n,)` or `(n, m)`.
    - `l2`: ridge penalty, broadcastable to the coefficient shape.
    """

    family: ExponentialFamily
    X: Float[Array, "n p"]
    t: Float[Array, "n *m"]
    weights: Float[Array, " n"]
    offset: Float[Array, "n *m"]
    l2: Float[Array, "..."]

    @classmethod
    def from_data(cls, family, X, y, weights, offset, l2) -> "GLMObjective":
        """Build from responses ``y`` (``T(y)`` is computed once here, in ``X``'s dtype)."""
        X, y = jnp.asarray(X), jnp.asarray(y)
        if isinstance(family, Categorical):
            # labels index a one-hot vector (jax.nn.one_hot rejects floating labels)
            y = y.astype(jnp.int32)
        t = jax.vmap(family._sufficient_statistic)(y).astype(X.dtype)
        offset = jnp.asarray(offset, X.dtype)
        if family.natural_dim is not None and offset.ndim == 1:
            offset = offset[:, None]
        offset = jnp.broadcast_to(offset, t.shape)
        return cls(family, X, t, jnp.asarray(weights, X.dtype), offset, jnp.asarray(l2, X.dtype))

    @property
    def coef_shape(self) -> tuple[int, ...]:
        p = self.X.shape[1]
        m = self.family.natural_dim
        return (p,) if m is None else (p, m)

    @property
    def n_params(self) -> int:
        return math.prod(self.coef_shape)

    def eta(self, coef: Float[Array, "p *m"]) -> Float[Array, "n *m"]:
        """The linear predictor ``X @ coef + offset``."""
        return self.X @ coef + self.offset

    def __call__(self, coef: Float[Array, "p *m"]) -> Float[Array, ""]:
        eta = self.eta(coef)
        a = jax.vmap(self.family._log_partition)(eta)
        inner = eta * self.t if eta.ndim == 1 else jnp.sum(eta * self.t, axis=1)
        nll = jnp.sum(self.weights * (a - inner)) / self.X.shape[0]
        return nll + 0.5 * jnp.sum(self.l2 * coef**2)

    def value_and_grad(self, coef):
        return jax.value_and_grad(self.__call__)(coef)

    def ridge_diagonal(self) -> Float[Array, " q"]:
        """``l2`` broadcast to the coefficients and flattened: the ridge's diagonal in ``H``."""
        return jnp.broadcast_to(self.l2, self.coef_shape).reshape(-1)

    def curvature(self, eta: Float[Array, "c *m"]) -> Float[Array, "c *mm"]:
        """``hessian a(eta_i)`` row by row (``jax.hessian`` of the family's log-partition)."""
        return jax.vmap(jax.hessian(self.family._log_partition))(eta)

    def chunked_sum(self, fn, *, chunk_size: int | None = None):
        """``sum_c fn(X_c, t_c, w_c, offset_c)`` over chunks of rows, each of ``chunk_size`` rows.

        The last chunk is taken flush with the end of the data (``dynamic_slice`` clamps) and the
        rows it shares with the previous chunk get weight 0, so nothing is padded or copied.
        """
        n = self.X.shape[0]
        chunk = min(chunk_size or default_chunk_size(n, self.family.natural_dim), n)
        n_chunks = -(-n // chunk)

        def one(c):
            start = jnp.minimum(c * chunk, n - chunk)
            rows = start + jnp.arange(chunk)

            def take(a):
                return lax.dynamic_slice_in_dim(a, start, chunk, axis=0)

            w = jnp.where(rows >= c * chunk, take(self.weights), 0)
            return fn(take(self.X), take(self.t), w, take(self.offset))

        first = one(0)
        if n_chunks == 1:
            return first
        return lax.fori_loop(1, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), first)

    def weighted_gram(
        self, coef: Float[Array, "p *m"], *, chunk_size: int | None = None
    ) -> Float[Array, "q q"]:
        """The structured Hessian ``(1/n) sum_i w_i x_i x_i^T (kron) hess a(eta_i) + diag(l2)``."""
        n = self.X.shape[0]

        def block(X, _t, w, offset):
            return kron_gram(X, w, self.curvature(X @ coef + offset))

        return self.chunked_sum(block, chunk_size=chunk_size) / n + jnp.diag(self.ridge_diagonal())

    def hessian(
        self, coef: Float[Array, "p *m"], *, kind: str = "structured", chunk_size: int | None = None
    ) -> Float[Array, "q q"]:
        """The Hessian of the objective w.r.t. the row-major flattened ``coef``.

        ``kind="structured"`` is `weighted_gram` (the GLM form above), ``kind="full"`` is
        ``jax.hessian`` of the whole objective (exact for any objective; the reference).
        """
        if kind == "full":
            q = self.n_params
            return jax.hessian(self.__call__)(coef).reshape(q, q)
        if kind != "structured":
            raise ValueError(f"`hessian` must be 'structured' or 'full', got {kind!r}")
        return self.weighted_gram(coef, chunk_size=chunk_size)


def kron_gram(
    X: Float[Array, "c p"], w: Float[Array, " c"], curv: Float[Array, "c *mm"]
) -> Float[Array, "q q"]:
    """``sum_i w_i x_i x_i^T (kron) curv_i`` as a ``(p m, p m)`` matrix, by matrix products.

    ``curv_i`` is symmetric, so only its ``m (m + 1) / 2`` upper entries are contracted (one
    ``dot_general`` against a ``(c, p, m (m + 1) / 2)`` temporary) and mirrored.
    """
    c, p = X.shape
    if curv.ndim == 1:
        return (X * (w * curv)[:, None]).T @ X
    m = curv.shape[-1]
    r, s = np.triu_indices(m)
    wc = w[:, None] * curv[:, r, s]
    packed = (X.T @ (X[:, :, None] * wc[:, None, :]).reshape(c, -1)).reshape(p, p, -1)
    blocks = jnp.zeros((p, p, m, m), packed.dtype).at[:, :, r, s].set(packed)
    blocks = blocks.at[:, :, s, r].set(packed)
    return blocks.transpose(0, 2, 1, 3).reshape(p * m, p * m)
