"""Benchmarks at scale: out-of-core Newton, Hessian-free Newton, many small models in one call.

Run only when named (``python -m benchmarks.run streaming newton_cg many_poisson``); each writes
``scale_<name>.json``. Each ``run_*`` function takes ``quick`` (small sizes, for CI) and ``out``
(the results folder) and returns its numbers as a dict; times are wall-clock seconds after
``block_until_ready``, compile time reported apart.

- `run_streaming`: a Poisson GLM with ``N = 20,000,000`` rows and ``p = 20`` columns, generated in
  chunks into raw float64 files under ``/tmp`` (3.4 GB, reused when present), fitted by
  `fit_glm_streaming` in a fresh process whose peak resident memory (``VmHWM``) is reported; then
  streaming and in-memory `fit_glm` fits of the first 1,000,000 rows are compared.
- `run_newton_cg`: softmax regression with ``d = 1,000`` features and ``k = 100`` classes
  (``q = 99,000`` coefficients: a dense Hessian would take 78 GB) by Newton-CG and by L-BFGS, both
  through ``fit_glm(..., covariance=False)`` (compile time: the first call's time minus the
  second's).
- `run_many_poisson`: 10,000 independent Poisson GLMs (``n = 200``, ``p = 5``) fitted by one
  jit-compiled call (``jax.vmap`` of ``fit_glm``) against a Python loop over statsmodels fits of
  the same models (when statsmodels is installed).
- `run_many_negbin`: glmGamPoi's workload: ``G = 10,000`` genes x ``n = 2,000`` cells, one
  negative binomial GLM per gene with its own ``theta`` (``NegativeBinomial(r=None)``, as
  ``MASS::glm.nb``) on a shared design of 5 columns, by ``jax.jit(jax.vmap(fit_glm))`` over
  blocks of genes (a progress bar per block), against statsmodels' NB2 ``NegativeBinomial``
  fitted gene by gene on a subset (timed, extrapolated to ``G``; coefficients and ``theta``
  compared there), and against glmGamPoi's published figure (33,000 genes x 4,340 cells in
  about 90 s; Ahlmann-Eltze & Huber 2021), scaled by genes x cells.
"""

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent  # the checkout: `benchmarks` imports from here


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
        "n_iter": int(fit.n_iter),
        "n_evals": int(fit.n_evals),
        "nobs": int(fit.nobs),
        "converged": bool(fit.converged),
        "objective": float(fit.objective),
        "deviance": float(fit.deviance),
        "aic": float(fit.aic),
        "coef": np.asarray(fit.coef).tolist(),
        "stderr": np.asarray(fit.stderr).tolist(),
        "peak_rss_before_fit_mib": before["vm_hwm_mib"],
        **_peak_rss_mib(),
    }


