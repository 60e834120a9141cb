"""``device``: the headline glmjax fits at full size in float64 and float32 on JAX's default device.

Run only when named (``benchmarks/gpu.sh`` runs it on a GPU; on a CPU it takes a few minutes,
``--quick`` shrinks the problems). Softmax n=100k d=32 k=8, logistic and Poisson regression with
n=1e6 d=20 (penalised objective, `glmjax._bench.make_problem`) by newton and lbfgs
(`glmjax._bench.time_glmjax`: the solver loop compiled ahead of time, medians of 3 runs), then
10,000 Poisson GLMs (n=200, p=5) by one ``jax.vmap`` of ``fit_glm``
(`benchmarks.scale.fit_many_poisson`). Every fit is scored with the float64 objective at its
coefficients, against the best float64 fit; the float32 many-Poisson coefficients are compared
with the float64 ones.
"""

from pathlib import Path

import jax
import numpy as np

from glmjax._bench import make_problem, time_glmjax

from .peers import score
from .scale import fit_many_poisson, many_poisson_data

WORKLOADS = ["softmax_100k", "logistic_1m", "poisson_1m"]
METHODS = ["newton", "lbfgs"]
DTYPES = ["float64", "float32"]
# float32 cannot resolve a relative decrease below ~1e-7: the stopping tolerance follows the dtype
_TOL = {"float64": 1e-12, "float32": 1e-6}
_MANY_TOL = {"float64": 1e-8, "float32": 1e-6}  # fit_glm's default tol, and float32's


def _precision(dtype: str):
    """A context in which JAX's default float is ``dtype``."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(dtype == "float64")
    from jax.experimental import enable_x64  # before jax 0.7

    return enable_x64(dtype == "float64")


def _workload(name: str, quick: bool, reps: int) -> dict:
    problem = make_problem(name, quick)
    fits = {}
    for dtype in DTYPES:
        for method in METHODS:
            with _precision(dtype):
                fit = time_glmjax(
                    problem,
                    method,
                    penalised=True,
                    max_iter=100 if method == "newton" else 5000,
                    tol=_TOL[dtype],
                    repeats=reps,
                )
            fit.pop("history")
            fit["objective_float64"] = score(problem, True, fit.pop("coef"))
            fits[f"{method} {dtype}"] = {"dtype": dtype, **fit}
    best = min(f["objective_float64"] for f in fits.values() if f["dtype"] == "float64")
    for f in fits.values():
        f["suboptimality"] = (f["objective_float64"] - best) / max(1, abs(best))
    return {"description": problem.description, "best_objective": best, "fits": fits}


def _many_poisson(quick: bool) -> dict:
    models = 200 if quick else 10_000
    X, y = many_poisson_data(models)
    runs, coef = {}, {}
    for dtype in DTYPES:
        with _precision(dtype):
            fits, runs[dtype] = fit_many_poisson(X, y, tol=_MANY_TOL[dtype])
        coef[dtype] = np.asarray(fits.coef, np.float64)
    return {
        "models": models,
        "rows_per_model": X.shape[1],
        "columns": X.shape[2],
        "runs": runs,
        "max_abs_coef_diff_float32_vs_float64": float(
            np.max(np.abs(coef["float32"] - coef["float64"]))
        ),
    }


def bench_device(quick: bool, out: Path) -> dict:
    reps = 1 if quick else 3
    return {
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0]),
        "tolerances": {"headline": _TOL, "many_poisson": _MANY_TOL},
        "workloads": {name: _workload(name, quick, reps) for name in WORKLOADS},
        "many_poisson": _many_poisson(quick),
    }
