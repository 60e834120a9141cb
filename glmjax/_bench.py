r"""``glmjax bench``: Newton against first-order methods, on the shipped digits and synthetic data.

newton, irls, gd, lbfgs and adam on digits, softmax n=100k d=32 k=8 and an ill-conditioned
logistic problem: iterations, run and compile seconds to a relative suboptimality of 1e-10, one
convergence PNG per problem, and ``solvers.json`` (every number, the machine, library versions,
BLAS kernels and thread counts). The comparisons with other libraries, the roofline and the runs
at scale live in the repository's ``benchmarks/`` folder (``python -m benchmarks.run``), which
also builds ``README_table.md`` from all the JSON files.

**The objective.** A problem has ``X`` (no intercept column; glmjax gets ``[1, X]``) and ``y``;
*penalised* is scikit-learn's ``C sum_i loss_i + 1/2 ||W||^2`` with ``C = 1`` and an unpenalised
intercept, i.e. glmjax's mean negative log-likelihood plus ``l2 / 2 ||W||^2`` with
``l2 = 1 / (C n)`` on every coefficient and 0 on the intercept row, with
``Categorical(k, minimal=False)`` for softmax; *MLE* is ``l2 = 0`` with ``Categorical(k,
minimal=True)``.

**Timing.** The solver loop is compiled ahead of time (``jax.jit(...).lower(...).compile()``:
compile seconds), then run (run seconds, the median of the repeats).

**BLAS.** Some machines here set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``, which select a slow
OpenBLAS kernel for numpy and for JAX's LAPACK calls; benchmark with both unset:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE glmjax bench``.
"""

import datetime
import importlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from . import links
from ._families import Bernoulli, Categorical, Poisson
from ._iterate import minimise
from ._objective import GLMObjective, RowLikelihood
from ._plots import Trace, plot_convergence, relative_suboptimality
from ._solution import ResultCode
from ._solver import make_solver
from ._start import mean_statistic, start_coef

TARGET_SUBOPTIMALITY = 1e-10
_ADAM = optax.adam(1e-2)  # one object for all fits: a new transformation would compile anew


