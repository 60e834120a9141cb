r"""``glmjax bench``: Newton against first-order methods, glmjax against peers, the roofline.

- ``solvers``: newton, irls, gd, lbfgs and adam on digits, softmax n=100k d=32 k=8 and an
  ill-conditioned logistic problem: iterations, run and compile seconds to a relative
  suboptimality of 1e-10, one convergence PNG per problem.
- ``peers``: glmjax against scikit-learn, statsmodels, glum, nemos and glmax on the same
  objective, as time ratios (each peer in its own process, 1 and 2 BLAS threads, the faster
  counts).
- ``roofline``: float64 ``X^T X`` rate on a tall matrix, and each workload's structured Hessian
  assembly as FLOP/s and as a fraction of it.
- ``mlp``: `train_classifier` seconds per epoch on digits against the same loop in PyTorch.

Everything lives in the package (this module, `glmjax._bench_peers` for the peer processes), so
``glmjax bench`` works whether glmjax is installed editable or not; results go to ``--out``
(default ``benchmarks/results`` under the current folder): ``<name>.json`` with every number and the
machine, library versions, BLAS kernels and thread counts, PNG plots, and ``README_table.md``
(regenerated from all the JSON files present).

**The objectives.** A problem has ``X`` (no intercept column; glmjax gets ``[1, X]``) and ``y``.
*Penalised* is scikit-learn's ``C sum_i loss_i + 1/2 ||W||^2`` with ``C = 1`` and an unpenalised
intercept, i.e. glmjax's mean negative log-likelihood plus ``l2 / 2 ||W||^2`` with
``l2 = 1 / (C n)`` on every coefficient and 0 on the intercept row, with
``Categorical(k, minimal=False)`` for softmax. *MLE* (statsmodels, glmax: no ridge) is ``l2 = 0``
with ``Categorical(k, minimal=True)``. Every peer's coefficients are scored with glmjax's own
objective; a timing counts only when that score is within ``1e-8`` (relative) of the best found.

**Timing.** glmjax's solver loop is compiled ahead of time (``jax.jit(...).lower(...).compile()``:
compile seconds), then run (run seconds, the median of the repeats). ``fit_glm`` seconds add input
validation and the inference of `GLMResult` (standard errors, deviance, ...) to the solver: the
number a user sees on a second call. Peers' seconds are their ``fit`` calls (for JAX peers after a
first, compiling call).

**BLAS.** Some machines here set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``, which select a slow
OpenBLAS kernel; it slows numpy's peers *and* JAX's LAPACK calls (Cholesky, eigh: jaxlib calls
scipy's OpenBLAS). Benchmark with both unset for that command:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE glmjax bench``; the JSON records the kernel used.
"""

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from ._families import Bernoulli, Categorical, Poisson
from ._objective import GLMObjective, default_chunk_size
from ._plots import Trace, plot_convergence, relative_suboptimality
from ._solvers import ResultCode, make_solver, minimise, solve_psd

TARGET_SUBOPTIMALITY = 1e-10
AGREEMENT = 1e-8
PEERS_PYTHON_ENV = "GLMJAX_BENCH_PEERS_PYTHON"  # a second Python with nemos and glmax installed
_ADAM = optax.adam(1e-2)  # one object for all fits: a new transformation would compile anew


# ----- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """``X`` without an intercept column, ``y``, and the family: ``categorical`` (with ``k``
    classes), ``bernoulli`` or ``poisson``. ``l2 = 1 / n`` is scikit-learn's ``C = 1``."""

    name: str
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


