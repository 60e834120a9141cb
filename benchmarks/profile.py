"""``profile``: where `fit_glm`'s seconds go, piece by piece, and what one evaluation costs.

For each workload (`glmjax._bench.make_problem`, penalised objective, float64) and method, the
four compiled pieces `fit_glm` runs are timed apart on the same inputs (medians of 3 after a
compiling call): *validate* (`validate_glm_inputs`: conversion to JAX arrays and the host-side
checks), *start* (``g(mean T(y))``), *solve* (the solver loop, its start and column summary
included) and *infer* (`fit_glm`'s inference: deviances, log-likelihood, covariance); then
`fit_glm` end to end. Beside them, one evaluation of the objective as the solvers ask for it:
the value alone, value and gradient, value, gradient and the structured Hessian.
"""

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import glmjax as gj
from glmjax import _fit, links
from glmjax._bench import make_problem, objective
from glmjax._objective import RowLikelihood
from glmjax._solver import Needs, auto_method, make_solver
from glmjax._validation import validate_glm_inputs

WORKLOADS = ["softmax_100k", "logistic_1m", "poisson_1m", "digits"]
METHODS = ["newton", "newton-cg", "lbfgs", "auto"]

_value = jax.jit(lambda obj, coef: obj.value(coef))
_evaluate = jax.jit(lambda obj, coef, needs: obj.evaluate(coef, needs), static_argnums=2)


def median_seconds(fn, repeats: int = 3) -> tuple[float, object]:
    """Median seconds of ``fn()`` after a first (compiling) call, and its last output."""
    out = jax.block_until_ready(fn())
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs)), out


def evaluation_seconds(name: str, quick: bool) -> dict:
    """One evaluation of the objective, as each kind of solver asks for it."""
    obj = objective(make_problem(name, quick), True)
    coef = jnp.full(obj.coef_shape, 0.01)
    return {
        "value": median_seconds(lambda: _value(obj, coef))[0],
        "gradient": median_seconds(lambda: _evaluate(obj, coef, Needs()))[0],
        "hessian": median_seconds(lambda: _evaluate(obj, coef, Needs(hessian="observed")))[0],
    }


def pieces(name: str, method: str, quick: bool) -> dict:
    """`fit_glm`'s pieces and its end-to-end time for one workload and method."""
    family, X1, y, l2 = make_problem(name, quick).glm(True)
    total, fit = median_seconds(lambda: gj.fit_glm(X1, y, family, l2=l2, method=method))
    resolved = auto_method(*X1.shape, family.natural_dim) if method == "auto" else method
    solver = make_solver(resolved)
    link, canonical = links.get(None, family)
    validate, (X, yy, w, off, l2v, _) = median_seconds(
        lambda: validate_glm_inputs(X1, y, family, l2=l2)
    )
    model = RowLikelihood(family, link, canonical)
    start, eta0 = median_seconds(
        lambda: _fit._start_eta(model, _fit._mean_statistic(family, X, yy, w))
    )
    tol = jnp.asarray(1e-8, X.dtype)
    solve, (solution, columns) = median_seconds(
        lambda: _fit._solve(
            model, X, yy, w, off, l2v, None, eta0, solver, 100, tol, 1, None, True
        )
    )  # fmt: skip
    options = _fit.infer_options(solver, canonical, off, "expected", True, 1, None)
    infer, _ = median_seconds(
        lambda: _fit._infer(model, X, yy, w, off, l2v, solution, columns, eta0, tol, None, options)
    )
    return {
        "method": method,
        "resolved_method": resolved,
        "fit_glm_seconds": total,
        "validate_seconds": validate,
        "start_seconds": start,
        "solve_seconds": solve,
        "infer_seconds": infer,
        "n_iter": int(fit.n_iter),
        "n_evals": int(fit.n_evals),
        "objective": float(fit.objective),
    }


def bench_profile(quick: bool, out: Path) -> dict:
    workloads = {}
    for name in tqdm(WORKLOADS, desc="profile", unit="problem"):
        problem = make_problem(name, quick)
        workloads[name] = {
            "description": problem.description,
            "evaluation_seconds": evaluation_seconds(name, quick),
            "fit_glm": [pieces(name, method, quick) for method in METHODS],
        }
    return {"workloads": workloads}
