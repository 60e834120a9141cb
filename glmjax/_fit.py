"""`fit_glm`, the entry point: validate, run one jit-compiled solver loop, build the result."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._family import ExponentialFamily
from ._objective import GLMObjective
from ._result import GLMResult, make_result
from ._sharding import row_blocks
from ._solvers import ResultCode, Solution, make_solver, mean_statistic, minimise
from ._validation import validate_glm_inputs


class ConvergenceWarning(RuntimeWarning):
    """A fit stopped without a clean optimum: max_iter reached, separation, singular Hessian, ..."""


def add_intercept(X: ArrayLike) -> Float[Array, "n p+1"]:
    """``X`` with a column of ones prepended (the intercept is then ``coef[0]``)."""
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"`X` must be a 2-d array (n, p), got shape {X.shape}")
    if not jnp.issubdtype(X.dtype, jnp.inexact):
        X = X.astype(jnp.result_type(float))
    return jnp.concatenate([jnp.ones((X.shape[0], 1), X.dtype), X], axis=1)


@eqx.filter_jit
def _solve(family, X, y, weights, offset, l2, solver, max_iter, tol, eta0, blocks=1) -> Solution:
    # family, solver, max_iter and blocks are static (hashed) here: a second fit with the same
    # shapes, family and method reuses the compiled loop
    objective = GLMObjective.from_data(family, X, y, weights, offset, l2, row_blocks=blocks)
    return minimise(objective, solver, max_iter=max_iter, tol=tol, eta0=eta0)


@eqx.filter_jit
def _mean_statistic(family, X, y, weights):
    return mean_statistic(GLMObjective.from_data(family, X, y, weights, 0.0, 0.0))


@eqx.filter_jit
def _link(family, mean):
    # compiled apart from the solver loop: its shape depends on the family alone, so one compile
    # of the link's Newton loop serves every data shape and method
    return family.link(mean)


def fit_glm(
    X: ArrayLike,
    y: ArrayLike,
    family: ExponentialFamily,
    *,
    method="newton",
    weights: ArrayLike | None = None,
    offset: ArrayLike | None = None,
    l2: ArrayLike = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    hessian: str = "structured",
    chunk_size: int | None = None,
    covariance: bool = True,
) -> GLMResult:
    r"""Fit a generalised linear model with the family's canonical link by maximum likelihood.

    Minimises ``(1/n) sum_i w_i [a(eta_i) - <eta_i, T(y_i)>] + (1/2) sum l2 coef^2`` with
    ``eta = X @ coef + offset`` (see `glmjax._objective`), in one jit-compiled ``lax.while_loop``.

    **Arguments:**

    - `X`: design matrix `(n, p)`, used as given (`add_intercept` prepends ones).
    - `y`: responses `(n,)`: labels ``0..k-1`` for `Categorical(k)`, proportions for `Binomial`.
    - `family`: an `ExponentialFamily`; `coef` is `(p,)`, or `(p, m)` for a vector family.
    - `method`: `"newton"` (exact Newton, line search), `"newton-cg"` (Hessian-free: truncated
      conjugate gradients on Hessian-vector products), `"irls"`, `"gd"`, `"lbfgs"`
      (`optax.lbfgs`), or any `optax.GradientTransformation` (reuse the same object across fits: a
      new one compiles anew).
    - `weights`: prior weights `(n,)` (R's `weights`, statsmodels' `var_weights`); default ones.
    - `offset`: added to the linear predictor, `(n,)` (or `(n, m)`); default zeros.
    - `l2`: ridge penalty, a scalar or an array broadcastable to `coef` (0 for unpenalised rows).
    - `max_iter`: iteration limit; `history` has `max_iter + 1` entries.
    - `tol`: converged when ``max|grad| <= tol * max(1, |objective|)`` (and, for Newton/IRLS, the
      last step was small). Rounding limits what is reachable (about ``1e-5`` in float32): a fit
      whose steps no longer decrease the objective also counts as converged when
      ``max|grad| <= max(tol, sqrt(eps)) * max(1, |objective|)``.
    - `hessian`: `"structured"` (chunked GLM form, default) or `"full"` (``jax.hessian`` of the
      objective); Newton only.
    - `chunk_size`: rows per chunk (per device when ``X`` is sharded) of the structured Hessian
      (default: ``max(256, 2^18 / p)`` for a scalar family, a ~2 MiB temporary; ``max(256, n /
      m^2)`` for a vector one, so the temporary is no larger than ``X``).
    - `covariance`: compute `cov` and with it `stderr`, `zvalues`, `pvalues` (else they are
      ``None``). The ``(q, q)`` matrix (``q = coef.size``) and its eigendecomposition cost ``8 q^2``
      bytes and ``O(q^3)`` time — 3.2 GB at ``q = 20,000``: pass False for fits with many
      parameters (``method="newton-cg"``, which never forms the Hessian).

    **Returns:** a `GLMResult`. When the inputs are concrete, a `ConvergenceWarning` says why a
    fit did not end with `ResultCode.successful` (``max_iter`` reached, separation, singular
    Hessian, ...).

    Under ``jax.vmap``/``jax.jit`` of `fit_glm` itself (traced inputs), input validation and the
    warning are skipped; check `result` / `converged` instead.

    ```python
    import glmjax as gj, numpy as np
    X = gj.add_intercept(np.array([[0.0], [1.0], [2.0], [3.0]]))
    fit = gj.fit_glm(X, np.array([1, 0, 3, 4]), gj.Poisson())
    ```
    """
    solver = make_solver(method, hessian=hessian, chunk_size=chunk_size)
    if not isinstance(covariance, bool):
        raise ValueError(f"`covariance` must be True or False, got {covariance!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 0:
        raise ValueError(f"`max_iter` must be a non-negative integer, got {max_iter!r}")
    if not isinstance(tol, jax.core.Tracer) and not np.all(np.asarray(tol) > 0):
        raise ValueError(f"`tol` must be positive, got {tol!r}")
    X, y, weights, offset, l2 = validate_glm_inputs(
        X, y, family, weights=weights, offset=offset, l2=l2
    )
    solution = _solve(
        family,
        X,
        y,
        weights,
        offset,
        l2,
        solver,
        int(max_iter),
        jnp.asarray(tol, jnp.result_type(X)),
        _link(family, _mean_statistic(family, X, y, weights)),
        row_blocks(X),
    )
    if not isinstance(solution.result, jax.core.Tracer):
        code = ResultCode(int(solution.result))
        if code != ResultCode.successful:
            warnings.warn(
                f"fit_glm ({type(family).__name__}, method={method!r}) stopped after "
                f"{int(solution.n_iter)} iterations: {code.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
    return make_result(family, X, y, weights, offset, l2, solution, covariance=covariance)
