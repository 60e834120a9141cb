"""The seed's mini-batches: one epoch's example indices, as a pure function of a PRNG key.

With `n` examples and batch size `B`, an epoch has `ceil(n / B)` batches (10,000 examples and
`B = 64`: `floor(10000 / 64) + 1 = 157`). The examples are shuffled, cut into batches of `B`, and
the last, partial batch is filled up with examples drawn at random from the *whole* data set, so
every batch holds exactly `B` examples and the parameters are updated once per batch. Every example
is seen at least once an epoch; the filled-in ones a second time.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray


def num_batches(n: int, batch_size: int) -> int:
    """`ceil(n / batch_size)`: the number of batches, and of parameter updates, in an epoch."""
    return math.ceil(n / batch_size)


def batch_indices(key: PRNGKeyArray, n: int, batch_size: int) -> Int[Array, "batches batch_size"]:
    """The example indices of one epoch's batches, `(ceil(n / batch_size), batch_size)`.

    Row `b` holds the indices of batch `b`. The first `n` entries (row-major) are a random
    permutation of `0..n-1`; the `ceil(n / B) * B - n` entries after them are drawn from all `n`
    examples, without replacement when there are no more of them than `n` (always the case when
    `B <= n`), otherwise with replacement. `n` and `batch_size` are static (Python integers), so
    this works under `jax.jit` with them fixed.

    **Example:**

        >>> import jax
        >>> batch_indices(jax.random.key(0), 10_000, 64).shape
        (157, 64)
    """
    if n < 1:
        raise ValueError(f"`n` must be at least 1, got {n}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, got {batch_size}")
    batches = num_batches(n, batch_size)
    missing = batches * batch_size - n
    shuffle_key, fill_key = jax.random.split(key)
    order = jax.random.permutation(shuffle_key, n)
    filler = jax.random.choice(fill_key, n, (missing,), replace=missing > n)
    return jnp.concatenate([order, filler]).reshape(batches, batch_size)
