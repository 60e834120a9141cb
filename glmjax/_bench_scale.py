"""Benchmarks at scale: out-of-core Newton, Hessian-free Newton, many small models in one call.

Each ``run_*`` function takes ``quick`` (small sizes, for CI) and ``out`` (a folder), writes
``out/scale_<name>.json`` and returns the same numbers as a dict. ``python -m glmjax._bench_scale
NAME [--quick] [--out DIR]`` runs one from the command line (float64).

- `run_streaming`: a Poisson GLM with ``N = 20,000,000`` rows and ``p = 20`` columns, generated in
  chunks into raw float64 files on disk (3.2 GB), fitted by `fit_glm_streaming` in a fresh process
  whose peak resident memory (``VmHWM``) is reported; then streaming and in-memory `fit_glm` fits of
  the first 1,000,000 rows are compared.
- `run_newton_cg`: softmax regression with ``d = 1,000`` features and ``k = 100`` classes
  (``q = 99,000`` coefficients: a dense Hessian would take 78 GB) by Newton-CG and by L-BFGS
  (`optax.lbfgs`), both through ``fit_glm(..., covariance=False)`` (compile time apart: the first
  call's time minus the second's).
- `run_many_poisson`: 10,000 independent Poisson GLMs (``n = 200``, ``p = 5``) fitted by one
  jit-compiled call (``jax.vmap`` of ``fit_glm``) against a Python loop over statsmodels fits of
  the same models.

Times are wall-clock seconds after ``block_until_ready``; compile time is reported apart.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def _write(out: Path | None, name: str, result: dict) -> dict:
    out = Path(out) if out is not None else _RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _peak_rss_mib() -> dict:
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "vm_hwm_mib": int(fields["VmHWM"].split()[0]) / 1024,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ----- streaming ----------------------------------------------------------------------------------


def _poisson_coef(p: int) -> np.ndarray:
    rng = np.random.default_rng(12345)
    return np.concatenate([[0.5], 0.3 * rng.normal(size=p - 1) / np.sqrt(p)])


def _generate(folder: Path, n: int, p: int, block: int = 1_000_000) -> None:
    """Rows of ``X = [1, N(0, 1)...]`` and ``y ~ Poisson(exp(X beta))`` appended block by block
    to ``X.f64`` and ``y.f64`` (raw float64, C order), so memory holds one block."""
    beta = _poisson_coef(p)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "X.f64", "wb") as fx, open(folder / "y.f64", "wb") as fy:
        for start in range(0, n, block):
            rows = min(block, n - start)
            X = np.empty((rows, p))
            X[:, 0] = 1
            X[:, 1:] = rng.normal(size=(rows, p - 1))
            y = rng.poisson(np.exp(X @ beta)).astype(np.float64)
            X.tofile(fx)
            y.tofile(fy)


def _open(folder: Path, n: int, p: int):
    X = np.memmap(folder / "X.f64", dtype=np.float64, mode="r", shape=(n, p))
    y = np.memmap(folder / "y.f64", dtype=np.float64, mode="r", shape=(n,))
    return X, y


def streaming_child(folder: str, n: int, p: int, chunk_rows: int, progress: bool) -> dict:
    """The measured process: fit the on-disk data with `fit_glm_streaming`, report time and peak
    memory (run by `run_streaming` in a fresh interpreter)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import glmjax as gj

    X, y = _open(Path(folder), n, p)
    before = _peak_rss_mib()
    start = time.perf_counter()
    fit = gj.fit_glm_streaming((X, y), gj.Poisson(), chunk_rows=chunk_rows, progress=progress)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "n_iter": fit.n_iter,
        "n_passes": fit.n_passes,
        "converged": bool(fit.converged),
        "deviance": float(fit.deviance),
        "aic": float(fit.aic),
        "coef": np.asarray(fit.coef).tolist(),
        "stderr": np.asarray(fit.stderr).tolist(),
        "peak_rss_before_fit_mib": before["vm_hwm_mib"],
        **_peak_rss_mib(),
    }


