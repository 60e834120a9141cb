r"""Input validation for `fit_glm`: shapes always, values whenever they are concrete.

`validate_glm_inputs` turns the user's ``X, y, weights, offset, l2`` into JAX arrays of one floating
dtype and raises a ``ValueError`` naming the argument for anything that would make the fit
meaningless, *before* anything is compiled.

**Two tiers.** Shape checks are static and always run, also under ``jax.jit``/``jax.vmap``. Value
checks (NaN/inf, the support of ``y``, signs of ``weights`` and ``l2``, identifiability of ``X``)
need concrete numbers: they run for every argument that is not a tracer and are skipped for traced
ones (``fit_glm`` inside ``jax.jit``/``jax.vmap``) and for global arrays spread over several
processes (``jax.distributed``), which no one process can read. A traced bad value then shows up in
the fit itself: ``y`` outside the support has log-density ``-inf`` and the solver reports a
non-finite objective in its result code; nothing raises. (``equinox.error_if`` was not used: it
would put a runtime check into every compiled fit, and under ``vmap`` one bad data set would abort
all.)

**The rules** (``n`` rows, ``p`` columns, ``m = family.natural_dim``):

- ``X``: a 2-d real array with ``n >= 1`` rows and ``p >= 1`` columns, finite.
- ``y``: shape ``(n,)``, finite, in the family's support (`ExponentialFamily.check_support`):
  labels ``0..k-1`` for `Categorical`; for `Binomial` ``y`` is a proportion and row ``i`` has
  ``n_i = family.trials * weights_i`` trials (R's ``glm(y ~ x, binomial, weights = n)``):
  ``n_i y_i`` must be an integer in ``[0, n_i]`` (R only warns for a non-integer count; here it is
  an error, because the log-likelihood is then undefined).
- ``weights``: shape ``(n,)``, finite, ``>= 0``, not all zero. Rows with weight 0 drop out.
- ``offset``: shape ``(n,)``, or ``(n, m)`` for a vector family (an ``(n,)`` offset is then added
  to every entry of ``eta_i``), finite.
- ``l2``: a scalar or an array of the coefficient shape (``(p,)`` or ``(p, m)``), finite, ``>= 0``.
- **Identifiability** (of the columns without a ridge, i.e. with some entry of ``l2`` ``== 0``):
  ``p`` must not exceed the number of rows with positive weight; no column of ``X`` may be all
  zero; at most one column may be constant (that one is the intercept: two constant columns are
  collinear). These would make the Hessian singular and the coefficients not unique.

Integer and boolean inputs become the default floating dtype; a floating ``X`` keeps its dtype,
which every other argument is cast to.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._families import Binomial
from ._family import ExponentialFamily


def _is_concrete(x) -> bool:
    # a global array spread over several processes (jax.distributed) cannot be read here either
    return not isinstance(x, jax.core.Tracer) and getattr(x, "is_fully_addressable", True)


def _as_array(value, name: str, dtype=None) -> Array:
    x = jnp.asarray(value) if _is_concrete(value) else value
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise ValueError(f"`{name}` must be real, got dtype {x.dtype}")
    if dtype is not None:
        return x.astype(dtype)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _check_finite(x: Array, name: str) -> None:
    if _is_concrete(x):
        bad = ~np.isfinite(np.asarray(x))
        if bad.any():
            raise ValueError(f"`{name}` contains {int(bad.sum())} NaN or inf value(s)")


def _check_binomial(y: Array, trials: Array) -> None:
    """R's binomial with a proportion response: ``n_i y_i`` successes out of ``n_i`` trials."""
    y_np, n_np = np.asarray(y, np.float64), np.asarray(trials, np.float64)
    outside = (y_np < 0) | (y_np > 1)
    if outside.any():
        raise ValueError(
            f"`y` must be a proportion in [0, 1] for Binomial, got {int(outside.sum())} value(s) "
            f"outside, e.g. {y_np[outside][:3].tolist()}"
        )
    k = n_np * y_np
    tol = 1e-6 * np.maximum(1.0, k) + 8 * np.finfo(np.asarray(y).dtype).eps * n_np
    bad = np.abs(k - np.round(k)) > tol
    if bad.any():
        i = np.flatnonzero(bad)[:3]
        raise ValueError(
            f"`y` * trials must be an integer number of successes for Binomial (trials = "
            f"family.trials * `weights`), got {int(bad.sum())} non-integer count(s), e.g. y = "
            f"{y_np[i].tolist()} with trials {n_np[i].tolist()}"
        )