# ----- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """``X`` without an intercept column, ``y``, and the family: ``categorical`` (with ``k``
    classes), ``bernoulli`` or ``poisson``. ``l2 = 1 / n`` is scikit-learn's ``C = 1``.
    ``name`` is the workload's key in `make_problem` (its full sizes: ``softmax_100k``);
    ``label`` and ``description`` state the sizes built (``softmax_4k`` with ``quick``)."""

    name: str
    label: str
    description: str
    X: np.ndarray
    y: np.ndarray
    family: str
    k: int = 0

    @property
    def l2(self) -> float:
        return 1.0 / self.X.shape[0]

    def glm(self, penalised: bool):
        """``(family, [1, X], y, l2)`` for glmjax: the penalised or the MLE objective."""
        n, d = self.X.shape
        X1 = np.hstack([np.ones((n, 1)), self.X])
        if self.family == "categorical":
            family = Categorical(self.k, minimal=not penalised)
            shape = (d + 1, family.natural_dim)
        else:
            family = Bernoulli() if self.family == "bernoulli" else Poisson()
            shape = (d + 1,)
        l2 = np.zeros(shape)
        if penalised:
            l2[1:] = self.l2
        return family, X1, self.y, l2


def _softmax_data(rng, n, d, k, *, scale):
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, k)) * scale / math.sqrt(d)
    b = rng.standard_normal(k) * 0.5
    logits = X @ W + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return X, np.minimum(y, k - 1)


def _linear_data(rng, n, d, *, family, rho=0.0, scale=1.0):
    # AR(1)-correlated features: corr(x_j, x_l) = rho^|j-l|, condition number ~ ((1+rho)/(1-rho))^2
    Z = rng.standard_normal((n, d))
    X = np.empty_like(Z)
    X[:, 0] = Z[:, 0]
    for j in range(1, d):
        X[:, j] = rho * X[:, j - 1] + math.sqrt(1 - rho**2) * Z[:, j]
    beta = rng.standard_normal(d) * scale / math.sqrt(d)
    eta = X @ beta + 0.2
    if family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    else:
        y = rng.poisson(np.exp(eta)).astype(np.float64)
    return X, y


def _count(n: int) -> str:
    """100_000 -> '100k', 1_000_000 -> '1m': the sizes in the problems' labels."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def make_problem(name: str, quick: bool) -> Problem:
    """The benchmark problems (``quick`` shrinks the synthetic ones so CI takes seconds)."""
    rng = np.random.default_rng(0)
    if name == "digits":
        from .datasets import load_digits

        data = load_digits()
        return Problem(
            name,
            name,
            "UCI digits (train split), n=1438, d=64, k=10",
            data.X_train,
            data.y_train,
            "categorical",
            10,
        )
    if name == "softmax_100k":
        n = 4_000 if quick else 100_000
        X, y = _softmax_data(rng, n, 32, 8, scale=2.0)
        return Problem(
            name, f"softmax_{_count(n)}", f"synthetic softmax, n={n:,}, d=32, k=8", X, y,
            "categorical", 8,
        )  # fmt: skip
    if name == "softmax_20k_256":
        n, d, k = (2_000, 32, 5) if quick else (20_000, 256, 20)
        X, y = _softmax_data(rng, n, d, k, scale=2.0)
        return Problem(
            name, f"softmax_{_count(n)}_{d}", f"synthetic softmax, n={n:,}, d={d}, k={k}", X, y,
            "categorical", k,
        )  # fmt: skip
    if name == "illcond":
        n = 4_000 if quick else 20_000
        X, y = _linear_data(rng, n, 20, family="bernoulli", rho=0.995, scale=2.0)
        return Problem(
            name, name, f"logistic, n={n:,}, d=20, AR(1) features rho=0.995", X, y, "bernoulli"
        )
    if name in ("logistic_1m", "poisson_1m"):
        n = 20_000 if quick else 1_000_000
        family = "bernoulli" if name == "logistic_1m" else "poisson"
        X, y = _linear_data(rng, n, 20, family=family, scale=1.0)
        label = f"{name.split('_')[0]}_{_count(n)}"
        return Problem(name, label, f"{family}, n={n:,}, d=20", X, y, family)
    raise ValueError(f"unknown problem {name!r}")


# ----- timing glmjax -----------------------------------------------------------------------------


def objective(problem: Problem, penalised: bool) -> GLMObjective:
    """The GLM objective of ``problem`` (canonical link, unit weights, no offset)."""
    family, X1, y, l2 = problem.glm(penalised)
    model = RowLikelihood(family, links.Canonical(family), True)
    n = len(y)
    return GLMObjective.from_data(
        model, jnp.asarray(X1), jnp.asarray(y), jnp.ones(n), jnp.zeros(n), jnp.asarray(l2)
    )


def time_glmjax(
    problem: Problem, method, *, penalised: bool, max_iter: int, tol: float, repeats: int = 1
) -> dict:
    """Compile the whole solver loop ahead of time, then run it ``repeats`` times."""
    solver = make_solver(method)
    obj = objective(problem, penalised)

    def solve(obj):
        eta0 = obj.family.link(mean_statistic(obj))
        coef0 = start_coef(obj, eta0)
        return minimise(obj, solver, coef0, max_iter=max_iter, tol=tol, scale=obj.column_scale())

    args = (obj,)

    t0 = time.perf_counter()
    compiled = jax.jit(solve).lower(*args).compile()
    compile_seconds = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sol = jax.block_until_ready(compiled(*args))
        runs.append(time.perf_counter() - t0)
    k = int(sol.n_iter)
    return {
        "method": method if isinstance(method, str) else "adam(1e-2)",
        "compile_seconds": compile_seconds,
        "run_seconds": float(np.median(runs)),
        "run_seconds_all": runs,
        "n_iter": k,
        "result": ResultCode(int(sol.result)).name,
        "objective": float(sol.history[k]),
        "history": np.asarray(sol.history[: k + 1]).tolist(),
        "coef": np.asarray(sol.coef),
    }


