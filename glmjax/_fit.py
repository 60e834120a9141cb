"""`fit_glm`, the entry point: validate, start, run the one solver loop, infer.

Three compiled pieces, each reused by later fits with the same shapes and options: the start's
``eta0 = g(mean T(y))`` (per family and link), the solver loop, and the inference.
"""

import warnings
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from . import links
from ._dispersion import DispersionResult, gamma_loglik, gamma_shape_ml
from ._distributions import t_two_sided
from ._exponential_family import ExponentialFamily
from ._families import Gamma
from ._firth import FirthObjective, check_firth
from ._inference import COV_TYPES, fisher_hessian, fit_sums, infer, log_base_at, meat_sums
from ._iterate import minimise
from ._misc import check_choice, check_int, check_positive, is_concrete
from ._negbin import alternate, estimates_theta, models, with_theta
from ._objective import GLMObjective, RowLikelihood, Rows
from ._result import GLMResult
from ._sharding import row_blocks
from ._solution import ConvergenceWarning, ResultCode
from ._solver import Newton, Solution, make_solver
from ._start import mean_statistic, start_coef
from ._validation import validate_glm_inputs

_NULL_SOLVER = Newton()
# a deviance below this fraction of the null deviance is rounding: the fit is exact
_EXACT = 1e-12


def add_intercept(X: ArrayLike) -> Float[Array, "n p+1"]:
    """``X`` with a column of ones prepended (the intercept is then ``coef[0]``)."""
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"`X` must be a 2-d array (n, p), got shape {X.shape}")
    if not jnp.issubdtype(X.dtype, jnp.inexact):
        X = X.astype(jnp.result_type(float))
    return jnp.concatenate([jnp.ones((X.shape[0], 1), X.dtype), X], axis=1)


@eqx.filter_jit
def _mean_statistic(family, X, y, weights):
    return mean_statistic(GLMObjective.from_data(
        RowLikelihood(family, links.Identity(), True), X, y, weights, 0.0, 0.0
    ))  # fmt: skip


@eqx.filter_jit
def _start_eta(model: RowLikelihood, mean):
    # compiled apart from the solver loop: its shape depends on the family alone, so one compile
    # serves every data shape and method (a derived canonical link is an iteration)
    return model.family.link(mean) if model.canonical else model.link(mean)


@eqx.filter_jit
def _solve(
    model, X, y, w, offset, l2, start, eta0, solver, max_iter, tol, blocks, chunk_size, checked,
    firth=False,
):  # fmt: skip
    # model's static parts, solver, max_iter, blocks, chunk_size, `checked` (the data were
    # validated on the host: no check in the graph) and `firth` are static (hashed) here: a
    # second fit with the same shapes and options reuses the compiled loop
    objective = GLMObjective.from_data(
        model, X, y, w, offset, l2, row_blocks=blocks, chunk_size=chunk_size
    )
    columns = objective.column_summary()
    coef0 = start_coef(objective, eta0, columns.intercepts) if start is None else start
    problem = FirthObjective(objective) if firth else objective
    solution = minimise(problem, solver, coef0, max_iter=max_iter, tol=tol, scale=columns.scale)
    if not checked:
        result = jnp.where(objective.data_valid(), solution.result, ResultCode.invalid_data)
        solution = eqx.tree_at(lambda s: s.result, solution, result.astype(jnp.int32))
    return solution, columns


@eqx.filter_jit
def _solve_theta(
    poisson, model, X, y, w, offset, l2, start, eta0, solver, max_iter, tol, blocks, chunk_size,
    checked,
):  # fmt: skip
    # `_solve` for NegativeBinomial(r=None): the Poisson fit, then glm.nb's alternation
    def solve(model, start):
        return _solve(model, X, y, w, offset, l2, start, eta0, solver, max_iter, tol, blocks,
                      chunk_size, checked)  # fmt: skip

    solution, columns = solve(poisson, start)
    df_resid = jnp.sum(w > 0) - solution.coef.size
    solution, theta, loglik = alternate(
        lambda m, c: solve(m, c)[0], model, X, y, w, offset, solution, df_resid.astype(X.dtype),
        tol=tol, max_iter=max_iter,
    )  # fmt: skip
    return solution, columns, theta, loglik