def _streaming_in_child(folder: Path, n: int, p: int, chunk_rows: int, progress: bool) -> dict:
    code = textwrap.dedent(f"""
        import json, sys
        from benchmarks.scale import streaming_child
        r = streaming_child({str(folder)!r}, {n}, {p}, {chunk_rows}, progress={progress})
        sys.stdout.write("RESULT " + json.dumps(r) + "\\n")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=_ROOT, capture_output=True, text=True, check=True
    )
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _subset_comparison(X, y, chunk_rows: int) -> dict:
    """The same estimator on rows that fit in memory, streamed and by `fit_glm`."""
    import glmjax as gj

    streamed = gj.fit_glm_streaming(
        (X, y), gj.Poisson(), chunk_rows=chunk_rows, tol=1e-10, progress=False
    )
    in_memory = gj.fit_glm(X, y, gj.Poisson(), tol=1e-10)
    return {
        "subset_rows": len(y),
        "subset_max_abs_coef_diff_streaming_vs_in_memory": float(
            np.max(np.abs(np.asarray(streamed.coef) - np.asarray(in_memory.coef)))
        ),
        "subset_max_rel_stderr_diff": float(
            np.max(np.abs(np.asarray(streamed.stderr) / np.asarray(in_memory.stderr) - 1))
        ),
    }


def run_streaming(*, quick: bool = False, out: Path | None = None) -> dict:
    n, p = (200_000, 20) if quick else (20_000_000, 20)
    chunk_rows = 50_000 if quick else 250_000
    folder = Path(f"/tmp/glmjax_streaming_{n}x{p}")
    start = time.perf_counter()
    if not (folder / "y.f64").exists() or (folder / "y.f64").stat().st_size != 8 * n:
        _generate(folder, n, p)
    generate_seconds = time.perf_counter() - start
    full = _streaming_in_child(folder, n, p, chunk_rows, progress=not quick)
    X, y = _open(folder, n, p)
    subset = n // 20
    return {
        "rows": n,
        "columns": p,
        "chunk_rows": chunk_rows,
        "data_folder": str(folder),
        "data_gb_on_disk": (n * p + n) * 8 / 1e9,
        "generate_seconds": generate_seconds,
        "fit_seconds": full["seconds"],
        # the fit's passes (n_evals) and one more for the inference (deviance, covariance)
        "seconds_per_pass": full["seconds"] / (full["n_evals"] + 1),
        "gb_per_second_per_pass": (n * p + n) * 8 / 1e9 / (full["seconds"] / (full["n_evals"] + 1)),
        **{k: full[k] for k in ("n_iter", "n_evals", "nobs", "objective", "deviance", "aic")},
        "converged": full["converged"],
        "peak_rss_mib": full["vm_hwm_mib"],
        "ru_maxrss_mib": full["ru_maxrss_mib"],
        "peak_rss_before_fit_mib": full["peak_rss_before_fit_mib"],
        "max_abs_coef_error_vs_truth": float(
            np.max(np.abs(np.asarray(full["coef"]) - _poisson_coef(p)))
        ),
        "max_stderr": float(np.max(full["stderr"])),
        **_subset_comparison(np.array(X[:subset]), np.array(y[:subset]), chunk_rows // 5),
        "cpu_count": os.cpu_count(),
    }


# ----- Newton-CG on a large softmax ---------------------------------------------------------------


def _timed_fit(X, y, family, method: str, l2: float, max_iter: int) -> tuple:
    """`fit_glm` end to end without the (q, q) covariance: a first (compiling) call, then one
    timed call; returns the fit and its numbers."""
    import warnings

    import jax

    import glmjax as gj

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gj.ConvergenceWarning)
            return jax.block_until_ready(
                gj.fit_glm(X, y, family, method=method, l2=l2, max_iter=max_iter, covariance=False)
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
        "n_evals": int(result.n_evals),
        "converged": bool(result.converged),
        "objective": float(result.objective),
        "grad_norm": float(result.grad_norm),
    }


def run_newton_cg(*, quick: bool = False, out: Path | None = None) -> dict:
    import jax
    import jax.numpy as jnp

    import glmjax as gj

    n, d, k = (2_000, 100, 20) if quick else (20_000, 1_000, 100)
    l2 = 1e-3
    family = gj.Categorical(k)
    kx, kc, ky = jax.random.split(jax.random.key(0), 3)
    X = jnp.concatenate([jnp.ones((n, 1)), jax.random.normal(kx, (n, d - 1))], axis=1)
    W = jax.random.normal(kc, (d, k)) / jnp.sqrt(d)
    y = jax.random.categorical(ky, X @ W)
    cg, cg_stats = _timed_fit(X, y, family, "newton-cg", l2, 100)
    lbfgs, lbfgs_stats = _timed_fit(X, y, family, "lbfgs", l2, 5_000)
    q = cg.coef.size
    return {
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


# ----- many small Poisson GLMs --------------------------------------------------------------------


def many_poisson_data(models: int, n: int = 200, p: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``models`` independent Poisson problems: ``X (models, n, p)`` with an intercept column."""
    rng = np.random.default_rng(7)
    X = np.concatenate([np.ones((models, n, 1)), rng.normal(size=(models, n, p - 1))], axis=2)
    beta = np.concatenate(
        [rng.normal(1.0, 0.5, size=(models, 1)), rng.normal(0, 0.2, size=(models, p - 1))], axis=1
    )
    y = rng.poisson(np.exp(np.einsum("mnp,mp->mn", X, beta))).astype(np.float64)
    return X, y


def fit_many_poisson(X, y, tol: float = 1e-8) -> tuple:
    """All models by one jit-compiled call of ``jax.vmap(fit_glm)`` (in the current default
    float precision); returns the batched `GLMResult` and its numbers."""
    import jax
    import jax.numpy as jnp

    import glmjax as gj

    fit_all = jax.jit(jax.vmap(lambda X, y: gj.fit_glm(X, y, gj.Poisson(), tol=tol)))
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    start = time.perf_counter()
    compiled = fit_all.lower(Xj, yj).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fits = jax.block_until_ready(compiled(Xj, yj))
    codes, counts = np.unique(np.asarray(fits.result), return_counts=True)
    return fits, {
        "dtype": str(Xj.dtype),
        "tol": tol,
        "jax_vmap_seconds": time.perf_counter() - start,
        "jax_compile_seconds": compile_seconds,
        "not_converged": int(np.sum(~np.asarray(fits.converged))),
        "result_codes": {
            gj.ResultCode(int(c)).name: int(k) for c, k in zip(codes, counts, strict=True)
        },
        "max_grad_norm": float(np.max(np.asarray(fits.grad_norm))),
    }


def _statsmodels_loop(X, y) -> dict | None:
    try:
        import statsmodels.api as sm
    except ImportError:
        return None
    start = time.perf_counter()
    sm_fits = [
        sm.GLM(y[i], X[i], family=sm.families.Poisson()).fit(tol=1e-12) for i in range(len(y))
    ]
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "coef": np.stack([f.params for f in sm_fits]),
        "stderr": np.stack([f.bse for f in sm_fits]),
    }


