"""Shared tables of families, links and data for the tests, and small fitting helpers.

`CASES` maps a name to a family, a link and a data generator: every canonical family, and the
non-canonical links users ask for most. The data are drawn from the model itself (mean-
parametrised where ``eta`` must stay in a half-line), on a design with an intercept.
"""

import functools
import json
import pathlib

import jax.numpy as jnp
import numpy as np

import glmjax as gj
from glmjax import _fit, links
from glmjax._objective import GLMObjective, RowLikelihood

BETA = np.array([0.3, 0.5, -0.4])


def design(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return np.c_[np.ones(n), rng.normal(size=(n, 2))], rng


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def data(name: str, n: int = 120, seed: int = 0):
    """``(family, link, X, y)`` for the case ``name`` (see `CASES`)."""
    family, link = CASES[name]
    X, rng = design(n, seed)
    lin = X @ BETA
    mean_of = {
        "bernoulli": lambda: rng.binomial(1, _sigmoid(lin)).astype(float),
        "binomial": lambda: rng.binomial(5, _sigmoid(lin)) / 5,
        "poisson": lambda: rng.poisson(np.exp(lin)).astype(float),
        "gaussian": lambda: lin + 2 * rng.normal(size=n),
        "gamma": lambda: rng.gamma(2.0, np.exp(lin) / 2),
        "invgauss": lambda: rng.wald(np.exp(0.3 * lin), 4.0),
        "exponential": lambda: rng.exponential(np.exp(lin)),
        "geometric": lambda: rng.poisson(np.exp(lin)).astype(float),
        "negbin": lambda: rng.poisson(np.exp(lin)).astype(float),
        "probit": lambda: rng.binomial(1, _sigmoid(1.6 * lin)).astype(float),
        "cloglog": lambda: rng.binomial(1, _sigmoid(lin)).astype(float),
        "gamma_log": lambda: rng.gamma(2.0, np.exp(lin) / 2),
        "poisson_identity": lambda: rng.poisson(3 + lin).astype(float),
    }
    if name.startswith("categorical"):
        k = 4
        logits = X @ rng.normal(size=(3, k)) * 0.5
        y = (logits + rng.gumbel(size=(n, k))).argmax(axis=1).astype(float)
    else:
        y = mean_of[name]()
    return family, link, X, y


CASES = {
    "bernoulli": (gj.Bernoulli(), None),
    "binomial": (gj.Binomial(5.0), None),
    "poisson": (gj.Poisson(), None),
    "gaussian": (gj.Gaussian(2.0), None),
    "gamma": (gj.Gamma(2.0), None),
    "invgauss": (gj.InverseGaussian(4.0), None),
    "exponential": (gj.Exponential(), None),
    "geometric": (gj.Geometric(), None),
    "negbin": (gj.NegativeBinomial(2.0), None),
    "categorical": (gj.Categorical(4), None),
    "categorical_full": (gj.Categorical(4, minimal=False), None),
    "probit": (gj.Bernoulli(), "probit"),
    "cloglog": (gj.Bernoulli(), "cloglog"),
    "gamma_log": (gj.Gamma(2.0), "log"),
    "poisson_identity": (gj.Poisson(), "identity"),
}
CANONICAL = [name for name, (_, link) in CASES.items() if link is None]
LINKED = [name for name, (_, link) in CASES.items() if link is not None]


def objective(name: str, l2=0.0, weights=None, **kw) -> GLMObjective:
    """The objective of case ``name``'s data."""
    family, link, X, y = data(name, **kw)
    L, canonical = links.get(link, family)
    n = X.shape[0]
    w = jnp.ones(n) if weights is None else jnp.asarray(weights)
    model = RowLikelihood(family, L, canonical)
    return GLMObjective.from_data(model, X, y, w, jnp.zeros(n), l2)


def inside_coef(name: str, shape, rng) -> jnp.ndarray:
    """Random coefficients whose linear predictor is valid for the case (eta < 0 where the
    natural parameter space is a half-line; a positive mean for the identity-link Poisson)."""
    coef = 0.2 * rng.normal(size=shape)
    if name in ("gamma", "invgauss", "exponential", "geometric", "negbin"):
        coef[0] = -3.0
    if name == "poisson_identity":
        coef[0] = 3.0
    return jnp.asarray(coef)


def solve(family, X, y, method="newton", *, link=None, max_iter=100, tol=1e-8, l2=0.0,
          hessian="structured"):  # fmt: skip
    """The compiled solver loop of `fit_glm` alone (no inference: compiling it per test costs
    time)."""
    solver = gj.solvers.make_solver(method, hessian=hessian)
    L, canonical = links.get(link, family)
    model = RowLikelihood(family, L, canonical)
    n = X.shape[0]
    X, y = jnp.asarray(X), jnp.asarray(y)
    w, o, l2 = jnp.ones(n), jnp.zeros(n), jnp.asarray(l2)
    eta0 = _fit._start_eta(model, _fit._mean_statistic(family, X, y, w))
    solution, _ = _fit._solve(
        model, X, y, w, o, l2, None, eta0, solver, max_iter, jnp.asarray(tol), 1, None, True
    )
    return solution


@functools.cache
def reference(name: str):
    """The Newton fit of `data(name)` (cached: several tests compare with it)."""
    family, link, X, y = data(name)
    solution = solve(family, X, y, link=link, tol=1e-10)
    assert int(solution.result) == gj.ResultCode.successful, (name, int(solution.result))
    return solution


def means(name: str, coef):
    """The fitted means of case ``name`` at ``coef``."""
    family, link, X, _ = data(name)
    L, canonical = links.get(link, family)
    return RowLikelihood(family, L, canonical).mean(X @ coef) if link else family.mean(X @ coef)


R_INFERENCE = pathlib.Path(__file__).parent / "data" / "r_inference" / "reference.json"
_R_FAMILIES = {"poisson": gj.Poisson, "binomial": gj.Binomial, "Gamma": gj.Gamma,
               "gaussian": gj.Gaussian}  # fmt: skip


@functools.cache
def r_inference() -> dict:
    """`tests/data/r_inference/reference.json` (R's numbers for the inference; its README)."""
    return json.loads(R_INFERENCE.read_text())


def fit_r_case(case: dict, **kwargs):
    """`gj.fit_glm` of one of R's ``cases`` (family, link, weights and offset as R had them;
    binomial responses are proportions with the trials as weights, as R's)."""
    X, y = np.asarray(case["X"], float), np.asarray(case["y"], float)
    offset = case["offset"]
    return gj.fit_glm(
        X, y, _R_FAMILIES[case["family"]](), link=case["link"],
        weights=np.asarray(case["weights"], float),
        offset=None if offset is None else np.asarray(offset, float), **kwargs,
    )  # fmt: skip
