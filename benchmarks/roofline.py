"""``roofline``: how close Newton's per-iteration work runs to the machine's matmul rate.

The reference is the float64 ``X^T X`` of a tall matrix in JAX (and numpy). For every workload
(`glmjax._bench.make_problem`, penalised objective; ``--quick``: three, at their quick sizes)
the structured Hessian assembly (``GLMObjective.evaluate(coef, Needs(hessian="observed"))``,
which also computes the objective and its gradient: ``O(n p m)`` next to the Hessian's
``O(n p^2 m^2)``) is timed and reported as GFLOP/s and as a fraction of the reference rate,
together with Newton's linear solve (`glmjax._solver.solve_newton`) and the Cholesky and eigh it
is made of. A gradient pass (``evaluate(coef)``: objective and gradient, what L-BFGS and each
Newton-CG product cost) is memory-bound: it is reported as GB/s of ``X`` read (``8 n D`` bytes:
each chunk of rows is read from memory once, ``X @ coef`` and ``X^T r`` both use it while it is
in cache) and as a fraction of the machine's streaming rate, measured as a column sum of a
float64 array of 1 GB (128 MB with ``--quick``).
"""

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from glmjax._bench import make_problem, objective
from glmjax._objective import default_chunk_size
from glmjax._solver import Needs, solve_newton

WORKLOADS = ["digits", "softmax_100k", "softmax_20k_256", "logistic_1m", "poisson_1m"]
QUICK_WORKLOADS = ["softmax_100k", "softmax_20k_256", "poisson_1m"]  # at their quick sizes
SYMMETRY_NOTE = (
    "`flops` = 2 n D^2 m^2 (every entry of H from its own products); `flops_performed` = "
    "2 n D^2 m (m + 1) / 2: the assembly contracts only the upper triangle of each m x m "
    "curvature hess a(eta_i) and mirrors it, so for m > 1 symmetry nearly halves the work. The "
    "D x D symmetry (a syrk) is not used, neither in the assembly nor in the X^T X reference (a "
    "general matmul, 2 n D^2)"
)

_hessian = jax.jit(lambda obj, coef: obj.evaluate(coef, Needs(hessian="observed")).hessian)
_gradient = jax.jit(lambda obj, coef: obj.evaluate(coef).grad)
_cholesky = jax.jit(jnp.linalg.cholesky)
_eigh = jax.jit(jnp.linalg.eigh)
_solve_newton = jax.jit(lambda H: solve_newton(H, H[0])[0])


def timeit(fn, *args, repeats: int = 3) -> float:
    """Median seconds of ``fn(*args)`` after a first (compiling) call; one repeat when that first
    call took over 10 s."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    if time.perf_counter() - t0 > 10:
        repeats = 1
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def xtx_rate(quick: bool) -> dict:
    """The float64 ``X^T X`` reference, in JAX and in numpy."""
    n, D = (20_000, 128) if quick else (200_000, 256)
    X = np.random.default_rng(1).standard_normal((n, D))
    flops = 2 * n * D * D
    seconds = timeit(jax.jit(lambda X: X.T @ X), jnp.asarray(X))
    np_seconds = timeit(lambda X: X.T @ X, X)
    return {
        "n": n,
        "D": D,
        "flops": flops,
        "jax_seconds": seconds,
        "jax_gflops": flops / seconds / 1e9,
        "numpy_seconds": np_seconds,
        "numpy_gflops": flops / np_seconds / 1e9,
        "note": "flops counted as 2 n D^2 (a general matmul, no symmetry)",
    }


def stream_rate(quick: bool) -> dict:
    """The memory-bandwidth reference: a column sum of a tall float64 array, in JAX."""
    n, D = (2_000_000, 8) if quick else (4_000_000, 32)
    A = jnp.asarray(np.random.default_rng(2).standard_normal((n, D)))
    seconds = timeit(jax.jit(lambda A: jnp.sum(A, axis=0)), A)
    gbs = 8 * n * D / seconds / 1e9
    return {"n": n, "D": D, "bytes": 8 * n * D, "seconds": seconds, "gbs": gbs}


def hessian_rate(name: str, quick: bool, peak_gflops: float, peak_gbs: float) -> dict:
    """One workload's Hessian assembly rate and Newton solve times."""
    problem = make_problem(name, quick)
    obj = objective(problem, True)
    coef = jnp.full(obj.coef_shape, 0.01)
    n, p = obj.X.shape
    m = obj.family.natural_dim or 1
    seconds = timeit(_hessian, obj, coef)
    gradient_seconds = timeit(_gradient, obj, coef)
    H = _hessian(obj, coef)
    flops = 2 * n * p * p * m * m
    # the assembly contracts only the m (m + 1) / 2 upper entries of each hess a(eta_i)
    performed = 2 * n * p * p * (m * (m + 1) // 2)
    return {
        "description": problem.description,
        "n": n,
        "D": p,
        "m": m,
        "flops": flops,
        "flops_performed": performed,
        "seconds": seconds,
        "gflops": flops / seconds / 1e9,
        "gflops_performed": performed / seconds / 1e9,
        "fraction_of_xtx": flops / seconds / 1e9 / peak_gflops,
        "fraction_of_xtx_performed": performed / seconds / 1e9 / peak_gflops,
        "gradient_seconds": gradient_seconds,
        "gradient_gbs": 8 * n * p / gradient_seconds / 1e9,
        "gradient_fraction_of_stream": 8 * n * p / gradient_seconds / 1e9 / peak_gbs,
        "chunk_rows": default_chunk_size(n, obj.family.natural_dim, p, hessian=True),
        # Newton's solve: Cholesky, and the eigh it falls back to when H is singular
        # (Categorical(k, minimal=False) with an unpenalised intercept row)
        "cholesky_seconds": timeit(_cholesky, H, repeats=1),
        "eigh_seconds": timeit(_eigh, H, repeats=1),
        "solve_newton_seconds": timeit(_solve_newton, H, repeats=1),
    }


def bench_roofline(quick: bool, out: Path) -> dict:
    xtx = xtx_rate(quick)
    stream = stream_rate(quick)
    hessians = {
        name: hessian_rate(name, quick, xtx["jax_gflops"], stream["gbs"])
        for name in tqdm(QUICK_WORKLOADS if quick else WORKLOADS, desc="roofline", unit="problem")
    }
    return {"xtx": xtx, "stream": stream, "hessians": hessians, "symmetry_note": SYMMETRY_NOTE}