def run_streaming(
    *, quick: bool = False, out: Path | None = None, folder: str | None = None
) -> dict:
    import jax

    import glmjax as gj

    n, p = (200_000, 20) if quick else (20_000_000, 20)
    chunk_rows = 50_000 if quick else 250_000
    subset = n // 20
    folder = Path(folder or f"/tmp/glmjax_streaming_{n}x{p}")
    start = time.perf_counter()
    if not (folder / "y.f64").exists() or (folder / "y.f64").stat().st_size != 8 * n:
        _generate(folder, n, p)
    generate_seconds = time.perf_counter() - start

    code = textwrap.dedent(f"""
        import json, sys
        from glmjax._bench_scale import streaming_child
        r = streaming_child({str(folder)!r}, {n}, {p}, {chunk_rows}, progress={not quick})
        sys.stdout.write("RESULT " + json.dumps(r) + "\\n")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    full = json.loads(line[len("RESULT ") :])

    # the same estimator on a subset that fits in memory, both ways
    X, y = _open(folder, n, p)
    X_sub, y_sub = np.array(X[:subset]), np.array(y[:subset])
    streamed = gj.fit_glm_streaming(
        (X_sub, y_sub), gj.Poisson(), chunk_rows=chunk_rows // 5, tol=1e-10, progress=False
    )
    in_memory = gj.fit_glm(
        jax.numpy.asarray(X_sub), jax.numpy.asarray(y_sub), gj.Poisson(), tol=1e-10
    )
    full_coef = np.asarray(full["coef"])
    result = {
        "rows": n,
        "columns": p,
        "chunk_rows": chunk_rows,
        "data_gb_on_disk": (n * p + n) * 8 / 1e9,
        "generate_seconds": generate_seconds,
        "fit_seconds": full["seconds"],
        # the fit's passes and one more for the deviance and log-likelihood
        "seconds_per_pass": full["seconds"] / (full["n_passes"] + 1),
        "n_iter": full["n_iter"],
        "n_passes": full["n_passes"],
        "deviance": full["deviance"],
        "aic": full["aic"],
        "converged": full["converged"],
        "peak_rss_mib": full["vm_hwm_mib"],
        "ru_maxrss_mib": full["ru_maxrss_mib"],
        "peak_rss_before_fit_mib": full["peak_rss_before_fit_mib"],
        "max_abs_coef_error_vs_truth": float(np.max(np.abs(full_coef - _poisson_coef(p)))),
        "max_stderr": float(np.max(full["stderr"])),
        "subset_rows": subset,
        "subset_max_abs_coef_diff_streaming_vs_in_memory": float(
            np.max(np.abs(np.asarray(streamed.coef) - np.asarray(in_memory.coef)))
        ),
        "subset_max_rel_stderr_diff": float(
            np.max(np.abs(np.asarray(streamed.stderr) / np.asarray(in_memory.stderr) - 1))
        ),
        "cpu_count": os.cpu_count(),
    }
    return _write(out, "streaming", result)


# ----- Newton-CG on a large softmax ---------------------------------------------------------------


def run_newton_cg(*, quick: bool = False, out: Path | None = None) -> dict:
    import warnings

    import jax
    import jax.numpy as jnp

    import glmjax as gj
    from glmjax._objective import GLMObjective

    n, d, k = (2_000, 100, 20) if quick else (20_000, 1_000, 100)
    l2 = 1e-3
    family = gj.Categorical(k)
    kx, kc, ky = jax.random.split(jax.random.key(0), 3)
    X = jnp.concatenate([jnp.ones((n, 1)), jax.random.normal(kx, (n, d - 1))], axis=1)
    W = jax.random.normal(kc, (d, k)) / jnp.sqrt(d)
    y = jax.random.categorical(ky, X @ W)
    glm_objective = GLMObjective.from_data(family, X, y, jnp.ones(n), jnp.zeros(n), l2)
    objective = jax.jit(lambda coef: glm_objective(coef))

    def timed(method, max_iter):
        """`fit_glm` end to end without the (q, q) covariance: the first call compiles."""

        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", gj.ConvergenceWarning)
                return jax.block_until_ready(
                    gj.fit_glm(
                        X, y, family, method=method, l2=l2, max_iter=max_iter, covariance=False
                    )
                )

        start = time.perf_counter()
        fit()
        first = time.perf_counter() - start
        start = time.perf_counter()
        result = fit()
        seconds = time.perf_counter() - start
        return result, {
            "seconds": seconds,
            "compile_seconds": max(first - seconds, 0.0),
            "n_iter": int(result.n_iter),
            "converged": bool(result.converged),
            "objective": float(objective(result.coef)),
            "grad_norm": float(result.grad_norm),
        }

    cg, cg_stats = timed("newton-cg", 100)
    lbfgs, lbfgs_stats = timed("lbfgs", 5_000)
    q = cg.coef.size
    result = {
        "rows": n,
        "features": d,
        "classes": k,
        "parameters": q,
        "dense_hessian_gb": q * q * 8 / 1e9,
        "l2": l2,
        "call": "gj.fit_glm(X, y, Categorical(k), method=..., l2=l2, covariance=False)",
        "newton_cg": cg_stats,
        "lbfgs": lbfgs_stats,
        "objective_rel_diff": abs(cg_stats["objective"] - lbfgs_stats["objective"])
        / abs(lbfgs_stats["objective"]),
        "max_abs_coef_diff": float(jnp.max(jnp.abs(cg.coef - lbfgs.coef))),
        "max_abs_coef": float(jnp.max(jnp.abs(cg.coef))),
        "cpu_count": os.cpu_count(),
    }
    return _write(out, "newton_cg", result)


# ----- many small Poisson GLMs --------------------------------------------------------------------


def run_many_poisson(*, quick: bool = False, out: Path | None = None) -> dict:
    import jax
    import jax.numpy as jnp
    import statsmodels.api as sm

    import glmjax as gj

    models, n, p = (200, 200, 5) if quick else (10_000, 200, 5)
    rng = np.random.default_rng(7)
    X = np.concatenate([np.ones((models, n, 1)), rng.normal(size=(models, n, p - 1))], axis=2)
    beta = np.concatenate(
        [rng.normal(1.0, 0.5, size=(models, 1)), rng.normal(0, 0.2, size=(models, p - 1))], axis=1
    )
    y = rng.poisson(np.exp(np.einsum("mnp,mp->mn", X, beta))).astype(np.float64)

    # one jit-compiled call: fit_glm vmapped over all models at once
    fit_all = jax.jit(jax.vmap(lambda X, y: gj.fit_glm(X, y, gj.Poisson())))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    start = time.perf_counter()
    compiled = fit_all.lower(Xj, yj).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fits = jax.block_until_ready(compiled(Xj, yj))
    jax_seconds = time.perf_counter() - start

    start = time.perf_counter()
    sm_fits = [
        sm.GLM(y[i], X[i], family=sm.families.Poisson()).fit(tol=1e-12) for i in range(models)
    ]
    sm_coef, sm_stderr = np.stack([f.params for f in sm_fits]), np.stack([f.bse for f in sm_fits])
    sm_seconds = time.perf_counter() - start
    result = {
        "models": models,
        "rows_per_model": n,
        "columns": p,
        "jax_vmap_seconds": jax_seconds,
        "jax_compile_seconds": compile_seconds,
        "statsmodels_loop_seconds": sm_seconds,
        "speedup": sm_seconds / jax_seconds,
        "speedup_including_compile": sm_seconds / (jax_seconds + compile_seconds),
        "not_converged": int(np.sum(~np.asarray(fits.converged))),
        "result_codes": {
            gj.ResultCode(int(c)).name: int(k)
            for c, k in zip(*np.unique(np.asarray(fits.result), return_counts=True), strict=True)
        },
        "max_grad_norm": float(np.max(np.asarray(fits.grad_norm))),
        "max_abs_coef_diff": float(np.max(np.abs(np.asarray(fits.coef) - sm_coef))),
        "max_rel_stderr_diff": float(np.max(np.abs(np.asarray(fits.stderr) / sm_stderr - 1))),
        "cpu_count": os.cpu_count(),
    }
    return _write(out, "many_poisson", result)


BENCHMARKS = {
    "streaming": run_streaming,
    "newton_cg": run_newton_cg,
    "many_poisson": run_many_poisson,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m glmjax._bench_scale")
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    result = BENCHMARKS[args.name](quick=args.quick, out=args.out)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