def _reach(history, best, run_seconds, target=TARGET_SUBOPTIMALITY):
    """Iterations and (proportional) seconds until the relative suboptimality is <= target."""
    sub = relative_suboptimality(history, best)
    hit = np.flatnonzero(sub <= target)
    if hit.size == 0:
        return None, None
    i = int(hit[0])
    return i, run_seconds * i / max(len(history) - 1, 1)


# ----- Newton against first-order methods -----------------------------------------------------


def bench_solvers(quick: bool, out: Path) -> tuple[dict, list[Path]]:
    """Every method on every problem (``quick``: the small softmax); the results, keyed by the
    problems' labels, and the convergence PNGs written to ``out``."""
    budgets = {
        "newton": 50,
        "irls": 50,
        "gd": 300 if quick else 2000,
        "lbfgs": 200 if quick else 1000,
        "adam": 300 if quick else 2000,
    }
    methods = {"newton": "newton", "irls": "irls", "gd": "gd", "lbfgs": "lbfgs", "adam": _ADAM}
    problems = ["softmax_100k"] if quick else ["digits", "softmax_100k", "illcond"]
    result = {"target_suboptimality": TARGET_SUBOPTIMALITY, "problems": {}}
    plots = []
    for name in tqdm(problems, desc="solvers", unit="problem"):
        problem = make_problem(name, quick)
        fits = {}
        for label, method in tqdm(methods.items(), desc=problem.label, leave=False):
            fits[label] = time_glmjax(
                problem, method, penalised=True, max_iter=budgets[label], tol=1e-14
            )
        png = out / f"convergence_{problem.label}.png"
        title = f"{', '.join(fits)} on {problem.description} (ridge: scikit-learn's C = 1)"
        best = plot_solver_traces(fits, png, title=title)
        plots.append(png)
        rows = {}
        for label, f in fits.items():
            iters, secs = _reach(f["history"], best, f["run_seconds"])
            f.pop("coef")
            rows[label] = {
                **f,
                "iterations_to_target": iters,
                "seconds_to_target": secs,
                "final_suboptimality": float(relative_suboptimality([f["objective"]], best)[0]),
            }
        result["problems"][problem.label] = {
            "description": problem.description,
            "best_objective": best,
            "plot": png.name,
            "methods": rows,
        }
    return result, plots


def _second_order_reached(result: dict) -> bool:
    return all(
        m["final_suboptimality"] <= TARGET_SUBOPTIMALITY
        for p in result["problems"].values()
        for name, m in p["methods"].items()
        if name in ("newton", "irls")
    )


def _solvers_table(result: dict) -> str:
    """One block per problem: its description (the sizes run), then a row per method."""
    target = f"{result['target_suboptimality']:g}"
    header = ("method", f"iterations to {target}", f"seconds to {target}", "iterations run",
              "run s", "compile s", "final rel. suboptimality")  # fmt: skip
    blocks = []
    for p in result["problems"].values():
        body = [
            (
                method,
                "not reached"
                if m["iterations_to_target"] is None
                else str(m["iterations_to_target"]),
                "-" if m["seconds_to_target"] is None else f"{m['seconds_to_target']:.3g}",
                str(m["n_iter"]),
                f"{m['run_seconds']:.3g}",
                f"{m['compile_seconds']:.3g}",
                f"{m['final_suboptimality']:.1e}",
            )  # fmt: skip
            for method, m in p["methods"].items()
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                      enumerate(zip(row, widths, strict=True)))
            for row in [header, *body]
        ]  # fmt: skip
        lines.insert(1, "  ".join("-" * w for w in widths))
        blocks.append("\n".join([p["description"], *lines]))
    return "\n\n".join(blocks)


def plot_solver_traces(fits: dict, png: Path, *, title: str) -> float:
    """The convergence PNG of one problem; returns the best objective. Each trace is cut where it
    first reaches rounding level (relative suboptimality 1e-15; the rest is flat), with its run
    seconds cut in proportion, so that slow methods' long tails do not squeeze the fast ones."""
    best = min(min(f["history"]) for f in fits.values())
    traces = {}
    for label, f in fits.items():
        h = np.asarray(f["history"])
        done = np.flatnonzero(relative_suboptimality(h, best) <= 1e-15)
        keep = len(h) if done.size == 0 else int(done[0]) + 1
        seconds = f["run_seconds"] * (keep - 1) / max(len(h) - 1, 1)
        traces[label] = Trace.from_history(h[:keep], seconds)
    plot_convergence(traces, str(png), title=title)
    return best


