r"""The GLM objective for any family and link, written once from per-row quantities.

**One row.** With linear predictor ``eta_i = x_i^T coef + offset_i`` and link ``g``, the row's
mean is ``mu_i = g^-1(eta_i)`` and its natural parameter ``theta_i = (grad a)^-1(mu_i)``
(`ExponentialFamily.link`); for the canonical link ``theta_i = eta_i``. Its negative
log-likelihood, up to ``log b(y)`` and the factor ``1/phi``, is

$$ \ell(\eta_i; t_i) = a(\theta_i) - \langle \theta_i, t_i \rangle , \qquad t_i = T(y_i) . $$

`RowLikelihood` gives ``ell``, its *score* ``d ell / d eta`` and its *curvature* by autodiff:
the observed ``d^2 ell / d eta^2`` or the expected one, ``E_y[d^2 ell / d eta^2]``, which is the
same second derivative with ``t`` held at ``mu(eta)`` (``ell`` is affine in ``t``; it equals
``mu'(eta)^2 / Var(mu)``, Fisher scoring's weight). For the canonical link score and curvature
are ``grad a(eta) - t`` and ``hessian a(eta)`` in both informations.

**All rows.** With prior weights ``w_i`` and ridge ``l2`` the objective minimised by every
solver is the mean over the ``n`` rows (zero-weight rows included)

$$ f(\mathrm{coef}) = \frac1n \sum_i w_i\, \ell(\eta_i; t_i)
    + \tfrac12 \sum_{jr} l2_{jr}\, \mathrm{coef}_{jr}^2 , $$

$$ \nabla f = \tfrac1n X^T [w \odot \ell'(\eta)] + l2 \odot \mathrm{coef}, \qquad
H = \tfrac1n \sum_i w_i\, x_i x_i^T \otimes \ell''(\eta_i) + \mathrm{diag}(l2) , $$

``coef`` flattened row-major (index ``j m + r``). `GLMObjective.evaluate` computes what a solver
needs in one pass over the rows, in chunks (`chunked_sum`): the chunk temporaries are
``O(chunk p m^2)`` numbers, never an ``(n, p, p)`` tensor. Rows with zero weight contribute
exactly 0 even where their ``ell`` is not finite (a mean outside the family's range, e.g.
``mu > 1`` for a log-link Binomial, makes ``ell`` NaN: the line search then steps back, as R's
step halving does). With rows sharded over ``D`` devices (`glmjax.shard_rows`) and
``row_blocks = D`` every chunk is a slice of each device's own rows, so nothing is gathered.
"""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float

from ._exponential_family import ExponentialFamily
from ._solver import Evaluation, Needs
from .links import Link

# rows per chunk. A vector family's chunk temporary holds chunk * p * m (m + 1) / 2 numbers;
# keeping chunk <= n / m^2 makes it no larger than X (but never tiny). A scalar family's (chunk, p)
# temporary is kept near 2 MiB of float64: a temporary the size of X is freshly paged in on every
# call, and on a CPU that costs more than the product (a Hessian of 1e6 x 21 rows took 80 ms in
# one product, 24 ms in chunks of 12k rows). A vector family's Hessian contraction reads its
# (chunk, p m (m + 1) / 2) temporary once more: kept near 4 MiB it stays in cache (softmax
# n=1e5, p=33, m=8: 0.12-0.13 s in chunks of 441 rows, 0.15-0.17 s in chunks of 1563).
_MIN_CHUNK = 256
_VALUE_AND_GRADIENT = Needs()
_SCALAR_CHUNK_NUMBERS = 2**18
_HESSIAN_CHUNK_NUMBERS = 2**19


