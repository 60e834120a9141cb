r"""Input validation for the fits: shapes always, values whenever they are concrete.

`validate_glm_inputs` turns the user's ``X, y, weights, offset, l2, start`` into JAX arrays of one
floating dtype and raises a ``ValueError`` naming the argument for anything that would make the
fit meaningless, *before* anything is compiled.

**Two tiers.** Shape and dtype checks are static and always run, also under ``jax.jit``/
``jax.vmap``. Value checks (NaN/inf, the support of ``y``, signs of ``weights`` and ``l2``,
identifiability of ``X``) need concrete numbers: they run for every argument that is readable
(`glmjax._misc.is_concrete`) and are skipped for traced ones and for global arrays spread over
several processes. A traced bad value then shows up in the fit's result code
(`ResultCode.invalid_data`, checked inside the compiled fit); nothing raises, so that under
``vmap`` one bad data set does not abort the others. (``equinox.error_if`` would abort all.)

**The rules** (``n`` rows, ``p`` columns, ``m = family.natural_dim``):

- ``X``: a 2-d real numeric array with ``n >= 1`` rows and ``p >= 1`` columns, finite.
- ``y``: shape ``(n,)``, finite, a valid response for each row's prior weight
  (`ExponentialFamily.response_in_support`): labels ``0..k-1`` for `Categorical`; for `Binomial`
  ``y`` is a proportion and row ``i`` has ``n_i = family.trials * weights_i`` trials (R's
  ``glm(y ~ x, binomial, weights = n)``): ``n_i y_i`` must be an integer in ``[0, n_i]`` (R only
  warns for a non-integer count; here it is an error: the log-likelihood is then undefined).
- ``weights``: shape ``(n,)``, finite, ``>= 0``, not all zero. Rows with weight 0 drop out.
- ``offset``: shape ``(n,)``, or ``(n, m)`` for a vector family (an ``(n,)`` offset is then added
  to every entry of ``eta_i``), finite.
- ``l2``: a scalar or an array of the coefficient shape (``(p,)`` or ``(p, m)``), finite, ``>= 0``.
- ``start``: ``None`` or an array of the coefficient shape, finite.
- **Identifiability** (of the columns without a ridge): ``p`` must not exceed the number of rows
  with positive weight; no column of ``X`` may be all zero; at most one column may be constant
  (the intercept: two constant columns are collinear).

Integer and boolean inputs become the default floating dtype; a floating ``X`` keeps its dtype,
which every other argument is cast to.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._exponential_family import ExponentialFamily
from ._misc import is_concrete

_ALIGNMENT = 64  # bytes: XLA's CPU client uses a host buffer this aligned without copying it


def to_device(raw: np.ndarray) -> Array:
    """A NumPy array as a JAX array in one memory copy at most.

    ``jnp.asarray`` copies a large array at about 1.7 GB/s here (0.10 s for the 168 MB of a
    1e6 x 21 design); ``jax.device_put`` of a 64-byte-aligned, C-contiguous array of a dtype JAX
    keeps takes it as it is on the CPU (on an accelerator it is one transfer). Anything else is
    first copied by NumPy into an aligned buffer (0.015 s for the same array).
    """
    if raw.dtype != jax.dtypes.canonicalize_dtype(raw.dtype):
        return jnp.asarray(raw)
    if not (raw.flags.c_contiguous and raw.ctypes.data % _ALIGNMENT == 0):
        aligned = aligned_empty(raw.shape, raw.dtype)
        np.copyto(aligned, raw)
        raw = aligned
    return jax.device_put(raw)


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous NumPy array whose data start on a 64-byte boundary (so
    `to_device` takes it without a copy)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buffer = np.empty(nbytes + _ALIGNMENT, np.uint8)
    offset = -buffer.ctypes.data % _ALIGNMENT
    return buffer[offset : offset + nbytes].view(dtype).reshape(shape)


def as_array(value, name: str, dtype=None) -> Array:
    """``value`` as a real floating JAX array (of ``dtype`` if given); ``ValueError`` for
    non-numeric (object, string) or complex data."""
    if isinstance(value, jax.Array) or not is_concrete(value):
        x = value
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise ValueError(f"`{name}` must be real, got dtype {x.dtype}")
    else:
        try:
            raw = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"`{name}` must be a numeric array: {error}") from None
        if raw.dtype.kind == "c":
            raise ValueError(f"`{name}` must be real, got dtype {raw.dtype}")
        if raw.dtype.kind not in "biuf":
            raise ValueError(
                f"`{name}` must be a numeric array, got dtype {raw.dtype} (e.g. "
                f"{raw.ravel()[:1].tolist()})"
            )
        if dtype is not None and raw.dtype != dtype and raw.dtype.kind == "f":
            raw = raw.astype(dtype)  # one conversion, in NumPy
        x = to_device(raw)
    if dtype is not None:
        return x.astype(dtype)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _check_finite(x: Array, name: str) -> None:
    if is_concrete(x):
        bad = ~np.isfinite(np.asarray(x))
        if bad.any():
            raise ValueError(f"`{name}` contains {int(bad.sum())} NaN or inf value(s)")


def _check_response(family: ExponentialFamily, y: Array, weights: Array) -> None:
    ok = np.asarray(family.response_in_support(y, weights)) | (np.asarray(weights) == 0)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        y_np, w_np = np.asarray(y), np.asarray(weights)
        detail = f"e.g. y = {y_np[bad[:3]].tolist()}"
        if not np.all(w_np == 1):
            detail += f" with weights {w_np[bad[:3]].tolist()}"
        raise ValueError(
            f"`y` has {bad.size} value(s) outside the support of {family.name} "
            f"({family.support.description or 'its support'}), {detail}"
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
    zero, constant = _zero_and_constant_columns(X_np)
    zero = np.flatnonzero(zero & ~penalised)
    if zero.size:
        raise ValueError(
            f"`X` has all-zero column(s) {zero.tolist()}: their coefficients are not identifiable; "
            "drop them or pass `l2` > 0 for them"
        )
    constant = np.flatnonzero(constant & ~penalised)
    if constant.size > 1:
        raise ValueError(
            f"`X` has {constant.size} constant columns {constant.tolist()}: they are collinear "
            "(only one intercept column is identifiable); drop all but one or pass `l2` > 0"
        )


def _zero_and_constant_columns(X: np.ndarray, head: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Which columns of ``X`` are all zero and which are constant. Only the columns constant in
    the first ``head`` rows are read in full (typically the intercept alone: a constant-column
    test over all of a 1e6 x 21 design took 0.027 s, this one 0.002 s)."""
    candidates = np.flatnonzero(np.all(X[:head] == X[:1], axis=0))
    constant = np.zeros(X.shape[1], bool)
    constant[candidates] = np.all(X[:, candidates] == X[:1, candidates], axis=0)
    return constant & (X[0] == 0), constant