def make_problem(name: str, quick: bool) -> Problem:
    """The benchmark problems (``quick`` shrinks the synthetic ones so CI takes seconds)."""
    rng = np.random.default_rng(0)
    if name == "digits":
        from .datasets import load_digits

        data = load_digits()
        return Problem(
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
        return Problem(name, f"synthetic softmax, n={n:,}, d=32, k=8", X, y, "categorical", 8)
    if name == "softmax_20k_256":
        n, d, k = (2_000, 32, 5) if quick else (20_000, 256, 20)
        X, y = _softmax_data(rng, n, d, k, scale=2.0)
        return Problem(name, f"synthetic softmax, n={n:,}, d={d}, k={k}", X, y, "categorical", k)
    if name == "illcond":
        n = 4_000 if quick else 20_000
        X, y = _linear_data(rng, n, 20, family="bernoulli", rho=0.995, scale=2.0)
        return Problem(
            name, f"logistic, n={n:,}, d=20, AR(1) features rho=0.995", X, y, "bernoulli"
        )
    if name in ("logistic_1m", "poisson_1m"):
        n = 20_000 if quick else 1_000_000
        family = "bernoulli" if name == "logistic_1m" else "poisson"
        X, y = _linear_data(rng, n, 20, family=family, scale=1.0)
        return Problem(name, f"{family}, n={n:,}, d=20", X, y, family)
    raise ValueError(f"unknown problem {name!r}")


# ----- timing glmjax -----------------------------------------------------------------------------


def _objective_fn(problem: Problem, penalised: bool):
    family, X1, y, l2 = problem.glm(penalised)
    obj = GLMObjective.from_data(
        family,
        jnp.asarray(X1),
        jnp.asarray(y),
        jnp.ones(len(y)),
        jnp.zeros(len(y)),
        jnp.asarray(l2),
    )
    return jax.jit(lambda coef: obj(coef)), obj


def time_glmjax(
    problem: Problem, method, *, penalised: bool, max_iter: int, tol: float, repeats: int = 1
) -> dict:
    """Compile the whole solver loop ahead of time, then run it ``repeats`` times."""
    family, X1, y, l2 = problem.glm(penalised)
    solver = make_solver(method)
    n = len(y)
    args = (jnp.asarray(X1), jnp.asarray(y), jnp.ones(n), jnp.zeros(n), jnp.asarray(l2))

    def solve(X, y, w, offset, l2):
        objective = GLMObjective.from_data(family, X, y, w, offset, l2)
        return minimise(objective, solver, max_iter=max_iter, tol=tol)

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


def time_fit_glm(problem: Problem, *, penalised: bool, repeats: int = 1) -> dict:
    """``gj.fit_glm`` end to end (validation, solver, inference), second call after a first."""
    from ._fit import fit_glm

    family, X1, y, l2 = problem.glm(penalised)
    t0 = time.perf_counter()
    fit = fit_glm(X1, y, family, l2=l2)
    jax.block_until_ready(fit)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fit_glm(X1, y, family, l2=l2))
        runs.append(time.perf_counter() - t0)
    return {
        "first_call_seconds": first,
        "run_seconds": float(np.median(runs)),
        "n_iter": int(fit.n_iter),
    }


def _reach(history, best, run_seconds, target=TARGET_SUBOPTIMALITY):
    """Iterations and (proportional) seconds until the relative suboptimality is <= target."""
    sub = relative_suboptimality(history, best)
    hit = np.flatnonzero(sub <= target)
    if hit.size == 0:
        return None, None
    i = int(hit[0])
    return i, run_seconds * i / max(len(history) - 1, 1)


# ----- 1. Newton against first-order methods -----------------------------------------------------


def bench_solvers(quick: bool, out: Path) -> dict:
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
    for name in tqdm(problems, desc="solvers", unit="problem"):
        problem = make_problem(name, quick)
        fits = {}
        for label, method in tqdm(methods.items(), desc=name, leave=False):
            fits[label] = time_glmjax(
                problem, method, penalised=True, max_iter=budgets[label], tol=1e-14
            )
        png = out / f"convergence_{name}.png"
        best = plot_solver_traces(fits, png, title=problem.description)
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
        result["problems"][name] = {
            "description": problem.description,
            "best_objective": best,
            "plot": png.name,
            "methods": rows,
        }
    return result


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


