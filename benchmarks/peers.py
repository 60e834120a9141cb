r"""``peers``: glmjax against scikit-learn, statsmodels, glum, nemos and glmax on one objective.

Workloads (`glmjax._bench.make_problem`): softmax (a) digits, (b) n=100k d=32 k=8, (d) n=20k
d=256 k=20, logistic and Poisson regression with n=1e6 d=20 (``--quick``: softmax (b) and Poisson
at the quick sizes stated in each workload's description).

**The objectives.** *Penalised* is scikit-learn's ``C sum_i loss_i + 1/2 ||W||^2`` with ``C = 1``
and an unpenalised intercept, i.e. glmjax's mean negative log-likelihood plus ``l2 / 2 ||W||^2``
with ``l2 = 1 / (C n)`` (0 on the intercept row) and ``Categorical(k, minimal=False)`` for
softmax; glum's and nemos' ridge strength and ``PoissonRegressor``'s ``alpha`` are ``l2`` itself.
*MLE* (statsmodels and glmax have no ridge) is ``l2 = 0`` with ``Categorical(k, minimal=True)``.
Every fit, glmjax's and each peer's, is scored with glmjax's own objective (`score`); a time
counts only when that score is within `AGREEMENT` (relative) of the best found.

**Processes and threads.** Each peer fit runs in its own process (``peer_worker.py``, which imports
nothing from glmjax), with 1 and then 2 BLAS threads (threadpoolctl; for the JAX peers also XLA's
intra-op threads) and 3 timed runs each; the faster median counts. The 2-thread run is skipped
when the 1-thread one took over 20 s; ``--quick`` runs 1 thread once. glmjax's times are medians
of 3 runs of the ahead-of-time compiled solver loop (`glmjax._bench.time_glmjax`); ``fit_glm``
rows add input validation and inference (standard errors, deviance) on a second call.
nemos and glmax live in a second Python (``$GLMJAX_BENCH_PEERS_PYTHON`` or ``venv-peers`` beside
the running venv): glmax turns on float64 for its whole process and both pin their own jax.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from glmjax._bench import Problem, _jsonable, make_problem, objective, time_glmjax

AGREEMENT = 1e-8
PEERS_PYTHON_ENV = "GLMJAX_BENCH_PEERS_PYTHON"  # a second Python with nemos and glmax installed
JAX_PEERS = ("nemos", "glmax")
_WORKER = Path(__file__).resolve().with_name("peer_worker.py")

# (peer, solver, objective) per family; statsmodels and glmax fit without penalty
_SKLEARN = {s: ("sklearn", s, "penalised") for s in ("newton-cholesky", "newton-cg", "lbfgs")}
_GLUM = ("glum", "irls-cd", "penalised")
_NEMOS = ("nemos", "LBFGS", "penalised")
_GLMAX = [("glmax", "irls", "mle"), ("glmax", "newton", "mle")]
_PEERS = {
    "categorical": [*_SKLEARN.values(), ("statsmodels", "newton", "mle"), _NEMOS],
    "bernoulli": [*_SKLEARN.values(), _GLUM, ("statsmodels", "irls", "mle"), _NEMOS, *_GLMAX],
    "poisson": [
        _SKLEARN["newton-cholesky"],
        _SKLEARN["lbfgs"],
        _GLUM,
        ("statsmodels", "irls", "mle"),
        _NEMOS,
        *_GLMAX,
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
# the 2-thread rerun is skipped when the 1-thread run already took this long (a full run's budget
# is ~25 minutes on 2 cores; on a loaded machine 1 thread is the faster one)
_ONE_THREAD_SKIP_SECONDS = 20.0
# dense Newton on softmax (d) (5,140 coefficients: one Hessian is ~1e12 flops) is left out of the
# full run: its per-iteration cost is measured by ``roofline`` (assembly + Cholesky/eigh)
_DENSE_NEWTON_SKIPPED = {"softmax_20k_256"}
# glmjax's fit_glm end to end is timed only below this many X entries times classes
_FIT_GLM_MAX_SIZE = 30_000_000  # X.size * k: every workload but softmax (d)

_value = jax.jit(lambda obj, coef: obj.value(coef))


def score(problem: Problem, penalised: bool, coef) -> float:
    """glmjax's objective of ``problem`` at ``coef`` (reshaped to the coefficient shape)."""
    obj = objective(problem, penalised)
    return float(_value(obj, jnp.asarray(np.asarray(coef, float).reshape(obj.coef_shape))))