def run_many_poisson(*, quick: bool = False, out: Path | None = None) -> dict:
    models, n, p = (200, 200, 5) if quick else (10_000, 200, 5)
    X, y = many_poisson_data(models, n, p)
    fits, stats = fit_many_poisson(X, y)
    result = {"models": models, "rows_per_model": n, "columns": p, **stats}
    sm = _statsmodels_loop(X, y)
    if sm is None:
        result["statsmodels"] = "not installed"
    else:
        jax_seconds, compile_seconds = stats["jax_vmap_seconds"], stats["jax_compile_seconds"]
        result.update(
            statsmodels_loop_seconds=sm["seconds"],
            speedup=sm["seconds"] / jax_seconds,
            speedup_including_compile=sm["seconds"] / (jax_seconds + compile_seconds),
            max_abs_coef_diff=float(np.max(np.abs(np.asarray(fits.coef) - sm["coef"]))),
            max_rel_stderr_diff=float(np.max(np.abs(np.asarray(fits.stderr) / sm["stderr"] - 1))),
        )
    result["cpu_count"] = os.cpu_count()
    return result


# ----- many negative binomial GLMs (glmGamPoi's workload) -----------------------------------------

_GLMGAMPOI = {"genes": 33_000, "cells": 4_340, "seconds": 90.0}  # Ahlmann-Eltze & Huber (2021)