def validate_glm_inputs(
    X: ArrayLike,
    y: ArrayLike,
    family: ExponentialFamily,
    *,
    weights: ArrayLike | None = None,
    offset: ArrayLike | None = None,
    l2: ArrayLike = 0.0,
    start: ArrayLike | None = None,
    check_rank: bool = True,
) -> tuple[Float[Array, "n p"], Float[Array, " n"], Float[Array, " n"], Float[Array, "n *m"],
           Float[Array, "..."], Float[Array, "p *m"] | None]:  # fmt: skip
    """Check and convert the inputs of a fit (the rules are in the module docstring).

    **Returns:** ``(X, y, weights, offset, l2, start)`` as arrays of one floating dtype, with
    ``weights`` defaulting to ones and ``offset`` to zeros of the shape of ``eta`` (``(n,)`` or
    ``(n, m)``). ``check_rank=False`` skips the identifiability rules (a chunk of a streamed fit
    is not the whole design).

    **Raises:** ``ValueError`` naming the argument (always for shapes, for values when concrete).
    """
    if not isinstance(family, ExponentialFamily):
        raise ValueError(f"`family` must be an ExponentialFamily, got {family!r}")
    X = as_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"`X` must be a 2-d array (n, p), got shape {X.shape}")
    n, p = X.shape
    if n == 0 or p == 0:
        raise ValueError(f"`X` must have at least one row and one column, got shape {X.shape}")
    dtype = X.dtype
    m = family.natural_dim
    eta_shape = (n,) if m is None else (n, m)
    coef_shape = (p,) if m is None else (p, m)

    y = as_array(y, "y", dtype)
    if y.shape != (n,):
        raise ValueError(f"`y` must have shape ({n},) to match `X` {X.shape}, got {y.shape}")
    weights = jnp.ones((n,), dtype) if weights is None else as_array(weights, "weights", dtype)
    if weights.shape != (n,):
        raise ValueError(f"`weights` must have shape ({n},) to match `X`, got {weights.shape}")
    offset = jnp.zeros(eta_shape, dtype) if offset is None else as_array(offset, "offset", dtype)
    if offset.shape not in {eta_shape, (n,)}:
        expected = f"({n},)" if m is None else f"({n},) or ({n}, {m})"
        raise ValueError(f"`offset` must have shape {expected}, got {offset.shape}")
    if offset.shape != eta_shape:
        offset = jnp.broadcast_to(offset[:, None], eta_shape)
    l2 = as_array(l2, "l2", dtype)
    if l2.shape not in {(), coef_shape}:
        raise ValueError(
            f"`l2` must be a scalar or have the coefficient shape {coef_shape}, got {l2.shape}"
        )
    if start is not None:
        start = as_array(start, "start", dtype)
        if start.shape != coef_shape:
            raise ValueError(f"`start` must have the coefficient shape {coef_shape}, got "
                             f"{start.shape}")  # fmt: skip

    named = [(X, "X"), (y, "y"), (weights, "weights"), (offset, "offset"), (l2, "l2")]
    for value, name in named + ([(start, "start")] if start is not None else []):
        _check_finite(value, name)
    if is_concrete(weights):
        w_np = np.asarray(weights)
        if (w_np < 0).any():
            raise ValueError(
                f"`weights` must be non-negative, got {int((w_np < 0).sum())} negative value(s)"
            )
        if not (w_np > 0).any():
            raise ValueError("`weights` are all zero: there is nothing to fit")
    if is_concrete(l2) and (np.asarray(l2) < 0).any():
        raise ValueError("`l2` must be non-negative")
    if is_concrete(y) and is_concrete(weights) and all(map(is_concrete, jax.tree.leaves(family))):
        with jax.ensure_compile_time_eval():
            _check_response(family, y, weights)
    if check_rank and is_concrete(X) and is_concrete(weights) and is_concrete(l2):
        positive = np.broadcast_to(np.asarray(l2) > 0, coef_shape)
        penalised = positive if positive.ndim == 1 else positive.all(axis=1)
        _check_identifiable(X, weights, penalised)
    return X, y, weights, offset, l2, start