def _check_identifiable(X: Array, weights: Array, penalised: np.ndarray) -> None:
    """``penalised[j]``: every coefficient of column ``j`` has ``l2 > 0`` (ridge makes it
    identifiable whatever the data)."""
    if penalised.all():
        return
    X_np, w_np = np.asarray(X), np.asarray(weights)
    n_pos, p = int((w_np > 0).sum()), X_np.shape[1]
    if p > n_pos:
        raise ValueError(
            f"`X` has p = {p} columns but only n = {n_pos} rows with positive weight: the model is "
            "not identifiable (p > n); pass `l2` > 0 (a ridge penalty) to fit it"
        )
    zero = np.flatnonzero(np.all(X_np == 0, axis=0) & ~penalised)
    if zero.size:
        raise ValueError(
            f"`X` has all-zero column(s) {zero.tolist()}: their coefficients are not identifiable; "
            "drop them or pass `l2` > 0 for them"
        )
    constant = np.flatnonzero(np.all(X_np == X_np[:1], axis=0) & ~penalised)
    if constant.size > 1:
        raise ValueError(
            f"`X` has {constant.size} constant columns {constant.tolist()}: they are collinear "
            "(only one intercept column is identifiable); drop all but one or pass `l2` > 0"
        )


def validate_glm_inputs(
    X: ArrayLike,
    y: ArrayLike,
    family: ExponentialFamily,
    *,
    weights: ArrayLike | None = None,
    offset: ArrayLike | None = None,
    l2: ArrayLike = 0.0,
) -> tuple[
    Float[Array, "n p"],
    Float[Array, " n"],
    Float[Array, " n"],
    Float[Array, " n *m"],
    Float[Array, "..."],
]:
    """Check and convert the inputs of `fit_glm` (the rules are in the module docstring).

    **Returns:** ``(X, y, weights, offset, l2)`` as arrays of one floating dtype, with ``weights``
    defaulting to ones and ``offset`` to zeros of the shape of ``eta`` (``(n,)`` or ``(n, m)``).

    **Raises:** ``ValueError`` naming the argument (always for shapes, for values when concrete).
    """
    if not isinstance(family, ExponentialFamily):
        raise ValueError(f"`family` must be an ExponentialFamily, got {family!r}")
    X = _as_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"`X` must be a 2-d array (n, p), got shape {X.shape}")
    n, p = X.shape
    if n == 0 or p == 0:
        raise ValueError(f"`X` must have at least one row and one column, got shape {X.shape}")
    dtype = X.dtype
    m = family.natural_dim
    eta_shape = (n,) if m is None else (n, m)
    coef_shape = (p,) if m is None else (p, m)

    y = _as_array(y, "y", dtype)
    if y.shape != (n,):
        raise ValueError(f"`y` must have shape ({n},) to match `X` {X.shape}, got {y.shape}")
    weights = jnp.ones((n,), dtype) if weights is None else _as_array(weights, "weights", dtype)
    if weights.shape != (n,):
        raise ValueError(f"`weights` must have shape ({n},) to match `X`, got {weights.shape}")
    offset = jnp.zeros(eta_shape, dtype) if offset is None else _as_array(offset, "offset", dtype)
    if offset.shape not in {eta_shape, (n,)}:
        expected = f"({n},)" if m is None else f"({n},) or ({n}, {m})"
        raise ValueError(f"`offset` must have shape {expected}, got {offset.shape}")
    if offset.shape != eta_shape:
        offset = jnp.broadcast_to(offset[:, None], eta_shape)
    l2 = _as_array(l2, "l2", dtype)
    if l2.shape not in {(), coef_shape}:
        raise ValueError(
            f"`l2` must be a scalar or have the coefficient shape {coef_shape}, got {l2.shape}"
        )

    for value, name in [(X, "X"), (y, "y"), (weights, "weights"), (offset, "offset"), (l2, "l2")]:
        _check_finite(value, name)
    if _is_concrete(weights):
        w_np = np.asarray(weights)
        if (w_np < 0).any():
            raise ValueError(
                f"`weights` must be non-negative, got {int((w_np < 0).sum())} negative value(s)"
            )
        if not (w_np > 0).any():
            raise ValueError("`weights` are all zero: there is nothing to fit")
    if _is_concrete(l2) and (np.asarray(l2) < 0).any():
        raise ValueError("`l2` must be non-negative")
    if _is_concrete(y):
        if isinstance(family, Binomial):
            if _is_concrete(weights) and _is_concrete(family.trials):
                _check_binomial(y, family.trials * weights)
        else:
            family.check_support(y, "y")
    if _is_concrete(X) and _is_concrete(weights) and _is_concrete(l2):
        positive = np.broadcast_to(np.asarray(l2) > 0, coef_shape)
        penalised = positive if positive.ndim == 1 else positive.all(axis=1)
        _check_identifiable(X, weights, penalised)
    return X, y, weights, offset, l2