def machine_info() -> dict:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # `glmjax bench` requires it; benchmarks/ may run without it

        def threadpool_info():
            return []

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    mem = None
    if Path("/proc/meminfo").exists():
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    versions = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "optax": optax.__version__,
    }
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "load_average": os.getloadavg(),
        "versions": versions,
        "jax_devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "env": {
            k: os.environ.get(k)
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "XLA_FLAGS")
        },
        "blas": [
            {
                k: i.get(k)
                for k in ("internal_api", "architecture", "num_threads", "version", "filepath")
            }
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ],
    }


class Benchmark(NamedTuple):
    """A benchmark of ``glmjax bench``: ``help`` (one line, for ``--help``); ``run(quick, out)``
    returns its results and the files it wrote beside ``<name>.json``; ``passed(results)``: did
    it meet its target (else exit status 1); ``table(results)``: the summary printed;
    ``requires``: the modules of the ``bench`` extra it imports."""

    help: str
    run: Callable[[bool, Path], tuple[dict, list[Path]]]
    passed: Callable[[dict], bool]
    table: Callable[[dict], str]
    requires: tuple[str, ...] = ()


BENCHMARKS = {
    "solvers": Benchmark(
        f"newton, irls, gd, lbfgs, adam to relative suboptimality {TARGET_SUBOPTIMALITY:g} on "
        "digits, a softmax and an ill-conditioned logistic problem",
        bench_solvers,
        _second_order_reached,
        _solvers_table,
        requires=("threadpoolctl",),  # machine_info: the BLAS kernels and threads of the run
    ),
}
ELSEWHERE = (
    "the comparisons with other libraries (peers), the roofline, the profile and the runs at "
    "scale are in the repository's benchmarks/ folder: python -m benchmarks.run"
)


def missing_extra(names: Sequence[str]) -> str | None:
    """The one-line message naming the modules that the benchmarks ``names`` need and cannot
    import, with the command installing them; ``None`` when nothing is missing."""
    needed = dict.fromkeys(m for name in names for m in BENCHMARKS[name].requires)
    missing = []
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if not missing:
        return None
    return (
        f"{' and '.join(names)} needs {', '.join(missing)} (the bench extra): "
        'pip install "glmjax[bench]"'
    )


def run_bench(
    names: Sequence[str] | None = None, quick: bool = False, out: str | None = None
) -> int:
    """Run the benchmarks ``names`` (default: all of `BENCHMARKS`); write ``<name>.json`` and
    their plots to ``out`` (default ``benchmarks/results``, or ``benchmarks/results/quick`` with
    ``quick``), print a summary and the paths written. Returns 0, or 1 when a benchmark missed
    its target (solvers: a second-order method did not reach it)."""
    names = list(dict.fromkeys(names or BENCHMARKS))
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(
            f"unknown benchmark(s) {unknown}: `glmjax bench` runs {', '.join(BENCHMARKS)}; "
            + ELSEWHERE
        )
    message = missing_extra(names)
    if message is not None:
        raise ModuleNotFoundError(message)
    out_dir = Path(out or "benchmarks/results")
    if quick and out is None:
        out_dir = out_dir / "quick"
    out_dir.mkdir(parents=True, exist_ok=True)
    status, written = 0, []
    for name in names:
        bench = BENCHMARKS[name]
        t0 = time.perf_counter()
        result, files = bench.run(quick, out_dir)
        record = {
            "benchmark": name,
            "quick": quick,
            "machine": machine_info(),
            "wall_seconds": time.perf_counter() - t0,
            **result,
        }
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(record, indent=1, default=_jsonable))
        written += [path, *files]
        print(f"\n{bench.table(result)}")
        status |= 0 if bench.passed(result) else 1
    print("\nwrote:\n" + "\n".join(f"  {p.resolve()}" for p in written))
    return status


def _jsonable(x):
    if isinstance(x, np.generic | np.ndarray | jax.Array):
        return np.asarray(x).tolist()
    raise TypeError(type(x).__name__)