def null_coefficient(
    objective: GLMObjective, eta0, has_intercept, *, refit: bool, tol, firth: bool = False
):
    """The null model's ``eta - offset``: with an intercept column, ``g(mean T)`` or (``refit``,
    for an offset, or ``firth``: Firth's estimate, as brglm2's null deviance) the intercept-only
    fit; without one, 0 (``eta = offset``)."""
    X = objective.X
    if refit or firth:
        ones = jnp.ones((X.shape[0], 1), X.dtype)
        null = eqx.tree_at(lambda o: (o.X, o.l2), objective, (ones, jnp.zeros((), X.dtype)))
        c0 = start_coef(null, eta0, jnp.ones(1, bool))
        problem = FirthObjective(null) if firth else null
        c = minimise(problem, _NULL_SOLVER, c0, max_iter=100, tol=tol, scale=jnp.ones_like(c0))
        c = c.coef[0]
    else:
        c = jnp.asarray(eta0, X.dtype)
    return jnp.where(has_intercept, c, 0.0)


class InferOptions(NamedTuple):
    """`_infer`'s static options: whether the null model is refitted (an offset that may be
    non-zero), the information, whether the covariance is computed, whether the solver's last
    Hessian is reused, whether a first-order solver's optimum is checked, the row blocks and
    chunk size, the covariance type, the number of cluster segments, whether the fit is
    Firth's."""

    refit_null: bool
    information: str
    covariance: bool
    reuse: bool
    check_optimum: bool
    blocks: int
    chunk_size: int | None
    cov_type: str = "nonrobust"
    n_groups: int = 0
    firth: bool = False


@eqx.filter_jit
def _infer(
    model, X, y, w, offset, l2, solution, columns, eta0, tol, groups, options: InferOptions
) -> GLMResult:
    (refit_null, information, covariance, reuse, check_optimum, blocks, chunk_size, cov_type,
     n_groups, firth) = options  # fmt: skip
    objective = GLMObjective.from_data(
        model, X, y, w, offset, l2, row_blocks=blocks, chunk_size=chunk_size
    )
    family, coef, n = model.family, solution.coef, X.shape[0]
    has_intercept = jnp.any(columns.intercepts)
    null_coef = null_coefficient(
        objective, eta0, has_intercept, refit=refit_null, tol=tol, firth=firth
    )
    fisher = None if reuse or not covariance else information
    sums = objective.chunked_sum(
        lambda rows: fit_sums(model, coef, null_coef, rows, information=fisher),
        hessian=fisher is not None,
    )
    if reuse:
        hessian = solution.evaluation.hessian
    elif covariance:
        hessian = fisher_hessian(sums, family, objective.l2, coef.shape, n)
    else:
        hessian = None
    all_rows = Rows(X, objective.y, objective.t, objective.weights, objective.offset)

    def meat_of(bread):
        def chunk(rows, g=None):
            return meat_sums(model, coef, rows, g, cov_type=cov_type, bread=bread,
                             n_groups=n_groups, information=information)  # fmt: skip

        return objective.chunked_sum(chunk, extra=groups)

    inference = infer(
        family,
        coef,
        solution.evaluation.grad,
        sums,
        lambda phi: log_base_at(family, phi, all_rows),
        hessian=hessian,
        n_rows=n,
        has_intercept=has_intercept,
        l2=objective.l2,
        result=solution.result,
        covariance_=covariance,
        check_optimum=check_optimum,
        scale_columns=columns.scale,
        cov_type=cov_type,
        meat_of=meat_of,
    )
    return assemble(model, solution, inference, information, cov_type)


def information_criteria(fit: GLMResult, loglik, extra: int = 0):
    """``(aic, bic)`` at a new log-likelihood ``loglik``, counting the ``k`` parameters ``fit``'s
    own AIC counts and ``extra`` more."""
    k = (fit.aic + 2 * fit.loglik) / 2 + extra
    return -2 * loglik + 2 * k, -2 * loglik + jnp.log(fit.nobs.astype(loglik.dtype)) * k


