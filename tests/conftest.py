"""x64 is the reference precision; float32 tests switch it off locally with
`jax.enable_x64(False)`."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    keys = iter(jax.random.split(jax.random.key(0), 10_000))
    return lambda: next(keys)