# ----- 2. glmjax against the peers ---------------------------------------------------------------

# (peer, solver, objective) per family; statsmodels and glmax fit without penalty
_PEERS = {
    "categorical": [
        ("sklearn", "newton-cholesky", "penalised"),
        ("sklearn", "newton-cg", "penalised"),
        ("sklearn", "lbfgs", "penalised"),
        ("statsmodels", "newton", "mle"),
        ("nemos", "LBFGS", "penalised"),
    ],
    "bernoulli": [
        ("sklearn", "newton-cholesky", "penalised"),
        ("sklearn", "newton-cg", "penalised"),
        ("sklearn", "lbfgs", "penalised"),
        ("glum", "irls-cd", "penalised"),
        ("statsmodels", "irls", "mle"),
        ("nemos", "LBFGS", "penalised"),
        ("glmax", "irls", "mle"),
        ("glmax", "newton", "mle"),
    ],
    "poisson": [
        ("sklearn", "newton-cholesky", "penalised"),
        ("sklearn", "lbfgs", "penalised"),
        ("glum", "irls-cd", "penalised"),
        ("statsmodels", "irls", "mle"),
        ("nemos", "LBFGS", "penalised"),
        ("glmax", "irls", "mle"),
        ("glmax", "newton", "mle"),
    ],
}
_NOT_APPLICABLE = {
    "categorical": {
        "glum": "glum has no multinomial (softmax) family",
        "glmax": "glmax has no multinomial (softmax) family",
    },
    "poisson": {"sklearn newton-cg": "PoissonRegressor offers lbfgs and newton-cholesky only"},
}
# the dense-Hessian softmax (d) last: its Newton iterations take minutes on 2 cores
_WORKLOADS = ["softmax_100k", "logistic_1m", "poisson_1m", "digits", "softmax_20k_256"]
_QUICK_WORKLOADS = ["softmax_100k", "poisson_1m"]
_PEER_TIMEOUT = 600
# the 2-thread rerun is skipped when the 1-thread run already took this long (the budget of a
# full run is ~25 minutes on 2 cores; on a loaded machine 1 thread is the faster one)
_ONE_THREAD_SKIP_SECONDS = 20.0
# dense Newton on softmax (d) (5,140 coefficients: one Hessian is ~1e12 flops) is left out of the
# full run: its per-iteration cost is measured by ``roofline`` (assembly + Cholesky/eigh)
_DENSE_NEWTON_SKIPPED = {"softmax_20k_256"}