def default_chunk_size(n: int, natural_dim: int | None, p: int = 1, hessian: bool = False) -> int:
    """Rows per chunk: ``max(256, 2^18 / p)`` for a scalar family, ``max(256, ceil(n / m^2))``
    for a vector one, or for its Hessian ``max(256, 2^19 / (p m (m + 1) / 2))`` (never more
    than ``n``)."""
    if natural_dim is None:
        rows = max(_MIN_CHUNK, _SCALAR_CHUNK_NUMBERS // max(p, 1))
    elif hessian:
        rows = max(_MIN_CHUNK, _HESSIAN_CHUNK_NUMBERS // (p * natural_dim * (natural_dim + 1) // 2))
    else:
        rows = max(_MIN_CHUNK, math.ceil(n / natural_dim**2))
    return max(1, min(n, rows))


class RowLikelihood(eqx.Module):
    """One row's negative log-likelihood as a function of its linear predictor (module
    docstring), for a family and a link; every method takes one row."""

    family: ExponentialFamily
    link: Link
    canonical: bool = eqx.field(static=True)

    def natural(self, eta):
        """``theta(eta)``, the natural parameter."""
        return eta if self.canonical else self.family.link(self.link.inverse(eta))

    def mean(self, eta):
        """``mu(eta) = E[T(y)]``."""
        return self.family.mean(eta) if self.canonical else self.link.inverse(eta)

    def nll(self, eta, t):
        """``(ell, |a(theta)| + |<theta, t>|)``: the value and the magnitude of its terms."""
        theta = self.natural(eta)
        a = self.family.log_partition(theta)
        inner = theta * t
        return a - jnp.sum(inner), jnp.abs(a) + jnp.sum(jnp.abs(inner))

    def score(self, eta, t):
        """``d ell / d eta``."""
        if self.canonical:
            return jax.grad(self.family.log_partition)(eta) - t
        return jax.grad(lambda e: self.nll(e, t)[0])(eta)

    def curvature(self, eta, t, information: str):
        """``d^2 ell / d eta^2`` (``"observed"``) or its expectation (``"expected"``)."""
        if self.canonical:
            return jax.hessian(self.family.log_partition)(eta)
        if information == "expected":
            t = lax.stop_gradient(self.mean(eta))
        return jax.hessian(lambda e: self.nll(e, t)[0])(eta)


def rows_dot(X: Float[Array, "c p"], v: Float[Array, "c *m"]) -> Float[Array, "p *m"]:
    """``X^T v``, the sum over rows of ``x_i v_i``. For a vector ``v`` as a broadcast product and
    a column sum: XLA's CPU transposed matrix-vector product took 10x longer (0.064 s against
    0.0064 s for 1e6 x 21 rows); a matrix ``v`` is a matrix product."""
    if v.ndim == 1:
        return jnp.sum(X * v[:, None], axis=0)
    return X.T @ v


def _masked(w, value):
    """``w * value`` per row, exactly 0 where ``w = 0`` (even if ``value`` is not finite)."""
    wb = w.reshape(w.shape + (1,) * (value.ndim - 1))
    return jnp.where(wb > 0, wb * value, 0.0)


class Rows(NamedTuple):
    """A chunk of rows: design, responses, sufficient statistics, prior weights, offsets."""

    X: Float[Array, "c p"]
    y: Float[Array, " c"]
    t: Float[Array, "c *m"]
    weights: Float[Array, " c"]
    offset: Float[Array, "c *m"]


def evaluation_sums(model: RowLikelihood, coef, rows: Rows, needs: Needs, start=True) -> dict:
    """The sums over one chunk of rows behind an `Evaluation` (they add up over chunks);
    ``start`` (a bool, may be traced): whether a ``hess_diag="start"`` diagonal is computed."""
    X, t, w = rows.X, rows.t, rows.weights
    eta = X @ coef + rows.offset
    value, scale = jax.vmap(model.nll)(eta, t)
    sums = {
        "f": jnp.sum(_masked(w, value)),
        "f_scale": jnp.sum(_masked(w, scale)),
        "grad": rows_dot(X, _masked(w, jax.vmap(model.score)(eta, t))),
    }
    information = needs.hessian or "observed"

    def curvature():
        return jax.vmap(lambda e, t: model.curvature(e, t, information))(eta, t)

    def diagonal(curv):
        diag = curv if curv.ndim == 1 else jnp.diagonal(curv, axis1=1, axis2=2)
        return rows_dot(X**2, _masked(w, diag))

    if needs.hessian is not None:
        curv = curvature()
        sums["hessian"] = packed_kron_gram(X, w, curv)
        if needs.hess_diag:
            sums["hess_diag"] = diagonal(curv)
    elif needs.hess_diag == "start":
        shape = jax.eval_shape(lambda: diagonal(curvature()))
        sums["hess_diag"] = lax.cond(
            start, lambda: diagonal(curvature()), lambda: jnp.zeros(shape.shape, shape.dtype)
        )
    elif needs.hess_diag:
        sums["hess_diag"] = diagonal(curvature())
    return sums


def finish_evaluation(sums: dict, coef, l2, n, natural_dim) -> Evaluation:
    """The `Evaluation` from `evaluation_sums` over all ``n`` rows, with the ridge ``l2``."""
    l2 = jnp.broadcast_to(l2, coef.shape)
    penalty = 0.5 * jnp.sum(l2 * coef**2)
    hessian = hess_diag = None
    if "hessian" in sums:
        hessian = unpack_gram(sums["hessian"], natural_dim) / n + jnp.diag(l2.reshape(-1))
    if "hess_diag" in sums:
        hess_diag = sums["hess_diag"] / n + l2
    return Evaluation(
        f=sums["f"] / n + penalty,
        f_scale=sums["f_scale"] / n + penalty,
        grad=sums["grad"] / n + l2 * coef,
        hessian=hessian,
        hess_diag=hess_diag,
    )


def null_projector(family: ExponentialFamily, l2, coef_shape) -> Float[Array, "q q"] | None:
    """The projector onto the Hessian's known null space (``None`` if it has none): for an
    over-parametrised family, moving a row ``j`` of ``coef`` by ``c 1`` changes nothing whenever
    that row has no ridge."""
    if family.identifiable:
        return None
    p, m = coef_shape
    free = jnp.all(jnp.broadcast_to(l2, (p, m)) == 0, axis=1)
    return jnp.kron(jnp.diag(free.astype(jnp.result_type(l2))), jnp.full((m, m), 1 / m))


def fill_null_space(H, P) -> Float[Array, "q q"]:
    """``H + s P`` with ``s`` the mean eigenvalue of ``H`` (``H`` if ``P`` is ``None``): the
    gradient is orthogonal to the known null space, so ``(H + s P)^{-1} grad`` is the
    minimum-norm ``H^+ grad``, by Cholesky instead of an eigendecomposition."""
    if P is None:
        return H
    return H + jnp.trace(H) / H.shape[0] * P.astype(H.dtype)


class GLMObjective(eqx.Module):
    """The penalised mean negative log-likelihood of a GLM (module docstring), as a pytree of
    data, family and link.

    **Arguments** (validated, one floating dtype; `from_data` builds it from responses):

    - `model`: the `RowLikelihood` (family and link).
    - `X`: the design matrix, `(n, p)`; `y`: the responses, `(n,)`.
    - `t`: the sufficient statistics `T(y_i)`, `(n,)` or `(n, m)`.
    - `weights`: prior weights, `(n,)`.
    - `offset`: added to the linear predictor, `(n,)` or `(n, m)`.
    - `l2`: ridge penalty, broadcastable to the coefficient shape.
    - `row_blocks`: the rows form this many contiguous blocks of equal size, one per device when
      they are sharded; sums over rows chunk within blocks (static; default 1).
    - `chunk_size`: rows per chunk (static; default `default_chunk_size`).
    """

    model: RowLikelihood
    X: Float[Array, "n p"]
    y: Float[Array, " n"]
    t: Float[Array, "n *m"]
    weights: Float[Array, " n"]
    offset: Float[Array, "n *m"]
    l2: Float[Array, "..."]
    row_blocks: int = eqx.field(static=True, default=1)
    chunk_size: int | None = eqx.field(static=True, default=None)

    @classmethod
    def from_data(
        cls, model, X, y, weights, offset, l2, *, row_blocks=1, chunk_size=None
    ) -> "GLMObjective":
        """Build from responses ``y`` (``T(y)`` computed once here, in ``X``'s dtype)."""
        X, y = jnp.asarray(X), jnp.asarray(y)
        family = model.family
        t = jax.vmap(family.sufficient_statistic)(y).astype(X.dtype)
        offset = jnp.asarray(offset, X.dtype)
        if family.natural_dim is not None and offset.ndim == 1:
            offset = offset[:, None]
        offset = jnp.broadcast_to(offset, t.shape)
        weights, l2 = jnp.asarray(weights, X.dtype), jnp.asarray(l2, X.dtype)
        return cls(model, X, y, t, weights, offset, l2, row_blocks, chunk_size)

    @property
    def family(self) -> ExponentialFamily:
        return self.model.family

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

    def chunked_sum(self, fn, hessian: bool = False, extra=None):
        """``sum_c fn(rows_c)`` over chunks of `Rows` (of `default_chunk_size` rows unless
        `chunk_size` says otherwise; ``hessian``: ``fn`` adds up a Hessian); with ``extra`` (a
        per-row array, such as cluster labels) ``fn(rows_c, extra_c)``.

        A chunk takes ``chunk_size`` rows from each of the ``row_blocks`` blocks (at the same
        place in each). The last chunk is taken flush with the end of its block
        (``dynamic_slice`` clamps) and the rows it shares with the previous chunk get weight 0,
        so nothing is padded or copied.
        """
        n, p = self.X.shape
        blocks = self.row_blocks
        size = n // blocks
        chunk = self.chunk_size or default_chunk_size(size, self.family.natural_dim, p, hessian)
        chunk = min(chunk, size)
        if chunk == size:  # one chunk per block: the rows as they are, nothing sliced
            rows = Rows(self.X, self.y, self.t, self.weights, self.offset)
            return fn(rows) if extra is None else fn(rows, extra)
        n_chunks = -(-size // chunk)

        def one(c):
            start = jnp.minimum(c * chunk, size - chunk)
            fresh = start + jnp.arange(chunk) >= c * chunk

            def take(a):
                a = a.reshape((blocks, size) + a.shape[1:])
                part = lax.dynamic_slice_in_dim(a, start, chunk, axis=1)
                return part.reshape((blocks * chunk,) + a.shape[2:])

            w = jnp.where(jnp.tile(fresh, blocks), take(self.weights), 0)
            rows = Rows(take(self.X), take(self.y), take(self.t), w, take(self.offset))
            return fn(rows) if extra is None else fn(rows, take(extra))

        first = one(0)
        return lax.fori_loop(1, n_chunks, lambda c, acc: jax.tree.map(jnp.add, acc, one(c)), first)

    # ----- the objective and its derivatives ----------------------------------------------------

    def value(self, coef: Float[Array, "p *m"]) -> Float[Array, ""]:
        """``f(coef)`` (one pass; used for starts and by optax's own line searches)."""
        nll = jax.vmap(self.model.nll)

        def block(rows):
            return jnp.sum(_masked(rows.weights, nll(rows.X @ coef + rows.offset, rows.t)[0]))

        return self.chunked_sum(block) / self.X.shape[0] + 0.5 * jnp.sum(self.l2 * coef**2)

    def evaluate(
        self, coef: Float[Array, "p *m"], needs: Needs = _VALUE_AND_GRADIENT, start=True
    ) -> Evaluation:
        """The objective, the magnitude of its terms, the gradient and what ``needs`` asks for
        (a structured Hessian, its diagonal), in one pass over the rows; ``needs.hessian ==
        "full"`` is ``jax.hessian`` of `value` (the reference). ``start``: whether this is the
        start's evaluation (see `Needs.hess_diag`)."""
        if needs.hessian == "full":
            ev = self.evaluate(coef, Needs(hess_diag=needs.hess_diag), start)
            H = jax.hessian(self.value)(coef).reshape(self.n_params, self.n_params)
            return Evaluation(ev.f, ev.f_scale, ev.grad, H, ev.hess_diag)
        sums = self.chunked_sum(
            lambda rows: evaluation_sums(self.model, coef, rows, needs, start),
            hessian=needs.hessian is not None,
        )
        return finish_evaluation(sums, coef, self.l2, self.X.shape[0], self.family.natural_dim)

    def hvp_at(self, coef: Float[Array, "p *m"], information: str = "observed"):
        """The linear map ``v -> H v`` at ``coef`` (``(1/n) X^T (w D (X v)) + l2 v`` with the
        per-row curvature ``D`` computed once here), for Newton-CG."""
        model, n = self.model, self.X.shape[0]
        eta = self.eta(coef)
        w = self.weights
        if self.family.natural_dim is None:
            curv = jax.vmap(lambda e, t: model.curvature(e, t, information))(eta, self.t)
            d = _masked(w, curv)

            def apply(u):
                return d * u

        else:
            _, linear = jax.linearize(lambda e: jax.vmap(model.score)(e, self.t), eta)

            def apply(u):
                return _masked(w, linear(u))

        def hvp(v):
            return rows_dot(self.X, apply(self.X @ v)) / n + self.l2 * v

        return hvp

    def exact_hessian(self, information: str) -> bool:
        """Whether the Hessian `evaluate` gives for ``information`` (``"observed"``,
        ``"expected"`` or ``"full"``) is the objective's own: the expected one only for the
        canonical link, where the two informations coincide."""
        return information != "expected" or self.model.canonical

    def fill_null_space(self, H: Float[Array, "q q"]) -> Float[Array, "q q"]:
        """`fill_null_space` with this objective's known null space (`null_projector`)."""
        return fill_null_space(H, null_projector(self.family, self.l2, self.coef_shape))

    def column_summary(self) -> "ColumnSummary":
        """`ColumnSummary` of ``X``, in one pass over its rows."""
        first = self.X[0]
        # reductions over rows rather than matrix-vector products: 3-10x faster for the small
        # problems of a vmapped fit (10,000 x 200 x 5: 0.014 s against 0.064 s)
        sq, differ = self.chunked_sum(
            lambda rows: (
                jnp.sum(rows.X**2 * rows.weights[:, None], axis=0),
                jnp.any(rows.X != first, axis=0).astype(jnp.int32),
            )
        )
        rms = jnp.sqrt(sq / jnp.sum(self.weights))
        return ColumnSummary(
            broadcast_scale(jnp.where(rms > 0, rms, 1.0), self.coef_shape),
            (differ == 0) & (first != 0),
        )

    def column_scale(self) -> Float[Array, "p *m"]:
        """`ColumnSummary.scale` alone."""
        return self.column_summary().scale

    def data_valid(self) -> Bool[Array, ""]:
        """Whether every weighted row's response is in the support and every input is finite
        (checked in the graph for traced inputs; concrete ones were validated beforehand)."""
        w = self.weights
        ok = self.family.response_in_support(self.y, w) | (w == 0)
        finite = jnp.all(jnp.isfinite(self.X)) & jnp.all(jnp.isfinite(self.offset))
        return jnp.all(ok) & finite & jnp.all(jnp.isfinite(w))


class ColumnSummary(NamedTuple):
    """What the solvers and the inference need to know about the columns of ``X``.

    - `scale`: the root mean square of each column over the weighted rows (1 for an all-zero
      column), broadcast to the coefficient shape: the solvers' standardising scale.
    - `intercepts`: `(p,)`, which columns are constant and non-zero (an intercept).
    """

    scale: Float[Array, "p *m"]
    intercepts: Bool[Array, " p"]


def broadcast_scale(scale: Float[Array, " p"], coef_shape) -> Float[Array, "p *m"]:
    """A per-column scale broadcast to the coefficient shape ``(p,)`` or ``(p, m)``."""
    return jnp.broadcast_to(scale.reshape((-1,) + (1,) * (len(coef_shape) - 1)), coef_shape)


def packed_kron_gram(
    X: Float[Array, "c p"], w: Float[Array, " c"], curv: Float[Array, "c *mm"]
) -> Float[Array, "p p *u"]:
    """``sum_i w_i x_i x_i^T (kron) curv_i`` by one matrix product, packed: ``(p, p)`` for a
    scalar curvature; for ``m x m`` curvatures ``(p, p, m (m + 1) / 2)``, only the upper entries
    ``(r <= s)`` of each symmetric ``curv_i`` (contracted against a ``(c, p, m (m + 1) / 2)``
    temporary). Packed blocks add up over chunks of rows; `unpack_gram` expands the sum once."""
    c, p = X.shape
    if curv.ndim == 1:
        return (X * _masked(w, curv)[:, None]).T @ X
    r, s = np.triu_indices(curv.shape[-1])
    wc = _masked(w, curv[:, r, s])
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
