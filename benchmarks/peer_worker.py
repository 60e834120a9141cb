"""The peer side of ``benchmarks.peers``: one problem, one outside library, its own process.

Run as a script (``python peer_worker.py SPEC.json RESULT.json``) so that each peer gets a fresh
process with its own BLAS thread count, its own JAX configuration (glmax turns on float64 for the
whole process when imported) and, for nemos and glmax, its own Python environment. It therefore
imports nothing from glmjax: numpy and the standard library at module level, the peer inside.

The spec names the problem file (``.npz`` with ``X`` *without* an intercept column and ``y``), the
peer and its solver, the family (``categorical``, ``bernoulli`` or ``poisson``), the ridge strength
``l2`` of glmjax's objective (``l2 / 2 ||W||^2`` on the coefficients, none on the intercept, plus
the *mean* negative log-likelihood; ``0`` means plain maximum likelihood), the number of BLAS
threads, and how many timed repeats to run. The result holds the coefficients with the intercept
as row 0 (``(p + 1,)`` or ``(p + 1, k)``), the iteration count, the run seconds of every repeat, and
for the JAX peers the first call's seconds (compile + run).

How the penalties map (``n`` rows): scikit-learn's ``C = 1 / (l2 n)``; ``PoissonRegressor``'s,
glum's and nemos' ridge strength is ``l2`` itself (they all penalise ``strength / 2 ||w||^2`` next
to the mean loss). statsmodels and glmax fit without a penalty, so they are only run with
``l2 = 0``, on the minimal (``k - 1`` column) softmax.
"""

import json
import os
import sys
import time

import numpy as np

_TOL = 1e-12  # every peer is asked for more than 1e-8 agreement; the driver checks it


def _sklearn(spec, X, y):
    from sklearn.linear_model import LogisticRegression, PoissonRegressor

    n = X.shape[0]
    if spec["family"] == "poisson":
        model = PoissonRegressor(
            alpha=spec["l2"], solver=spec["solver"], tol=_TOL, max_iter=100_000
        )
    else:
        model = LogisticRegression(
            C=1 / (spec["l2"] * n), solver=spec["solver"], tol=_TOL, max_iter=100_000
        )

    def fit():
        model.fit(X, y)
        coef, b = np.asarray(model.coef_), np.asarray(model.intercept_)
        if spec["family"] == "categorical":
            return np.vstack([b[None, :], coef.T]), int(np.max(model.n_iter_))
        return np.concatenate([b.reshape(1), coef.reshape(-1)]), int(np.max(model.n_iter_))

    return fit


def _statsmodels(spec, X, y):
    import statsmodels.api as sm

    Xi = np.hstack([np.ones((X.shape[0], 1)), X])
    if spec["family"] == "categorical":

        def fit():
            res = sm.MNLogit(y, Xi).fit(
                method="newton", maxiter=200, tol=_TOL, disp=False, full_output=True
            )
            # statsmodels' reference is class 0, glmjax's minimal one the last class
            full = np.hstack([np.zeros((Xi.shape[1], 1)), np.asarray(res.params)])
            return full[:, :-1] - full[:, -1:], int(res.mle_retvals["iterations"])

        return fit
    family = sm.families.Binomial() if spec["family"] == "bernoulli" else sm.families.Poisson()

    def fit():
        res = sm.GLM(y, Xi, family=family).fit(method="IRLS", tol=_TOL, maxiter=200)
        return np.asarray(res.params), int(res.fit_history["iteration"])

    return fit


def _glum(spec, X, y):
    from glum import GeneralizedLinearRegressor

    family = "binomial" if spec["family"] == "bernoulli" else "poisson"
    model = GeneralizedLinearRegressor(
        family=family,
        alpha=spec["l2"],
        l1_ratio=0.0,
        solver=spec["solver"],
        gradient_tol=_TOL,
        max_iter=1000,
    )

    def fit():
        model.fit(X, y)
        return np.concatenate([[model.intercept_], model.coef_]), int(model.n_iter_)

    return fit


def _nemos(spec, X, y):
    import jax

    jax.config.update("jax_enable_x64", True)
    import nemos

    kwargs = dict(
        regularizer="Ridge",
        regularizer_strength=spec["l2"],
        solver_name=spec["solver"],
        solver_kwargs={"tol": _TOL, "maxiter": 5000},
    )
    if spec["family"] == "categorical":
        model = nemos.glm.ClassifierGLM(n_classes=int(spec["k"]), **kwargs)
    else:
        obs = "Bernoulli" if spec["family"] == "bernoulli" else "Poisson"
        model = nemos.glm.GLM(observation_model=obs, **kwargs)
    Xj, yj = jax.device_put(X), jax.device_put(y)

    def fit():
        model.fit(Xj, yj)
        coef = np.asarray(model.coef_)
        b = np.asarray(model.intercept_)
        n_iter = int(model.optim_info_.num_steps)
        if spec["family"] == "categorical":
            return np.vstack([b.reshape(1, -1), coef.reshape(X.shape[1], -1)]), n_iter
        return np.concatenate([b.reshape(1), coef.reshape(-1)]), n_iter

    return fit


def _glmax(spec, X, y):
    import glmax  # turns on float64 for this whole process
    import jax
    import jax.numpy as jnp

    family = glmax.Binomial() if spec["family"] == "bernoulli" else glmax.Poisson()
    fitter = (
        glmax.NewtonFitter(tol=_TOL) if spec["solver"] == "newton" else glmax.IRLSFitter(tol=_TOL)
    )
    Xi = jnp.asarray(np.hstack([np.ones((X.shape[0], 1)), X]))
    yj = jnp.asarray(y, jnp.float64)

    def fit():
        res = glmax.fit(family, Xi, yj, fitter=fitter)
        beta = jax.block_until_ready(res.params.beta)
        return np.asarray(beta), int(res.num_iters)

    return fit


PEERS = {
    "sklearn": _sklearn,
    "statsmodels": _statsmodels,
    "glum": _glum,
    "nemos": _nemos,
    "glmax": _glmax,
}
JAX_PEERS = ("nemos", "glmax")


def run(spec: dict) -> dict:
    """Fit ``spec``'s problem with its peer; see the module docstring."""
    from threadpoolctl import threadpool_info, threadpool_limits

    data = np.load(spec["problem"])
    X, y = data["X"], data["y"]
    if spec["family"] == "categorical":
        y = y.astype(np.int64)
    out = {"peer": spec["peer"], "solver": spec["solver"], "threads": spec["threads"]}
    # the peer is imported first, so that the BLAS libraries it loads are there to be limited
    fit = PEERS[spec["peer"]](spec, X, y)
    with threadpool_limits(limits=spec["threads"]):
        times = []
        if spec["peer"] in JAX_PEERS:
            t0 = time.perf_counter()
            fit()
            out["first_call_seconds"] = time.perf_counter() - t0
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            coef, n_iter = fit()
            times.append(time.perf_counter() - t0)
        out["blas"] = [
            {k: i.get(k) for k in ("internal_api", "architecture", "num_threads", "version")}
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ]
    out.update(run_seconds=times, n_iter=n_iter, coef=np.asarray(coef, float).tolist())
    return out


def main(argv: list[str]) -> int:
    spec_path, result_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    import warnings

    with warnings.catch_warnings():
        # convergence chatter from the peers at tol=1e-12; the driver checks the objective
        warnings.simplefilter("ignore")
        result = run(spec)
    result["pid"] = os.getpid()
    with open(result_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
