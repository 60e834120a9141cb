"""The seed's batching: ceil(n / B) batches, shuffled each epoch, the last filled from all data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from glmjax.nn._batching import batch_indices, num_batches


def test_seed_example_has_157_batches_of_64(getkey):
    # the seed: 10,000 examples, batch_size 64 -> floor(10000 / 64) + 1 batches
    idx = np.asarray(batch_indices(getkey(), 10_000, 64))
    assert num_batches(10_000, 64) == 10_000 // 64 + 1 == 157
    assert idx.shape == (157, 64)


@pytest.mark.parametrize(("n", "batch_size"), [(10_000, 64), (128, 64), (1, 1), (100, 64), (7, 3)])
def test_every_example_seen_once_then_filler_from_all(getkey, n, batch_size):
    flat = np.asarray(batch_indices(getkey(), n, batch_size)).ravel()
    batches = -(-n // batch_size)
    assert flat.size == batches * batch_size
    np.testing.assert_array_equal(np.sort(flat[:n]), np.arange(n))
    filler = flat[n:]
    assert filler.size == batches * batch_size - n
    assert np.all((filler >= 0) & (filler < n))
    assert len(np.unique(filler)) == filler.size  # drawn without replacement


def test_batch_larger_than_data_fills_with_replacement(getkey):
    flat = np.asarray(batch_indices(getkey(), 10, 64)).ravel()
    np.testing.assert_array_equal(np.sort(flat[:10]), np.arange(10))
    assert flat.size == 64 and np.all((flat >= 0) & (flat < 10))


def test_filler_is_drawn_from_the_whole_data_set():
    """n = 100, B = 64: the last batch has 36 shuffled examples and 28 filled in. Over many keys
    the filled-in indices must be uniform on all 100 examples, so about 64% of them are examples
    that already appeared in the first batch (0% if drawn only from the partial chunk)."""
    n, batch_size, trials = 100, 64, 4000
    keys = jax.random.split(jax.random.key(123), trials)
    idx = np.asarray(jax.vmap(lambda k: batch_indices(k, n, batch_size))(keys))
    filler = idx[:, 1, n - batch_size :]  # (trials, 28)
    counts = np.bincount(filler.ravel(), minlength=n)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3
    in_first_batch = np.mean(
        [np.isin(f, first).mean() for f, first in zip(filler, idx[:, 0], strict=True)]
    )
    assert abs(in_first_batch - batch_size / n) < 0.01


def test_shuffle_is_uniform_over_positions():
    # the first slot of the epoch is equally likely to hold any example
    keys = jax.random.split(jax.random.key(7), 3000)
    idx = np.asarray(jax.vmap(lambda k: batch_indices(k, 10, 4))(keys))  # 3 batches, 2 filled in
    first_slot = idx[:, 0, 0]
    assert scipy.stats.chisquare(np.bincount(first_slot, minlength=10)).pvalue > 1e-3


def test_deterministic_for_a_key_and_different_for_another():
    a = batch_indices(jax.random.key(0), 1000, 64)
    b = batch_indices(jax.random.key(0), 1000, 64)
    c = batch_indices(jax.random.key(1), 1000, 64)
    np.testing.assert_array_equal(a, b)
    assert np.mean(np.asarray(a) != np.asarray(c)) > 0.9


def test_under_jit_matches_eager(getkey):
    key = getkey()
    jitted = jax.jit(batch_indices, static_argnums=(1, 2))
    np.testing.assert_array_equal(jitted(key, 1000, 64), batch_indices(key, 1000, 64))
    assert jnp.issubdtype(jitted(key, 1000, 64).dtype, jnp.integer)


def test_raw_uint32_keys_work():
    idx = batch_indices(jax.random.PRNGKey(0), 50, 8)
    np.testing.assert_array_equal(np.sort(np.asarray(idx).ravel()[:50]), np.arange(50))


@pytest.mark.parametrize(("n", "batch_size", "name"), [(0, 4, "`n`"), (10, 0, "`batch_size`")])
def test_bad_sizes_raise(getkey, n, batch_size, name):
    with pytest.raises(ValueError, match=name):
        batch_indices(getkey(), n, batch_size)