def _peers_python() -> str | None:
    """The Python that has nemos and glmax: ``$GLMJAX_BENCH_PEERS_PYTHON``, else a sibling venv
    ``venv-peers`` of the running one, else None."""
    candidates = [os.environ.get(PEERS_PYTHON_ENV, "")]
    candidates.append(str(Path(sys.prefix).parent / "venv-peers" / "bin" / "python"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _run_peer(spec: dict, python: str, workdir: Path) -> dict:
    spec_path, result_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_text(json.dumps(spec))
    result_path.unlink(missing_ok=True)
    env = dict(os.environ)
    if spec["peer"] in ("nemos", "glmax") and spec["threads"] == 1:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
    script = Path(__file__).with_name("_bench_peers.py")
    try:
        proc = subprocess.run(
            [python, str(script), str(spec_path), str(result_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=_PEER_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {_PEER_TIMEOUT} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(result_path.read_text())


def _peer_versions(python: str, modules: list[str]) -> dict:
    code = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for m in sys.argv[1:]:\n"
        "    try:\n"
        "        out[m] = importlib.import_module(m).__version__\n"
        "    except Exception as e:\n"
        "        out[m] = 'not installed: ' + type(e).__name__\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([python, "-c", code, *modules], capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def bench_peers(quick: bool, out: Path) -> dict:
    peers_python = _peers_python()
    versions = _peer_versions(sys.executable, ["sklearn", "statsmodels", "glum"])
    if peers_python:
        versions.update(_peer_versions(peers_python, ["nemos", "glmax", "jax"]))
    result = {
        "agreement": AGREEMENT,
        "peer_versions": versions,
        "peers_python": peers_python,
        "workloads": {},
    }
    # the median of 3 runs (of glmjax and of every peer at each thread count): one run on a
    # virtual machine can be off by 30%
    reps = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in tqdm(_QUICK_WORKLOADS if quick else _WORKLOADS, desc="peers", unit="workload"):
            problem = make_problem(name, quick)
            big = problem.X.size * (problem.k or 1) > 3_000_000
            np.savez(tmp / f"{name}.npz", X=problem.X, y=problem.y)
            entry = {
                "description": problem.description,
                "family": problem.family,
                "glmjax": {},
                "peers": [],
                "not_applicable": dict(_NOT_APPLICABLE.get(problem.family, {})),
            }
            best = {}
            for objective in ("penalised", "mle"):
                penalised = objective == "penalised"
                if objective == "mle" and name == "digits":
                    entry["not_applicable"]["statsmodels"] = (
                        "no maximum-likelihood fit on digits: the classes are linearly separable "
                        "and 3 pixel columns are all zero (only the ridge problem has a minimum)"
                    )
                    continue
                if objective == "mle" and name == "softmax_20k_256" and not quick:
                    entry["not_applicable"]["statsmodels"] = (
                        "MNLogit's Newton on 4,883 parameters is not run (its Hessian loops over "
                        "k^2 blocks in Python); the target concerns softmax (b) only"
                    )
                    continue
                methods = [] if name in _DENSE_NEWTON_SKIPPED and not quick else ["newton"]
                if penalised and not quick:
                    methods += ["lbfgs", "newton-cg"]
                for method in methods:
                    fit = time_glmjax(
                        problem,
                        method,
                        penalised=penalised,
                        max_iter=100 if method == "newton" else 5000,
                        tol=1e-12,
                        repeats=reps,
                    )
                    fit.pop("history")
                    coef = fit.pop("coef")
                    value, _ = _objective_fn(problem, penalised)
                    fit["objective_value"] = float(value(jnp.asarray(coef)))
                    entry["glmjax"][f"{method} ({objective})"] = fit
                    best[objective] = min(best.get(objective, np.inf), fit["objective_value"])
                if not (big or quick):
                    try:
                        timing = time_fit_glm(problem, penalised=penalised, repeats=reps)
                    except ValueError as e:  # fit_glm's input checks (reported, not fatal)
                        timing = {"error": str(e)}
                    entry["glmjax"][f"fit_glm ({objective})"] = timing
            for peer, solver, objective in _PEERS[problem.family]:
                if peer in entry["not_applicable"] or objective not in best:
                    continue
                if name in _DENSE_NEWTON_SKIPPED and solver == "newton-cholesky" and not quick:
                    entry["not_applicable"]["sklearn newton-cholesky"] = (
                        "not run: a dense 5,140 x 5,140 Hessian per iteration, like glmjax newton "
                        "(see roofline.json for one assembly's cost)"
                    )
                    continue
                python = peers_python if peer in ("nemos", "glmax") else sys.executable
                if python is None:
                    entry["not_applicable"][peer] = (
                        f"not installed (set ${PEERS_PYTHON_ENV} to a Python that has it)"
                    )
                    continue
                if peer in ("nemos", "glmax") and quick:
                    entry["not_applicable"][peer] = "not run with --quick (compile time)"
                    continue
                if name == "softmax_20k_256" and peer == "nemos":
                    entry["not_applicable"]["nemos"] = "not run: over the time budget"
                    continue
                family, _, _, l2 = problem.glm(objective == "penalised")
                spec = {
                    "problem": str(tmp / f"{name}.npz"),
                    "peer": peer,
                    "solver": solver,
                    "family": problem.family,
                    "k": problem.k,
                    "l2": problem.l2 if objective == "penalised" else 0.0,
                    "repeats": reps,
                }
                runs = {}
                for threads in (2,) if quick else (1, 2):
                    if (
                        threads == 2
                        and runs.get(1, {}).get("run_seconds", [0])[0] > _ONE_THREAD_SKIP_SECONDS
                    ):
                        runs[2] = {"skipped": f"1-thread run over {_ONE_THREAD_SKIP_SECONDS} s"}
                        continue
                    runs[threads] = _run_peer({**spec, "threads": threads}, python, tmp)
                ok = {t: r for t, r in runs.items() if "run_seconds" in r}
                row = {
                    "peer": peer,
                    "solver": solver,
                    "objective": objective,
                    "threads": {
                        t: {k: v for k, v in r.items() if k != "coef"} for t, r in runs.items()
                    },
                }
                if ok:
                    t_best = min(ok, key=lambda t: float(np.median(ok[t]["run_seconds"])))
                    r = ok[t_best]
                    value, _ = _objective_fn(problem, objective == "penalised")
                    coef = jnp.asarray(np.asarray(r["coef"]).reshape(l2.shape))
                    f = float(value(coef))
                    best[objective] = min(best[objective], f)
                    row.update(
                        best_threads=t_best,
                        run_seconds=float(np.median(r["run_seconds"])),
                        n_iter=r["n_iter"],
                        objective_value=f,
                    )
                else:
                    row["error"] = next(iter(runs.values())).get("error", "failed")
                entry["peers"].append(row)
            _score(entry, best)
            result["workloads"][name] = entry
            # written after every workload, so an interrupted run keeps what it measured
            (out / "peers.partial.json").write_text(json.dumps(result, default=_jsonable))
    return result


def _score(entry: dict, best: dict) -> None:
    """Suboptimality of every fit against the best objective found, agreement and time ratios
    (glmjax newton seconds / peer seconds on the same objective)."""
    entry["best_objective"] = best
    for label, fit in entry["glmjax"].items():
        objective = label.split("(")[1].rstrip(")")
        if "objective_value" in fit:
            b = best[objective]
            fit["suboptimality"] = (fit["objective_value"] - b) / max(1, abs(b))
            fit["agrees"] = bool(fit["suboptimality"] <= AGREEMENT)
    for row in entry["peers"]:
        if "objective_value" not in row:
            continue
        b = best[row["objective"]]
        row["suboptimality"] = (row["objective_value"] - b) / max(1, abs(b))
        row["agrees"] = bool(row["suboptimality"] <= AGREEMENT)
        newton = entry["glmjax"].get(f"newton ({row['objective']})")
        if newton is not None:
            row["ratio_glmjax_newton_over_peer"] = newton["run_seconds"] / row["run_seconds"]
        fastest = min(
            (f["run_seconds"], label)
            for label, f in entry["glmjax"].items()
            if label.endswith(f"({row['objective']})") and f.get("agrees")
        )
        row["ratio_glmjax_fastest_over_peer"] = fastest[0] / row["run_seconds"]
        row["glmjax_fastest"] = fastest[1]


# ----- 3. the roofline ---------------------------------------------------------------------------


def _timeit(fn, *args, repeats=3):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    if time.perf_counter() - t0 > 10:  # a long run: one more (compiled) call is enough
        repeats = 1
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def bench_roofline(quick: bool, out: Path) -> dict:
    n, D = (20_000, 128) if quick else (200_000, 256)
    X = np.random.default_rng(1).standard_normal((n, D))
    gram = jax.jit(lambda X: X.T @ X)
    seconds = _timeit(gram, jnp.asarray(X))
    np_seconds = _timeit(lambda X: X.T @ X, X)
    peak = 2 * n * D * D / seconds
    result = {
        "xtx": {
            "n": n,
            "D": D,
            "flops": 2 * n * D * D,
            "jax_seconds": seconds,
            "jax_gflops": peak / 1e9,
            "numpy_seconds": np_seconds,
            "numpy_gflops": 2 * n * D * D / np_seconds / 1e9,
            "note": "flops counted as 2 n D^2 (a general matmul, no symmetry)",
        },
        "hessians": {},
    }
    for name in tqdm(
        ["digits", "softmax_100k", "softmax_20k_256", "logistic_1m", "poisson_1m"],
        desc="roofline",
        unit="problem",
    ):
        problem = make_problem(name, quick)
        _, obj = _objective_fn(problem, True)
        coef = jnp.full(obj.coef_shape, 0.01)
        n_rows, p = obj.X.shape
        m = obj.family.natural_dim or 1
        hessian = jax.jit(lambda c, obj=obj: obj.hessian(c))
        secs = _timeit(hessian, coef)
        H = hessian(coef)
        # the Newton step's solve: Cholesky, and the eigh fallback `solve_psd` takes when H is
        # singular (Categorical(k, minimal=False) with an unpenalised intercept row)
        solve = {
            "cholesky_seconds": _timeit(jax.jit(jnp.linalg.cholesky), H, repeats=1),
            "eigh_seconds": _timeit(jax.jit(jnp.linalg.eigh), H, repeats=1),
            "solve_psd_seconds": _timeit(jax.jit(lambda H: solve_psd(H, H[0])[0]), H, repeats=1),
        }
        flops = 2 * n_rows * p * p * m * m
        # the assembly contracts only the m (m + 1) / 2 upper entries of each hess a(eta_i)
        performed = 2 * n_rows * p * p * (m * (m + 1) // 2)
        result["hessians"][name] = {
            "n": n_rows,
            "D": p,
            "m": m,
            "flops": flops,
            "flops_performed": performed,
            "seconds": secs,
            "gflops": flops / secs / 1e9,
            "gflops_performed": performed / secs / 1e9,
            "fraction_of_xtx": flops / secs / peak,
            "fraction_of_xtx_performed": performed / secs / peak,
            "chunk_rows": default_chunk_size(n_rows, obj.family.natural_dim, p),
            **solve,
        }
    result["symmetry_note"] = (
        "`flops` = 2 n D^2 m^2 (the issue's count: every entry of H from its own products); "
        "`flops_performed` = 2 n D^2 m (m + 1) / 2: the assembly contracts only the upper "
        "triangle of each m x m curvature hess a(eta_i) and mirrors it, so for m > 1 symmetry "
        "nearly halves the work. The D x D symmetry (a syrk) is not used, neither in the "
        "assembly nor in the X^T X reference (a general matmul, 2 n D^2)"
    )
    return result


# ----- 4. the MLP against PyTorch ----------------------------------------------------------------


def bench_mlp(quick: bool, out: Path) -> dict:
    from ._mlp import MLP
    from ._train import train_classifier
    from .datasets import load_digits

    data = load_digits()
    epochs = 3 if quick else 20
    width, batch, lr = 128, 64, 1e-3
    X, y = data.X_train, data.y_train
    optimizer = optax.adam(lr)
    model = MLP(64, 10, width, 1, key=jax.random.key(0))
    kw = dict(optimizer=optimizer, batch_size=batch, key=jax.random.key(1), progress=False)
    t0 = time.perf_counter()
    jax.block_until_ready(train_classifier(model, X, y, epochs=1, **kw)[0])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(train_classifier(model, X, y, epochs=epochs, **kw)[0])
    per_epoch = (time.perf_counter() - t0) / epochs
    result = {
        "setup": f"digits n={len(y)}, MLP 64-{width}-10 ReLU, adam({lr}), batch {batch}, "
        f"float64, {epochs} epochs",
        "glmjax": {"first_epoch_seconds_with_compile": first, "seconds_per_epoch": per_epoch},
    }
    try:
        import torch
    except ImportError:
        result["torch"] = "skipped: PyTorch is not installed (pip install torch==2.13.0, CPU)"
        return result
    result["torch_version"] = torch.__version__
    runs = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runs[threads] = _torch_epoch_seconds(torch, X, y, width, batch, lr, epochs)
    torch.set_num_threads(os.cpu_count() or 1)
    best = min(runs, key=runs.get)
    result["torch"] = {
        "seconds_per_epoch_by_threads": runs,
        "best_threads": best,
        "seconds_per_epoch": runs[best],
    }
    result["ratio_glmjax_over_torch"] = per_epoch / runs[best]
    return result


def _torch_epoch_seconds(torch, X, y, width, batch, lr, epochs):
    """The same loop in PyTorch: shuffle, ceil(n/batch) batches, the last one filled at random."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], width), torch.nn.ReLU(), torch.nn.Linear(width, 10)
    ).double()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    n = len(y)
    n_batches = -(-n // batch)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(n, generator=gen)
        fill = torch.randint(0, n, (n_batches * batch - n,), generator=gen)
        idx = torch.cat([order, fill]).view(n_batches, batch)
        for b in idx:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(Xt[b]), yt[b])
            loss.backward()
            opt.step()

    epoch()
    t0 = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - t0) / epochs


# ----- driver ------------------------------------------------------------------------------------

BENCHMARKS = {
    "solvers": bench_solvers,
    "peers": bench_peers,
    "roofline": bench_roofline,
    "mlp": bench_mlp,
}
# the benchmarks at scale (`glmjax._bench_scale`, out-of-core and Hessian-free Newton, many small
# fits): run only when named, since the streaming one writes 3.2 GB to disk; they write their own
# ``scale_<name>.json``
SCALE_BENCHMARKS = {
    "streaming": "run_streaming",
    "newton_cg": "run_newton_cg",
    "many_poisson": "run_many_poisson",
}


def machine_info() -> dict:
    from threadpoolctl import threadpool_info

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


def run_bench(names: list[str], quick: bool, out: str | None) -> int:
    """Run the named benchmarks (all when ``names`` is empty); write ``<name>.json`` (and plots)
    to ``out`` and regenerate ``README_table.md`` there. Returns 0, or 1 when a glmjax method or
    an applicable peer did not reach the common objective (1e-8)."""
    unknown = [n for n in names if n not in BENCHMARKS and n not in SCALE_BENCHMARKS]
    if unknown:
        raise ValueError(
            f"unknown benchmark(s) {unknown}; choose from "
            f"{list(BENCHMARKS) + list(SCALE_BENCHMARKS)}"
        )
    out_dir = Path(out or "benchmarks/results")
    if quick and out is None:
        out_dir = out_dir / "quick"
    out_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for name in names or list(BENCHMARKS):
        if name in SCALE_BENCHMARKS:
            from . import _bench_scale

            getattr(_bench_scale, SCALE_BENCHMARKS[name])(quick=quick, out=out_dir)
            continue
        t0 = time.perf_counter()
        result = BENCHMARKS[name](quick, out_dir)
        info = machine_info()
        record = {
            "benchmark": name,
            "quick": quick,
            "machine": info,
            "wall_seconds": time.perf_counter() - t0,
            **result,
        }
        (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1, default=_jsonable))
        (out_dir / f"{name}.partial.json").unlink(missing_ok=True)
        status |= not _all_agree(record)
    from ._bench_table import write_table

    table = write_table(out_dir)
    print(table)
    return status


def _jsonable(x):
    if isinstance(x, np.generic | np.ndarray | jax.Array):
        return np.asarray(x).tolist()
    raise TypeError(type(x).__name__)


def _all_agree(record: dict) -> bool:
    fits = [
        f
        for w in record.get("workloads", {}).values()
        for f in [*w["glmjax"].values(), *w["peers"]]
        if "agrees" in f
    ]
    return all(f["agrees"] for f in fits)