def time_fit_glm(problem: Problem, *, penalised: bool, repeats: int = 1) -> dict:
    """``gj.fit_glm`` end to end with its defaults (``method="auto"``, validation, solver,
    inference with the covariance): a first call, then repeats."""
    import glmjax as gj

    family, X1, y, l2 = problem.glm(penalised)

    def seconds():
        t0 = time.perf_counter()
        fit = jax.block_until_ready(gj.fit_glm(X1, y, family, l2=l2))
        return time.perf_counter() - t0, fit

    first, fit = seconds()
    runs = [seconds()[0] for _ in range(repeats)]
    return {
        "method": "auto",
        "resolved_method": gj.solvers.auto_method(*X1.shape, family.natural_dim),
        "first_call_seconds": first,
        "run_seconds": float(np.median(runs)),
        "n_iter": int(fit.n_iter),
        "objective_value": score(problem, penalised, fit.coef),
    }


# ----- the peer processes ------------------------------------------------------------------------


def _peers_python() -> str | None:
    """The Python that has nemos and glmax: ``$GLMJAX_BENCH_PEERS_PYTHON``, else a sibling venv
    ``venv-peers`` of the running one, else None."""
    candidates = [os.environ.get(PEERS_PYTHON_ENV, "")]
    candidates.append(str(Path(sys.prefix).parent / "venv-peers" / "bin" / "python"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


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


def _run_peer(spec: dict, python: str, workdir: Path) -> dict:
    """One peer fit in a fresh process (``peer_worker.py SPEC RESULT``)."""
    spec_path, result_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_text(json.dumps(spec))
    result_path.unlink(missing_ok=True)
    env = dict(os.environ)
    if spec["peer"] in JAX_PEERS and spec["threads"] == 1:
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
    try:
        proc = subprocess.run(
            [python, str(_WORKER), str(spec_path), str(result_path)],
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


def _skip(problem: Problem, peer: str, solver: str, quick: bool, run: dict) -> tuple | None:
    """``(key, why)`` when this peer fit is not run, else None."""
    if problem.name in _DENSE_NEWTON_SKIPPED and solver == "newton-cholesky" and not quick:
        return f"{peer} {solver}", (
            "not run: a dense 5,140 x 5,140 Hessian per iteration, like glmjax newton "
            "(see roofline.json for one assembly's cost)"
        )
    if peer in JAX_PEERS and run["peers_python"] is None:
        return peer, f"not installed (set ${PEERS_PYTHON_ENV} to a Python that has it)"
    if str(run["peer_versions"].get(peer, "not installed")).startswith("not installed"):
        return peer, "not installed"
    if peer in JAX_PEERS and quick:
        return peer, "not run with --quick (compile time)"
    if problem.name == "softmax_20k_256" and peer == "nemos":
        return peer, "not run: over the time budget"
    return None


def _peer_row(
    problem: Problem, spec: dict, python: str, tmp: Path, best: dict, quick: bool
) -> dict:
    """Run one peer fit with 1 and 2 BLAS threads (1 only with ``quick``: two threads spinning
    on a busy 2-core machine can take 100 times longer); score the faster."""
    runs = {}
    for threads in (1,) if quick else (1, 2):
        if threads == 2 and runs.get(1, {}).get("run_seconds", [0])[0] > _ONE_THREAD_SKIP_SECONDS:
            runs[2] = {"skipped": f"1-thread run over {_ONE_THREAD_SKIP_SECONDS} s"}
            continue
        runs[threads] = _run_peer({**spec, "threads": threads}, python, tmp)
    row = {
        "peer": spec["peer"],
        "solver": spec["solver"],
        "objective": spec["objective"],
        "threads": {t: {k: v for k, v in r.items() if k != "coef"} for t, r in runs.items()},
    }
    ok = {t: r for t, r in runs.items() if "run_seconds" in r}
    if not ok:
        row["error"] = next(iter(runs.values())).get("error", "failed")
        return row
    t_best = min(ok, key=lambda t: float(np.median(ok[t]["run_seconds"])))
    r = ok[t_best]
    f = score(problem, spec["objective"] == "penalised", r["coef"])
    best[spec["objective"]] = min(best[spec["objective"]], f)
    row.update(
        best_threads=t_best,
        run_seconds=float(np.median(r["run_seconds"])),
        n_iter=r["n_iter"],
        objective_value=f,
    )
    return row


# ----- one workload ------------------------------------------------------------------------------


def _no_mle(name: str, quick: bool) -> str | None:
    """Why there is no maximum-likelihood fit of this workload (None: there is one)."""
    if name == "digits":
        return (
            "no maximum-likelihood fit on digits: the classes are linearly separable and 3 pixel "
            "columns are all zero (only the ridge problem has a minimum)"
        )
    if name == "softmax_20k_256" and not quick:
        return (
            "MNLogit's Newton on 4,883 parameters is not run (its Hessian loops over k^2 blocks "
            "in Python); the target concerns softmax (b) only"
        )
    return None


def _glmjax_fits(problem: Problem, quick: bool, reps: int, entry: dict) -> dict:
    """glmjax's fits of both objectives into ``entry["glmjax"]``; returns the best objective
    value of each objective fitted."""
    best = {}
    for name in ("penalised", "mle"):
        penalised = name == "penalised"
        why = None if penalised else _no_mle(problem.name, quick)
        if why:
            entry["not_applicable"]["statsmodels"] = why
            continue
        methods = [] if problem.name in _DENSE_NEWTON_SKIPPED and not quick else ["newton"]
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
            fit["objective_value"] = score(problem, penalised, fit.pop("coef"))
            entry["glmjax"][f"{method} ({name})"] = fit
            best[name] = min(best.get(name, np.inf), fit["objective_value"])
        if not quick and problem.X.size * (problem.k or 1) <= _FIT_GLM_MAX_SIZE:
            try:
                timing = time_fit_glm(problem, penalised=penalised, repeats=reps)
            except ValueError as e:  # fit_glm's input checks (reported, not fatal)
                timing = {"error": str(e)}
            entry["glmjax"][f"fit_glm ({name})"] = timing
    return best


def _workload(problem: Problem, quick: bool, reps: int, tmp: Path, run: dict) -> dict:
    data = tmp / f"{problem.name}.npz"
    np.savez(data, X=problem.X, y=problem.y)
    entry = {
        "description": problem.description,
        "family": problem.family,
        "glmjax": {},
        "peers": [],
        "not_applicable": dict(_NOT_APPLICABLE.get(problem.family, {})),
    }
    best = _glmjax_fits(problem, quick, reps, entry)
    for peer, solver, objective_name in _PEERS[problem.family]:
        if peer in entry["not_applicable"] or objective_name not in best:
            continue
        skip = _skip(problem, peer, solver, quick, run)
        if skip:
            entry["not_applicable"][skip[0]] = skip[1]
            continue
        spec = {
            "problem": str(data),
            "peer": peer,
            "solver": solver,
            "objective": objective_name,
            "family": problem.family,
            "k": problem.k,
            "l2": problem.l2 if objective_name == "penalised" else 0.0,
            "repeats": reps,
        }
        python = run["peers_python"] if peer in JAX_PEERS else sys.executable
        entry["peers"].append(_peer_row(problem, spec, python, tmp, best, quick))
    _score(entry, best)
    return entry


def _score(entry: dict, best: dict) -> None:
    """Suboptimality of every fit against the best objective found, agreement and time ratios
    (glmjax seconds / peer seconds on the same objective)."""
    entry["best_objective"] = best

    def agreement(fit, objective_name):
        b = best[objective_name]
        fit["suboptimality"] = (fit["objective_value"] - b) / max(1, abs(b))
        fit["agrees"] = bool(fit["suboptimality"] <= AGREEMENT)

    for label, fit in entry["glmjax"].items():
        if "objective_value" in fit:
            agreement(fit, label.split("(")[1].rstrip(")"))
    for row in entry["peers"]:
        if "objective_value" not in row:
            continue
        agreement(row, row["objective"])
        newton = entry["glmjax"].get(f"newton ({row['objective']})")
        if newton is not None:
            row["ratio_glmjax_newton_over_peer"] = newton["run_seconds"] / row["run_seconds"]
        user = entry["glmjax"].get(f"fit_glm ({row['objective']})")
        if user is not None and "run_seconds" in user:
            row["ratio_fit_glm_over_peer"] = user["run_seconds"] / row["run_seconds"]
        fastest = min(
            (
                (f["run_seconds"], label)
                for label, f in entry["glmjax"].items()
                if label.endswith(f"({row['objective']})") and f.get("agrees")
            ),
            default=None,
        )
        if fastest is not None:
            row["ratio_glmjax_fastest_over_peer"] = fastest[0] / row["run_seconds"]
            row["glmjax_fastest"] = fastest[1]


def bench_peers(quick: bool, out: Path) -> dict:
    """Every workload: glmjax's fits, then each applicable peer's; ``peers.partial.json`` in
    ``out`` after each workload, so an interrupted run keeps what it measured."""
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
        for name in tqdm(_QUICK_WORKLOADS if quick else _WORKLOADS, desc="peers", unit="workload"):
            problem = make_problem(name, quick)
            result["workloads"][name] = _workload(problem, quick, reps, Path(tmp), result)
            (out / "peers.partial.json").write_text(json.dumps(result, default=_jsonable))
    return result


def all_agree(record: dict) -> bool:
    """Whether every glmjax fit and every peer fit of a peers record reached the objective."""
    fits = [
        f
        for w in record.get("workloads", {}).values()
        for f in [*w["glmjax"].values(), *w["peers"]]
        if "agrees" in f
    ]
    return all(f["agrees"] for f in fits)
