"""x64 is the reference precision; float32 tests switch it off locally with
`jax.enable_x64(False)`."""

import gc

import jax
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    keys = iter(jax.random.split(jax.random.key(0), 10_000))
    return lambda: next(keys)


@pytest.fixture(autouse=True, scope="module")
def free_compiled_code():
    """Drop JAX's compiled code after each test module. An XLA:CPU executable holds some hundred
    memory maps (a `fit_glm` compile about 430), so a pytest-xdist worker that compiles a few
    hundred fits passes Linux's ``vm.max_map_count`` (65530) and segfaults in its next compile;
    module fixtures keep arrays, not executables."""
    yield
    jax.clear_caches()
    gc.collect()
