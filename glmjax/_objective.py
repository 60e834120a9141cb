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
a sum of products ``X_c^T (s_c \odot X_c)`` over chunks of rows; for a vector family the chunks
hold ``O(chunk p m^2)`` numbers. Every sum over rows (`GLMObjective.chunked_sum`) walks the rows in
chunks within each of ``row_blocks`` contiguous blocks: with rows sharded over ``D`` devices
(`glmjax.shard_rows`) and ``row_blocks = D`` every chunk is a slice of each device's own rows, so
nothing is gathered.
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

# rows per chunk of the structured Hessian. A vector family's chunk temporary holds
# chunk * p * m (m + 1) / 2 numbers; keeping chunk <= n / m^2 makes it no larger than X (but never
# tiny). A scalar family's (chunk, p) temporary is kept near 2 MiB of float64: a temporary the size
# of X is freshly paged in on every call, and on a CPU that costs more than the product (a Hessian
# of 1e6 x 21 rows took 80 ms in one product, 24 ms in chunks of 12k rows).
_MIN_CHUNK = 256
_SCALAR_CHUNK_NUMBERS = 2**18


def default_chunk_size(n: int, natural_dim: int | None, p: int = 1) -> int:
    """Rows per chunk: ``max(256, 2^18 / p)`` for a scalar family, ``max(256, ceil(n / m^2))``
    for a vector one (never more than ``n``)."""
    if natural_dim is None:
        rows = max(_MIN_CHUNK, _SCALAR_CHUNK_NUMBERS // max(p, 1))
    else:
        rows = max(_MIN_CHUNK, math.ceil(n / natural_dim**2))
    return max(1, min(n, rows))


class GLMObjective(eqx.Module):
    """The penalised mean negative log-likelihood of a GLM, as a pytree of data and family.

    **Arguments** (all already validated and converted to one floating dtype):

    - `family`: the exponential family.
    - `X`: the design matrix, `(n, p)`.
    - `t`: the sufficient statistics `T(y_i)`, `(n,)` or `(n, m)`.
    - `weights`: prior weights, `(n,)`.
    - `offset`: added to the linear predictor, `(n,)` or `(n, m)`.
    - `l2`: ridge penalty, broadcastable to the coefficient shape.
    - `row_blocks`: the rows form this many contiguous blocks of equal size, one per device when
      they are sharded; sums over rows chunk within blocks (a static count; default 1).
    """

    family: ExponentialFamily
    X: Float[Array, "n p"]
    t: Float[Array, "n *m"]
    weights: Float[Array, " n"]
    offset: Float[Array, "n *m"]
    l2: Float[Array, "..."]
    row_blocks: int = eqx.field(static=True, default=1)

    @classmethod
    def from_data(cls, family, X, y, weights, offset, l2, *, row_blocks=1) -> "GLMObjective":
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
        weights, l2 = jnp.asarray(weights, X.dtype), jnp.asarray(l2, X.dtype)
        return cls(family, X, t, weights, offset, l2, row_blocks)

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
        """``sum_c fn(X_c, t_c, w_c, offset_c)`` over chunks of rows.

        A chunk takes ``chunk_size`` rows from each of the ``row_blocks`` blocks (at the same
        place in each). The last chunk is taken flush with the end of its block
        (``dynamic_slice`` clamps) and the rows it shares with the previous chunk get weight 0, so
        nothing is padded or copied.
        """
        n, p = self.X.shape
        blocks = self.row_blocks
        size = n // blocks
        chunk = chunk_size or default_chunk_size(size, self.family.natural_dim, p)
        chunk = min(chunk, size)
        n_chunks = -(-size // chunk)

        def one(c):
            start = jnp.minimum(c * chunk, size - chunk)
            fresh = start + jnp.arange(chunk) >= c * chunk

            def take(a):
                a = a.reshape((blocks, size) + a.shape[1:])
                part = lax.dynamic_slice_in_dim(a, start, chunk, axis=1)
                return part.reshape((blocks * chunk,) + a.shape[2:])

            w = jnp.where(jnp.tile(fresh, blocks), take(self.weights), 0)
            return fn(take(self.X), take(self.t), w, take(self.offset))

        first = one(0)
        if n_chunks == 1:
            return first
        return lax.fori_loop(1, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), first)

    def grad_and_hessian(
        self, coef: Float[Array, "p *m"], *, kind: str = "structured", chunk_size: int | None = None
    ) -> tuple[Float[Array, "p *m"], Float[Array, "q q"]]:
        """The gradient and the Hessian (see `hessian`); the structured form computes both in one
        pass over the rows, ``grad f = (1/n) X^T [w (grad a(eta) - T)] + l2 coef`` from the same
        ``eta`` chunk as the Hessian."""
        if kind == "full":
            q = self.n_params
            return jax.grad(self.__call__)(coef), jax.hessian(self.__call__)(coef).reshape(q, q)
        if kind != "structured":
            raise ValueError(f"`hessian` must be 'structured' or 'full', got {kind!r}")
        n = self.X.shape[0]
        mean = jax.vmap(jax.grad(self.family._log_partition))

        def block(X, t, w, offset):
            eta = X @ coef + offset
            residual = (w if t.ndim == 1 else w[:, None]) * (mean(eta) - t)
            return X.T @ residual, packed_kron_gram(X, w, self.curvature(eta))

        grad, packed = self.chunked_sum(block, chunk_size=chunk_size)
        ridge = jnp.diag(self.ridge_diagonal())
        return grad / n + self.l2 * coef, unpack_gram(packed, self.family.natural_dim) / n + ridge

    def hessian(
        self, coef: Float[Array, "p *m"], *, kind: str = "structured", chunk_size: int | None = None
    ) -> Float[Array, "q q"]:
        """The Hessian of the objective w.r.t. the row-major flattened ``coef``.

        ``kind="structured"`` is the GLM form above, ``(1/n) sum_i w_i x_i x_i^T (kron)
        hess a(eta_i) + diag(l2)``, assembled over chunks of ``chunk_size`` rows; ``kind="full"``
        is ``jax.hessian`` of the whole objective (exact for any objective; the reference).
        """
        return self.grad_and_hessian(coef, kind=kind, chunk_size=chunk_size)[1]


def packed_kron_gram(
    X: Float[Array, "c p"], w: Float[Array, " c"], curv: Float[Array, "c *mm"]
) -> Float[Array, "p p *u"]:
    """``sum_i w_i x_i x_i^T (kron) curv_i`` by one matrix product, packed: ``(p, p)`` for a
    scalar curvature; for ``m x m`` curvatures ``(p, p, m (m + 1) / 2)``, only the upper entries
    ``(r <= s)`` of each symmetric ``curv_i`` (contracted against a ``(c, p, m (m + 1) / 2)``
    temporary). Packed blocks add up over chunks of rows; `unpack_gram` expands the sum once."""
    c, p = X.shape
    if curv.ndim == 1:
        return (X * (w * curv)[:, None]).T @ X
    r, s = np.triu_indices(curv.shape[-1])
    wc = w[:, None] * curv[:, r, s]
    return (X.T @ (X[:, :, None] * wc[:, None, :]).reshape(c, -1)).reshape(p, p, -1)


def unpack_gram(packed: Float[Array, "p p *u"], m: int | None) -> Float[Array, "q q"]:
    """The ``(p m, p m)`` matrix (row-major ``coef`` index ``j m + r``) of a `packed_kron_gram`."""
    if m is None:
        return packed
    p = packed.shape[0]
    r, s = np.triu_indices(m)
    blocks = jnp.zeros((p, p, m, m), packed.dtype).at[:, :, r, s].set(packed)
    blocks = blocks.at[:, :, s, r].set(packed)
    return blocks.transpose(0, 2, 1, 3).reshape(p * m, p * m)
