r"""Data-parallel fits: rows split over devices, with JAX's own SPMD machinery doing the rest.

Nothing here communicates. `shard_rows` only *places* arrays: each array is split along its first
axis (rows) over the devices of a `jax.sharding.Mesh` and its other axes are replicated. Then
`fit_glm` runs unchanged (`train_classifier` is not tested on sharded inputs): ``jit`` propagates
the input shardings, so ``eta = X @ coef`` stays split by rows, and every sum over rows — the
objective, ``X^T r`` in the gradient, ``X^T diag(s) X`` in the Hessian — becomes a per-device
partial sum plus an XLA all-reduce. The coefficients (``p`` or ``p m`` numbers) and the Hessian (``q
x q``) come out replicated, so every device takes the same Newton step. The per-device work and
memory are ``1/D`` of the single-device fit's row-proportional part; only ``O(q^2)`` numbers cross
devices per iteration.

The same code runs over several hosts: after ``jax.distributed.initialize()`` on every process,
``jax.devices()`` lists all hosts' devices and a mesh over them shards rows across hosts; each host
holds only its own rows (build the global arrays with
``jax.make_array_from_process_local_data``; on CPU-only hosts set
``jax_cpu_collectives_implementation`` to ``"gloo"`` first). Value checks of the inputs are then
skipped (no process can read a global array whole).

Sums over rows run over chunks of rows (`glmjax._objective.GLMObjective.chunked_sum`); `fit_glm`
reads the number of row shards of ``X`` (`row_blocks`) and takes every chunk from each device's own
rows, so chunking never gathers a sharded array.
"""

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike


def row_blocks(X) -> int:
    """The number of blocks of rows that ``X`` is split into over devices (1 for an array on one
    device, a numpy array or a tracer)."""
    sharding = getattr(X, "sharding", None)
    if isinstance(X, jax.core.Tracer) or sharding is None or len(X.shape) == 0:
        return 1
    rows = sharding.shard_shape(X.shape)[0]
    return X.shape[0] // rows if rows else 1


def shard_rows(
    mesh: Mesh, *arrays: ArrayLike | None, axis: str | tuple[str, ...] | None = None
) -> tuple[Array | None, ...]:
    """Place each array on ``mesh``, split by rows (first axis) over the mesh axis ``axis``
    (default: all of the mesh's axes) and replicated along its other axes. ``None`` passes through
    (for optional ``weights``/``offset``). The mesh's axes are used as ``AxisType.Auto`` (sharding
    propagated by XLA), whatever their declared type.

    **Raises:** ``ValueError`` if an array is 0-d or its number of rows is not a multiple of the
    number of devices it is split over (pad with zero-weight rows to make it one — note that
    `fit_glm`'s objective averages over all ``n`` rows, zero-weight ones included, which rescales a
    ridge penalty).

    ```python
    import jax, numpy as np, glmjax as gj
    mesh = jax.make_mesh((jax.device_count(),), ("rows",))
    X, y = gj.shard_rows(mesh, X, y)
    fit = gj.fit_glm(X, y, gj.Poisson())      # coef replicated on every device
    ```
    """
    names = mesh.axis_names if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    unknown = [a for a in names if a not in mesh.axis_names]
    if unknown:
        raise ValueError(f"`axis` {unknown} is not an axis of the mesh {mesh.axis_names}")
    # glmjax's sums over rows contract a sharded axis; under Explicit axes (jax.make_mesh's
    # default) every such product would need an `out_sharding`, so XLA's automatic propagation
    # (Auto axes) decides instead: the reductions become all-reduces
    mesh = Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))
    devices = 1
    for name in names:
        devices *= mesh.shape[name]
    out = []
    for i, a in enumerate(arrays):
        if a is None:
            out.append(None)
            continue
        ndim = len(jax.numpy.shape(a))
        if ndim == 0:
            raise ValueError(f"array {i} is 0-d: there are no rows to split")
        n = jax.numpy.shape(a)[0]
        if n % devices:
            raise ValueError(
                f"array {i} has {n} rows, not a multiple of the {devices} devices it is split over"
            )
        spec = PartitionSpec(names, *([None] * (ndim - 1)))
        out.append(jax.device_put(a, NamedSharding(mesh, spec)))
    return tuple(out)