def many_negbin_data(genes: int, cells: int, p: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A shared design ``X (cells, p)`` (intercept, a two-level condition, three covariates) and
    counts ``Y (genes, cells)``: per gene a mean level, effects and a ``theta`` drawn from
    log-normals (``theta`` from about 0.3 to 30)."""
    rng = np.random.default_rng(11)
    X = np.c_[np.ones(cells), rng.integers(0, 2, cells), rng.normal(size=(cells, p - 2))]
    beta = np.c_[rng.normal(1.0, 1.0, genes), rng.normal(0, 0.3, (genes, p - 1))]
    theta = np.exp(rng.normal(1.0, 1.0, genes))
    mu = np.exp(beta @ X.T)
    Y = rng.negative_binomial(theta[:, None], theta[:, None] / (theta[:, None] + mu))
    return X, Y.astype(np.float64)


def _statsmodels_negbin(X, Y) -> dict:
    import warnings

    import statsmodels.api as sm

    start = time.perf_counter()
    coef, theta = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for y in Y:
            fit = sm.NegativeBinomial(y, X, loglike_method="nb2").fit(
                method="newton", maxiter=100, tol=1e-10, disp=False
            )
            coef.append(fit.params[:-1])
            theta.append(1 / fit.params[-1])
    return {
        "seconds": time.perf_counter() - start,
        "coef": np.array(coef),
        "theta": np.array(theta),
    }


def run_many_negbin(*, quick: bool = False, out: Path | None = None) -> dict:
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    import glmjax as gj

    genes, cells, block, subset = (200, 300, 100, 10) if quick else (10_000, 2_000, 1_000, 50)
    X, Y = many_negbin_data(genes, cells)
    Xj = jnp.asarray(X)
    fit_block = jax.jit(jax.vmap(lambda y: gj.fit_glm(Xj, y, gj.NegativeBinomial(None))))
    start = time.perf_counter()
    compiled = fit_block.lower(jnp.asarray(Y[:block])).compile()
    compile_seconds = time.perf_counter() - start
    parts = []
    start = time.perf_counter()
    for b in tqdm(range(0, genes, block), desc="negative binomial genes", unit="block"):
        fits = jax.block_until_ready(compiled(jnp.asarray(Y[b : b + block])))
        parts.append({k: np.asarray(getattr(fits, k)) for k in ("coef", "theta", "result")})
    seconds = time.perf_counter() - start
    coef, theta, codes = (
        np.concatenate([q[k] for q in parts]) for k in ("coef", "theta", "result")
    )
    names, counts = np.unique(codes, return_counts=True)
    sm = _statsmodels_negbin(X, Y[:subset])
    ok = codes[:subset] == gj.ResultCode.successful
    per_gene_sm = sm["seconds"] / subset
    cell_genes = genes * cells
    glmgampoi_rate = _GLMGAMPOI["seconds"] / (_GLMGAMPOI["genes"] * _GLMGAMPOI["cells"])
    return {
        "genes": genes,
        "cells": cells,
        "columns": X.shape[1],
        "block_genes": block,
        "dtype": str(Xj.dtype),
        "jax_compile_seconds": compile_seconds,
        "jax_seconds": seconds,
        "result_codes": {
            gj.ResultCode(int(c)).name: int(k) for c, k in zip(names, counts, strict=True)
        },
        "statsmodels_subset_genes": subset,
        "statsmodels_subset_seconds": sm["seconds"],
        "statsmodels_extrapolated_seconds": per_gene_sm * genes,
        "speedup_vs_statsmodels": per_gene_sm * genes / seconds,
        "subset_max_rel_coef_diff": float(
            np.max(np.abs(coef[:subset][ok] - sm["coef"][ok]) / (1 + np.abs(sm["coef"][ok])))
        ),
        "subset_max_rel_theta_diff": float(
            np.max(np.abs(theta[:subset][ok] / sm["theta"][ok] - 1))
        ),
        "glmgampoi_published": _GLMGAMPOI,
        "glmgampoi_scaled_seconds": glmgampoi_rate * cell_genes,
        "jax_seconds_scaled_to_glmgampoi_size": seconds
        / cell_genes
        * _GLMGAMPOI["genes"]
        * _GLMGAMPOI["cells"],
        "cpu_count": os.cpu_count(),
    }
