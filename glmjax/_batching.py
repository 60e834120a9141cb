"""A conditional whose rare branch costs nothing under ``jax.vmap`` unless some member needs it.

``lax.cond`` with a batched predicate becomes a ``select``: both branches run for every member.
For Newton's linear solve and the covariance the rare branch is an eigendecomposition (a
fallback for a matrix that Cholesky cannot factorise well): run for each of 10,000 vmapped
``5 x 5`` fits at every iteration, it cost as much as the rest of the solve. `rare_cond` keeps
``lax.cond``'s meaning for one problem and, under ``vmap``, runs the rare branch (for the whole
batch, selecting per member) only when at least one member's predicate is true.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax


def rare_cond(pred, rare_fn, common, *operands):
    """``rare_fn(*operands)`` where ``pred``, else ``common`` (a pytree shaped like its output).

    ``rare_fn`` must not close over traced values: pass them in ``operands``. Give it a function
    that lives as long as the program (a module-level one): the conditional is built once per
    ``rare_fn``, so that calls outside ``jax.jit`` reuse its compilation.
    """
    return _chooser(rare_fn)(pred, common, operands)


@functools.cache
def _chooser(rare_fn):
    def common_branch(common, operands):
        return common

    def rare_branch(common, operands):
        return rare_fn(*operands)

    @jax.custom_batching.custom_vmap
    def choose(pred, common, operands):
        return lax.cond(pred, rare_branch, common_branch, common, operands)

    @choose.def_vmap
    def batched(axis_size, in_batched, pred, common, operands):
        def full(x, is_batched):
            return x if is_batched else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x))

        pred_b, common_b, operands_b = in_batched
        pred = full(pred, pred_b)
        common = jax.tree.map(full, common, common_b)
        operands = jax.tree.map(full, operands, operands_b)

        def rare():
            out = jax.vmap(rare_fn)(*operands)

            def pick(o, c):
                return jnp.where(pred.reshape(pred.shape + (1,) * (o.ndim - 1)), o, c)

            return jax.tree.map(pick, out, common)

        out = lax.cond(jnp.any(pred), rare, lambda: common)
        return out, jax.tree.map(lambda _: True, out)

    return choose