def with_estimated_theta(fit: GLMResult, theta, loglik) -> GLMResult:
    """``fit`` with ``theta`` (a `DispersionEstimate`) as `theta`, `theta_stderr`, the
    alternation's ``loglik`` and ``aic``, ``bic`` counting ``theta`` as a parameter
    (``glm.nb``'s)."""
    aic, bic = information_criteria(fit, loglik, extra=1)  # theta
    return eqx.tree_at(
        lambda f: (f.loglik, f.aic, f.bic, f.theta, f.theta_stderr), fit,
        (loglik, aic, bic, theta.value, theta.stderr), is_leaf=lambda x: x is None,
    )  # fmt: skip


@eqx.filter_jit
def _with_estimated_shape(fit: GLMResult, model: RowLikelihood, X, y, w, offset) -> GLMResult:
    """A Gamma ``fit`` with its shape by maximum likelihood at its means (`gamma_shape_ml`,
    ``MASS::gamma.shape``) in its family; the dispersion ``1 / shape`` (``gamma.dispersion``)
    behind `scale`, `cov`, `stderr`, t values and p-values (R's ``summary(fit, dispersion =
    gamma.dispersion(fit))``, whose z tests are t tests on ``df_resid`` here, as for every
    estimated dispersion); `loglik` at ``(coef, shape)`` (rows of shape ``w_i shape``), with
    `aic` and `bic` counting the shape as before."""
    mu = jax.vmap(model.mean)(fit.linear_predictor(X, offset))
    shape = gamma_shape_ml(y, mu, w)
    scale = 1 / shape.value
    factor = scale / fit.scale
    loglik = gamma_loglik(y, mu, w, shape.value)
    aic, bic = information_criteria(fit, loglik)
    code = jnp.select(
        [fit.result != ResultCode.successful, shape.result == DispersionResult.infinite,
         shape.result != DispersionResult.successful],
        [fit.result, ResultCode.infinite_parameter, ResultCode.nonfinite],
        ResultCode.successful,
    ).astype(jnp.int32)  # fmt: skip
    fields = {"family": Gamma(shape.value), "scale": scale, "loglik": loglik, "aic": aic,
              "bic": bic}  # fmt: skip
    if fit.cov is not None:
        z = fit.zvalues / jnp.sqrt(factor)
        fields |= {"cov": fit.cov * factor, "stderr": fit.stderr * jnp.sqrt(factor),
                   "zvalues": z, "pvalues": t_two_sided(z, fit.df_resid)}  # fmt: skip
    fit = eqx.tree_at(lambda f: [getattr(f, name) for name in fields], fit, list(fields.values()))
    converged = (code == ResultCode.successful) | (code == ResultCode.singular_hessian)
    return eqx.tree_at(lambda f: (f.solution.result, f.solution.converged), fit, (code, converged))


def assemble(
    model, solution: Solution, inference: tuple[dict, Array], information, cov_type="nonrobust"
) -> GLMResult:
    """The `GLMResult` of a solution and its inference (`glmjax._inference.infer`), whose result
    code replaces the solver's."""
    fields, result = inference
    converged = (result == ResultCode.successful) | (result == ResultCode.singular_hessian)
    solution = eqx.tree_at(lambda s: (s.result, s.converged), solution, (result, converged))
    return GLMResult(
        family=model.family, link=model.link, solution=solution, information=information,
        cov_type=cov_type, **fields,
    )  # fmt: skip


def warn_outcome(fit: GLMResult, what: str, stacklevel: int = 3) -> None:
    """A `ConvergenceWarning` for a concrete fit that did not end cleanly, or whose dispersion
    cannot be estimated (no residual degrees of freedom, or an exact fit)."""
    if not is_concrete(fit.result):
        return
    code = ResultCode(int(fit.result))
    if code != ResultCode.successful:
        warnings.warn(
            f"{what} stopped after {int(fit.n_iter)} iterations: {code.message}",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    elif fit.estimated_dispersion and float(fit.df_resid) <= 0:
        warnings.warn(
            f"{what}: df_resid = {float(fit.df_resid):g}, no residual degrees of freedom to "
            "estimate the dispersion: scale, stderr, t values and p-values are NaN",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    elif fit.estimated_dispersion and float(fit.deviance) <= _EXACT * float(fit.null_deviance):
        warnings.warn(
            f"{what}: the fit is exact up to rounding (deviance {float(fit.deviance):.3g}, null "
            f"deviance {float(fit.null_deviance):.3g}): the dispersion estimate, the standard "
            "errors and p-values are 0 or rounding noise and the log-likelihood is as large as "
            "rounding lets it be (R reports the same)",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )


def check_fit_options(
    *, max_iter, tol, information, covariance, family=None, cov_type="nonrobust", clusters=None
) -> None:
    """``ValueError`` for a bad option shared by `fit_glm` and `fit_glm_streaming`."""
    check_int(max_iter, "max_iter", minimum=0)
    check_positive(tol, "tol")
    check_choice(information, "information", ("expected", "observed"))
    if not isinstance(covariance, bool):
        raise ValueError(f"`covariance` must be True or False, got {covariance!r}")
    check_choice(cov_type, "cov_type", COV_TYPES)
    if cov_type != "nonrobust" and not covariance:
        raise ValueError(f"`cov_type={cov_type!r}` needs covariance=True")
    if (cov_type == "cluster") != (clusters is not None):
        raise ValueError("`clusters` must be given exactly when cov_type='cluster'")
    if cov_type in ("HC2", "HC3") and family is not None and family.natural_dim is not None:
        raise ValueError(
            f"`cov_type={cov_type!r}` needs hat values, defined for scalar families only; "
            f"use 'HC0', 'HC1' or 'cluster' for {family.name}"
        )


def cluster_index(clusters, n: int) -> tuple[Array, int]:
    """Cluster labels as indices ``0..G-1`` and the number of segments: ``G`` for concrete
    labels (``ValueError`` unless there are ``n`` of them in at least 2 clusters); ``n`` (an
    upper bound) when they are traced."""
    if not is_concrete(clusters):
        clusters = jnp.asarray(clusters)
        if clusters.shape != (n,):
            raise ValueError(f"`clusters` must have shape ({n},), got {clusters.shape}")
        return jnp.unique(clusters, size=n, return_inverse=True)[1].reshape(n), n
    labels = np.asarray(clusters)
    if labels.shape != (n,):
        raise ValueError(f"`clusters` must have shape ({n},), got {labels.shape}")
    groups, index = np.unique(labels, return_inverse=True)
    if groups.size < 2:
        raise ValueError(f"`clusters` must hold at least 2 clusters, got {groups.size}")
    return jnp.asarray(index.reshape(n), jnp.int32), int(groups.size)


def reuses_hessian(solver, canonical: bool, information: str, firth: bool = False) -> bool:
    """Whether the solver's last evaluation holds the Hessian the inference wants (Firth's
    objective gives the expected information to every second-order solver)."""
    kind = solver.needs().hessian
    if kind is None:
        return False
    kind = "expected" if firth else kind
    return canonical or kind == information or (kind == "full" and information == "observed")


def infer_options(
    solver, canonical: bool, offset, information, covariance, blocks, chunk_size,
    cov_type="nonrobust", n_groups=0, firth=False,
) -> InferOptions:  # fmt: skip
    """`InferOptions` of a fit (``firth``: the solver minimised Firth's objective)."""
    refit_null = not (is_concrete(offset) and not np.any(np.asarray(offset)))
    reuse = reuses_hessian(solver, canonical, information, firth)
    return InferOptions(refit_null, information, covariance, reuse, not solver.second_order,
                        blocks, chunk_size, cov_type, n_groups, firth)  # fmt: skip


def fit_glm(
    X: ArrayLike,
    y: ArrayLike,
    family: ExponentialFamily,
    *,
    link=None,
    method="auto",
    weights: ArrayLike | None = None,
    offset: ArrayLike | None = None,
    l2: ArrayLike = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    information: str = "expected",
    start: ArrayLike | None = None,
    hessian: str = "structured",
    chunk_size: int | None = None,
    covariance: bool = True,
    cov_type: str = "nonrobust",
    clusters: ArrayLike | None = None,
    firth: bool = False,
) -> GLMResult:
    r"""Fit a generalised linear model by maximum likelihood (penalised by ``l2``).

    Minimises ``(1/n) sum_i w_i [a(theta_i) - <theta_i, T(y_i)>] + (1/2) sum l2 coef^2`` with
    ``theta_i`` the natural parameter of the mean ``g^-1(eta_i)``, ``eta = X @ coef + offset``
    (`glmjax._objective`), in one jit-compiled ``lax.while_loop``.

    **Arguments:**

    - `X`: design matrix `(n, p)`, used as given (`add_intercept` prepends ones).
    - `y`: responses `(n,)`: labels ``0..k-1`` for `Categorical(k)`, proportions for `Binomial`.
    - `family`: an `ExponentialFamily`; `coef` is `(p,)`, or `(p, m)` for a vector family.
    - `link`: ``None`` (the family's canonical link), a name (``"identity"``, ``"log"``,
      ``"logit"``, ``"probit"``, ``"cauchit"``, ``"cloglog"``, ``"loglog"``, ``"inverse"``,
      ``"inverse_squared"``, ``"sqrt"``), `glmjax.links.Power(p)` or any `glmjax.Link`.
    - `method`: ``"auto"`` (exact Newton, or Newton-CG when a Hessian costs more than about 40
      Hessian-vector products: `glmjax.solvers.auto_method`), ``"newton"`` (observed
      information), ``"irls"`` (Fisher scoring), ``"newton-cg"`` (Hessian-free), ``"gd"``,
      ``"lbfgs"``, a `glmjax.solvers.Solver`, or any ``optax.GradientTransformation`` (reuse
      the same object: a new one compiles anew).
    - `weights`: prior weights `(n,)` (R's `weights`, statsmodels' `var_weights`); default ones.
    - `offset`: added to the linear predictor, `(n,)` (or `(n, m)`); default zeros.
    - `l2`: ridge penalty, a scalar or an array broadcastable to `coef` (0 for unpenalised rows).
    - `max_iter`: most accepted steps; `history` has `max_iter + 1` entries.
    - `tol`: converged when ``max_j |grad_j| / s_j <= tol * max(1, |objective|)`` (``s_j`` the
      root mean square of column ``j``: the rule is invariant to rescaling columns) and, for
      Newton-type methods, the last step was small. Rounding limits what is reachable (about
      ``1e-5`` in float32): a fit whose steps no longer change the objective also counts as
      converged when that holds with ``max(tol, sqrt(eps))``.
    - `information`: the information behind `cov`, `stderr` and p-values: ``"expected"`` (R's
      ``summary.glm``) or ``"observed"``; they coincide for the canonical link.
    - `start`: initial coefficients (default: the intercept-only model's linear predictor fitted
      by least squares, else zero).
    - `hessian`: Newton's ``"structured"`` (chunked GLM form) or ``"full"`` (``jax.hessian`` of
      the objective, the reference).
    - `chunk_size`: rows per chunk of the sums over rows (per device when ``X`` is sharded;
      default: ``max(256, 2^18 / p)`` for a scalar family; for a vector one ``max(256, n / m^2)``,
      and ``max(256, 2^19 / (p m (m + 1) / 2))`` for its Hessian).
    - `covariance`: compute `cov` and with it `stderr`, `zvalues`, `pvalues` (else ``None``):
      a ``(q, q)`` matrix, ``q = coef.size``; pass False for fits with many parameters
      (``method="newton-cg"`` never forms the Hessian).
    - `cov_type`: the covariance behind `stderr`, `zvalues`, `pvalues`, `conf_int`:
      ``"nonrobust"`` (the model's, R's ``vcov``), the sandwiches ``"HC0"``-``"HC3"`` (R's
      ``sandwich::vcovHC``; HC2, HC3 for scalar families) or ``"cluster"`` (R's
      ``sandwich::vcovCL``, adjusted by ``G / (G - 1)``); definitions in `glmjax._inference`.
    - `clusters`: `(n,)` cluster labels (any values; at least 2 clusters) for
      ``cov_type="cluster"``.
    - `firth`: Firth's bias-reduced estimate, the maximiser of the log-likelihood plus ``(1/2)
      log det I(coef)`` (Jeffreys' prior; for a canonical link R's ``brglm2::brglmFit(type =
      "AS_mean")`` and, for the logistic model, ``logistf``), finite under separation; for
      families with a fixed dispersion (`glmjax._firth`). Its `stderr` are the Wald ones at the
      estimate (expected information); `deviance`, `loglik` and `aic` are unpenalised, at the
      estimate, and the null deviance is that of Firth's intercept-only fit, as brglm2's.

    **Returns:** a `GLMResult`. When the inputs are concrete a `ConvergenceWarning` says why a
    fit did not end with `ResultCode.successful`. Under ``jax.vmap``/``jax.jit`` of `fit_glm`
    itself (traced inputs) value checks and warnings are skipped; check `result` instead.

    ```python
    import glmjax as gj, numpy as np
    X = gj.add_intercept(np.array([[0.0], [1.0], [2.0], [3.0]]))
    fit = gj.fit_glm(X, np.array([1, 0, 3, 4]), gj.Poisson())
    probit = gj.fit_glm(X, np.array([0, 1, 0, 1]), gj.Bernoulli(), link="probit")
    ```
    """
    check_choice(hessian, "hessian", ("structured", "full"))
    theta_estimated = estimates_theta(family)
    shape_estimated = isinstance(family, Gamma) and family.shape is None
    if shape_estimated:
        family = Gamma(1.0)  # the coefficients do not depend on the shape
    if theta_estimated:
        poisson, model = models(link)
        family, link, canonical = model.family, model.link, False
    else:
        link, canonical = links.get(link, family)
        model = RowLikelihood(family, link, canonical)
    check_fit_options(max_iter=max_iter, tol=tol, information=information, covariance=covariance,
                      family=family, cov_type=cov_type, clusters=clusters)  # fmt: skip
    check_int(chunk_size, "chunk_size", minimum=1, optional=True)
    if not isinstance(firth, bool):
        raise ValueError(f"`firth` must be True or False, got {firth!r}")
    if firth:
        if theta_estimated:
            raise ValueError("`firth=True` is not offered with NegativeBinomial(r=None)")
        check_firth(family, hessian=hessian, cov_type=cov_type)
    X, y, weights, offset, l2, start = validate_glm_inputs(
        X, y, family, weights=weights, offset=offset, l2=l2, start=start
    )
    groups, n_groups = (None, 0) if clusters is None else cluster_index(clusters, X.shape[0])
    solver = make_solver(method, hessian=hessian, shape=X.shape + (family.natural_dim,))
    eta0 = _start_eta(model, _mean_statistic(family, X, y, weights))
    tol = jnp.asarray(tol, X.dtype)
    blocks = row_blocks(X)
    # concrete data were validated on the host: the compiled fit need not check them again
    checked = all(map(is_concrete, (X, y, weights, offset, *jax.tree.leaves(family))))
    if theta_estimated:
        solution, columns, theta, loglik = _solve_theta(
            poisson, model, X, y, weights, offset, l2, start, eta0, solver, int(max_iter), tol,
            blocks, chunk_size, checked,
        )  # fmt: skip
        model = with_theta(model, theta.value)
    else:
        solution, columns = _solve(
            model, X, y, weights, offset, l2, start, eta0, solver, int(max_iter), tol, blocks,
            chunk_size, checked, firth,
        )  # fmt: skip
    options = infer_options(solver, canonical, offset, information, covariance, blocks, chunk_size,
                            cov_type, n_groups, firth)  # fmt: skip
    fit = _infer(model, X, y, weights, offset, l2, solution, columns, eta0, tol, groups, options)
    if theta_estimated:
        fit = with_estimated_theta(fit, theta, loglik)
    if shape_estimated:
        fit = _with_estimated_shape(fit, model, X, y, weights, offset)
    warn_outcome(fit, f"fit_glm ({family.name}, method={method!r})")
    return fit
