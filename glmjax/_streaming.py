r"""Out-of-core Newton: `fit_glm_streaming` fits a GLM to rows that never sit in memory together.

The objective of `fit_glm` (`glmjax._objective`) is a sum over rows plus the ridge,

$$ f(\mathrm{coef}) = \frac1N \sum_{c} S_c(\mathrm{coef})
    + \tfrac12 \sum l2\, \mathrm{coef}^2 , \qquad
S_c = \sum_{i \in c} w_i \big[a(\eta_i) - \langle \eta_i, T(y_i)\rangle\big] , $$

and so are its gradient and (structured) Hessian. One *pass* reads the chunks ``c`` of rows once and
adds up ``S_c``, ``grad S_c`` and ``hess S_c`` at one point — each chunk through a single
jit-compiled function that reuses `GLMObjective` — so memory holds one chunk plus ``O(q^2)``
numbers, whatever ``N``. Exact Newton then runs on the host: ``d = -H^{-1} grad f`` (`solve_psd`:
Cholesky, else eigh pseudo-inverse), and the next pass evaluates everything at ``coef + d``. If the
objective did not decrease enough there (Armijo's condition, as in `glmjax._solvers`), the step is
halved and the pass repeated; usually one pass is one iteration. Once the predicted decrease
``-<grad f, d>`` is below ``4 eps |f|`` (the objective's rounding) the full step is taken. For a
canonical link IRLS takes the same iterates. Stopping is `fit_glm`'s rule: ``max|grad f| <= tol
max(1, |f|)`` after a step that moved no coefficient by more than ``1e-3 (1 + max|coef|)``.

**Start and inference.** A first pass adds up ``X^T W X``, ``X^T w``, ``X^T (w offset)`` and the
weighted mean of ``T(y)``: the start is then `fit_glm`'s, the least-squares fit of ``link(mean
T(y)) - offset`` on ``X`` (zero if that fails), so families whose ``eta`` must stay negative
(Gamma, Geometric, ...) start inside their domain. After the fit, one more pass adds up the
deviance (per-row saturated values, as `make_result`) and the log-likelihood; Gamma's needs the
shape ``sum w / deviance`` of all rows, so a second one.

**Chunks are compiled once.** Every chunk is padded to ``chunk_rows`` rows by repeating its last row
with weight 0 (a repeated row keeps ``eta`` inside the family's domain, where zeros might not, e.g.
Gamma), so one compiled function serves all chunks, the short last one included.

**Memory.** A chunk read from an `numpy.memmap` is copied out of a fresh mapping of just those rows,
which is dropped afterwards: the pages read do not stay mapped in (and counted against) the process.
"""

import mmap
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from tqdm import tqdm

from ._families import Gamma, Gaussian
from ._family import ExponentialFamily
from ._fit import ConvergenceWarning, _link
from ._objective import GLMObjective
from ._result import (
    _covariance,
    _deviance,
    _estimates_dispersion,
    _gamma_loglik,
    _gaussian_loglik,
    _loglik,
    _rank,
    _saturated,
    _sum_log_weights,
)
from ._solvers import (
    _ARMIJO,
    _MAX_HALVINGS,
    _STEP_RTOL,
    ResultCode,
    StartSums,
    fill_known_null_space,
    least_squares_start,
    solve_psd,
    start_sums,
)
from ._validation import validate_glm_inputs

_DEFAULT_CHUNK_ROWS = 65_536


class StreamingResult(eqx.Module):
    """A GLM fitted by `fit_glm_streaming`.

    - `family`: the family.
    - `coef`: coefficients, `(p,)` or `(p, m)`.
    - `cov`, `stderr`: ``scale * K^{-1}`` with the Fisher information ``K = N hess f / phi`` and its
      diagonal's square root (as `GLMResult`); `scale` is Pearson's ``X2 / (nobs - q)`` for
      Gaussian and Gamma, else 1.
    - `objective`: ``f(coef)``, the penalised mean negative log-likelihood minimised.
    - `deviance`, `loglik`, `aic`, `bic`: as `GLMResult`'s (R's ``deviance``, ``logLik``, ``AIC``,
      ``BIC``), from one more pass over the data after the fit (two for Gamma, whose
      log-likelihood needs the shape ``sum w / deviance`` first).
    - `nobs`: rows with positive weight; `n_rows`: all rows read (``N`` above).
    - `n_iter`, `n_passes` (passes over the data for the fit: the start's, then one per Newton
      step and halved step),
      `converged`,
      `grad_norm` (``max|grad f|``), `history` (``f`` at the start and after each iteration),
      `result` (a `ResultCode`).
    """

    family: ExponentialFamily
    coef: Float[Array, "p *m"]
    cov: Float[Array, "q q"]
    stderr: Float[Array, "p *m"]
    scale: Float[Array, ""]
    objective: Float[Array, ""]
    deviance: Float[Array, ""]
    loglik: Float[Array, ""]
    aic: Float[Array, ""]
    bic: Float[Array, ""]
    nobs: Int[Array, ""]
    n_rows: int = eqx.field(static=True)
    n_iter: int = eqx.field(static=True)
    n_passes: int = eqx.field(static=True)
    converged: Bool[Array, ""]
    grad_norm: Float[Array, ""]
    history: Float[Array, " n_iter+1"]
    result: int = eqx.field(static=True)

    @property
    def message(self) -> str:
        return ResultCode(self.result).message


class _Sums(eqx.Module):
    """Sums over rows at one point: ``S``, its gradient and Hessian, Pearson's statistic, rows with
    positive weight."""

    value: Float[Array, ""]
    grad: Float[Array, "p *m"]
    hessian: Float[Array, "q q"]
    pearson: Float[Array, ""]
    nobs: Int[Array, ""]


@eqx.filter_jit
def _chunk_sums(family, coef, X, y, weights, offset) -> _Sums:
    objective = GLMObjective.from_data(family, X, y, weights, offset, 0.0)
    rows = X.shape[0]
    value = objective(coef)
    grad, hessian = objective.grad_and_hessian(coef)  # one pass over the chunk's rows
    if _estimates_dispersion(family):
        eta = objective.eta(coef)
        unit_variance = family.variance(eta) / family.dispersion
        pearson = jnp.sum(weights * (objective.t - family.mean(eta)) ** 2 / unit_variance)
    else:
        pearson = jnp.zeros((), X.dtype)
    # the objective is a mean over the chunk's rows: scaled back to sums
    return _Sums(
        rows * value,
        rows * grad,
        rows * hessian,
        pearson,
        jnp.sum(weights > 0),
    )


@eqx.filter_jit
def _chunk_start_sums(family, coef, X, y, weights, offset) -> StartSums:
    objective = GLMObjective.from_data(family, X, y, weights, offset, 0.0)
    return start_sums(objective.X, objective.t, objective.weights, objective.offset)


_least_squares_start = eqx.filter_jit(least_squares_start)


class _FitSums(eqx.Module):
    """Sums over rows at the fitted coefficients: the deviance, the log-likelihood (families with
    a fixed dispersion), ``sum log w`` and ``sum w`` (rows with positive weight)."""

    deviance: Float[Array, ""]
    loglik: Float[Array, ""]
    sum_log_weights: Float[Array, ""]
    weight_sum: Float[Array, ""]


@eqx.filter_jit
def _chunk_fit_sums(family, coef, X, y, weights, offset) -> _FitSums:
    objective = GLMObjective.from_data(family, X, y, weights, offset, 0.0)
    eta, t = objective.eta(coef), objective.t
    estimated = _estimates_dispersion(family)
    omega = weights if estimated else weights / family.dispersion
    deviance = _deviance(family, t, eta, omega, _saturated(family, t, eta)[0])
    # Gaussian and Gamma: from the totals afterwards (`fit_glm_streaming`)
    loglik = (
        jnp.zeros((), X.dtype) if estimated else _loglik(family, y, t, eta, weights, omega, 0, 0)
    )
    return _FitSums(deviance, loglik, _sum_log_weights(weights), jnp.sum(weights))


@eqx.filter_jit
def _chunk_gamma_loglik(family, coef, X, y, weights, offset, shape):
    eta = GLMObjective.from_data(family, X, y, weights, offset, 0.0).eta(coef)
    return _gamma_loglik(y, eta, weights, shape)


@jax.jit
def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


@eqx.filter_jit
def _newton_direction(family, l2, H, g):
    """``-H^+ grad`` as `Newton` computes it (jitted once per shape: `solve_psd`'s ``lax.cond``
    would otherwise retrace and recompile every call)."""
    return solve_psd(fill_known_null_space(family, l2, H), -g.reshape(-1))[0].reshape(g.shape)


# `make_result`'s covariance (unit-diagonal scaling, pseudo-inverse), compiled once per shape
_covariance_jit = jax.jit(_covariance)


# ----- reading chunks -----------------------------------------------------------------------------


def _read_rows(a, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``a`` as an in-memory array; a whole-file `numpy.memmap` is read
    through a fresh mapping of just those rows, unmapped when this returns."""
    if isinstance(a, np.memmap) and isinstance(a.base, mmap.mmap) and a.flags.c_contiguous:
        row_bytes = a.dtype.itemsize * int(np.prod(a.shape[1:], dtype=np.int64))
        rows = np.memmap(
            a.filename,
            dtype=a.dtype,
            mode="r",
            offset=a.offset + start * row_bytes,
            shape=(stop - start, *a.shape[1:]),
        )
        return np.array(rows)
    return np.asarray(a[start:stop])


def _source(
    chunks, chunk_rows: int | None
) -> tuple[Callable[[], Iterable], int | None, int | None]:
    """``(make_iterator, chunk_rows, number of chunks if known)`` for the accepted kinds of
    ``chunks``."""
    if isinstance(chunks, tuple) and chunks and all(hasattr(a, "shape") for a in chunks):
        if not 2 <= len(chunks) <= 4:
            raise ValueError(
                f"`chunks` as arrays must be (X, y[, weights[, offset]]), got {len(chunks)} arrays"
            )
        n = chunks[0].shape[0]
        for a, name in zip(chunks, ["X", "y", "weights", "offset"][: len(chunks)], strict=True):
            if a.shape[0] != n:
                raise ValueError(f"`chunks`: {name} has {a.shape[0]} rows, X has {n}")
        rows = chunk_rows or min(n, _DEFAULT_CHUNK_ROWS)

        def arrays():
            for start in range(0, n, rows):
                stop = min(start + rows, n)
                yield tuple(_read_rows(a, start, stop) for a in chunks)

        return arrays, rows, -(-n // rows)
    if callable(chunks):
        return chunks, chunk_rows, None
    if isinstance(chunks, Iterable) and iter(chunks) is not chunks:
        return lambda: iter(chunks), chunk_rows, len(chunks) if hasattr(chunks, "__len__") else None
    raise ValueError(
        "`chunks` must be a tuple of arrays (X, y[, weights[, offset]]), a function returning an "
        "iterable of such tuples (e.g. a generator function), or a re-iterable collection of them; "
        f"got {type(chunks).__name__} (a one-shot iterator cannot be read once per pass)"
    )


def _pad(chunk, rows: int, family) -> tuple[np.ndarray, ...]:
    """``(X, y, weights, offset)`` with ``rows`` rows: the last row repeated with weight 0."""
    if not isinstance(chunk, tuple | list) or not 2 <= len(chunk) <= 4:
        raise ValueError("each chunk must be a tuple (X, y[, weights[, offset]])")
    X, y, *rest = (np.asarray(a) if a is not None else None for a in chunk)
    weights = rest[0] if rest and rest[0] is not None else None
    offset = rest[1] if len(rest) > 1 else None
    n = X.shape[0] if X.ndim == 2 else -1
    if n < 1:
        raise ValueError(f"each chunk's X must be a 2-d array with rows, got shape {X.shape}")
    for a, name in [(y, "y"), (weights, "weights"), (offset, "offset")]:
        if a is not None and (a.ndim == 0 or a.shape[0] != n):
            raise ValueError(f"a chunk's `{name}` has shape {a.shape}, its X has {n} rows")
    if n > rows:
        raise ValueError(f"a chunk has {n} rows, more than `chunk_rows` = {rows}")
    if weights is None:
        weights = np.ones(n, X.dtype if np.issubdtype(X.dtype, np.floating) else float)
    if offset is None:
        m = family.natural_dim
        offset = np.zeros((n,) if m is None else (n, m), weights.dtype)
    extra = rows - n

    def edge(a):
        return np.pad(a, [(0, extra)] + [(0, 0)] * (a.ndim - 1), mode="edge") if extra else a

    return edge(X), edge(y), np.pad(weights, (0, extra)), edge(offset), n


# ----- the fit ------------------------------------------------------------------------------------


def fit_glm_streaming(
    chunks: tuple[ArrayLike, ...] | Callable[[], Iterable] | Iterable,
    family: ExponentialFamily,
    *,
    method: str = "newton",
    l2: ArrayLike = 0.0,
    max_iter: int = 50,
    tol: float = 1e-8,
    chunk_rows: int | None = None,
    progress: bool = True,
) -> StreamingResult:
    r"""Fit a GLM by exact Newton with one pass over row chunks per iteration (out of core).

    Minimises the same objective as `fit_glm` (so the coefficients agree with `fit_glm` on the
    same rows), while holding only one chunk of rows in memory; see `glmjax._streaming` for the
    algorithm.

    **Arguments:**

    - `chunks`: where the rows come from, re-read once per pass:
        - a tuple of arrays ``(X, y[, weights[, offset]])`` with the same number of rows, e.g.
          `numpy.memmap` arrays of files on disk, read ``chunk_rows`` rows at a time;
        - a function returning an iterable of chunk tuples ``(X_c, y_c[, weights_c[, offset_c]])``
          (a generator function reading files, a database cursor, ...), called once per pass and
          expected to give the same rows each time;
        - a re-iterable collection (e.g. a list) of chunk tuples.
    - `family`: an `ExponentialFamily` (`Categorical` included).
    - `method`: `"newton"` (exact Newton; IRLS gives the same iterates for these canonical links).
    - `l2`: ridge penalty, a scalar or an array of the coefficient shape, as in `fit_glm`.
    - `max_iter`: most Newton iterations.
    - `tol`: converged when ``max|grad f| <= tol max(1, |f|)`` after a small step (as `fit_glm`).
    - `chunk_rows`: rows per compiled chunk; chunks are padded up to it. Default: 65,536 rows for
      arrays, the size of the first chunk otherwise (later chunks must not be larger).
    - `progress`: tqdm bars over iterations and over the chunks of each pass.

    **Returns:** a `StreamingResult`. A `ConvergenceWarning` says when `max_iter` was reached or
    the line search stalled.

    Each chunk's values are validated as `fit_glm` validates its inputs (shapes, finite values,
    the family's support, non-negative weights); whether ``X`` has full column rank is a property
    of all rows together and is not checked.

    ```python
    import numpy as np, glmjax as gj
    X = np.lib.format.open_memmap("X.npy")          # (N, p) on disk
    y = np.lib.format.open_memmap("y.npy")
    fit = gj.fit_glm_streaming((X, y), gj.Poisson(), chunk_rows=100_000)
    ```
    """
    if method != "newton":
        raise ValueError(f"`method` must be 'newton' for streaming fits, got {method!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"`max_iter` must be a non-negative integer, got {max_iter!r}")
    if not tol > 0:
        raise ValueError(f"`tol` must be positive, got {tol!r}")
    if chunk_rows is not None and (not isinstance(chunk_rows, int) or chunk_rows < 1):
        raise ValueError(f"`chunk_rows` must be a positive integer or None, got {chunk_rows!r}")
    make_iter, rows, n_chunks = _source(chunks, chunk_rows)
    state: dict[str, Any] = {"rows": rows, "n_chunks": n_chunks, "dtype": None, "n_rows": None}

    def one_pass(coef, desc: str, chunk_fn=_chunk_sums) -> tuple[Any, Any]:
        total, n_rows = None, 0
        with tqdm(make_iter(), desc=desc, unit="chunk", total=state["n_chunks"], leave=False,
                  disable=not progress) as bar:  # fmt: skip
            for chunk in bar:
                if state["rows"] is None:
                    state["rows"] = int(np.shape(chunk[0])[0])
                X, y, w, o, n = _pad(chunk, state["rows"], family)
                # rank is a property of all rows, not of one chunk: l2=1 skips that check only
                X, y, w, o, _ = validate_glm_inputs(X, y, family, weights=w, offset=o, l2=1.0)
                if state["dtype"] is None:
                    state["dtype"] = X.dtype
                    m = family.natural_dim
                    shape = (X.shape[1],) if m is None else (X.shape[1], m)
                    coef = jnp.zeros(shape, X.dtype) if coef is None else coef
                sums = chunk_fn(family, coef, X, y, w, o)
                total = sums if total is None else _add(total, sums)
                n_rows += n
        if total is None:
            raise ValueError("`chunks` gave no rows")
        if state["n_rows"] is not None and n_rows != state["n_rows"]:
            raise ValueError(
                f"`chunks` gave {n_rows} rows in this pass, {state['n_rows']} in the first: a "
                "streaming fit needs the same rows in every pass"
            )
        state["n_rows"] = n_rows
        state["n_chunks"] = state["n_chunks"] or bar.n
        return total, coef

    def totals(sums: _Sums, coef):
        l2_ = jnp.broadcast_to(jnp.asarray(l2, coef.dtype), coef.shape)
        N = state["n_rows"]
        f = sums.value / N + 0.5 * jnp.sum(l2_ * coef**2)
        g = sums.grad / N + l2_ * coef
        H = sums.hessian / N + jnp.diag(l2_.reshape(-1))
        return float(f), g, H

    with tqdm(total=max_iter, desc="newton", unit="iter", disable=not progress) as outer:
        # the start, as fit_glm's: least squares for the intercept-only model's eta, else zero
        start, zero = one_pass(None, "start", _chunk_start_sums)
        eta0 = _link(family, start.t_sum / start.weight_sum)
        coef = _least_squares_start(start, eta0)
        n_passes = 2
        sums, _ = one_pass(coef, "pass 2")
        f, g, H = totals(sums, coef)
        if not (np.all(np.isfinite(coef)) and np.isfinite(f)):
            coef = zero
            n_passes += 1
            sums, _ = one_pass(coef, f"pass {n_passes}")
            f, g, H = totals(sums, coef)
        if not np.isfinite(f):
            raise ValueError(
                "the objective is not finite at the start (least squares for the intercept-only "
                "model's linear predictor, then coef = 0): e.g. Gamma needs eta < 0"
            )
        eps = float(jnp.finfo(coef.dtype).eps)
        history = [f]
        result = ResultCode.max_iter_reached
        for _ in range(max_iter):
            d = _newton_direction(family, jnp.asarray(l2, coef.dtype), H, g)
            slope = float(jnp.vdot(g, d))
            # a predicted decrease below the objective's rounding: the comparison would see only
            # noise, and the exact Newton step that close to the optimum is safe (as `NewtonCG`)
            flat = -slope <= 4 * eps * abs(f)
            t, accepted = 1.0, False
            for _ in range(_MAX_HALVINGS):
                trial = coef + t * d
                n_passes += 1
                sums_t, _ = one_pass(trial, f"pass {n_passes}")
                f_t, g_t, H_t = totals(sums_t, trial)
                armijo = f_t <= f + _ARMIJO * t * slope + 4 * eps * abs(f)
                if np.isfinite(f_t) and (flat or (f_t <= f and armijo)):
                    accepted = True
                    break
                t *= 0.5
            if not accepted:
                result = ResultCode.stalled
                break
            step = float(jnp.max(jnp.abs(trial - coef)))
            coef, f, g, H, sums = trial, f_t, g_t, H_t, sums_t
            history.append(f)
            outer.update()
            outer.set_postfix(objective=f"{f:.10g}", passes=n_passes)
            small_step = step <= _STEP_RTOL * (1 + float(jnp.max(jnp.abs(coef))))
            if float(jnp.max(jnp.abs(g))) <= tol * max(1.0, abs(f)) and small_step:
                result = ResultCode.successful
                break

    if result != ResultCode.successful:
        warnings.warn(
            f"fit_glm_streaming ({type(family).__name__}) stopped after {len(history) - 1} "
            f"iterations: {result.message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    N = state["n_rows"]
    q = H.shape[0]
    phi = 1.0 if _estimates_dispersion(family) else family.dispersion
    scale = sums.pearson / (sums.nobs - q) if _estimates_dispersion(family) else 1.0
    cov = _covariance_jit(N / phi * H, jnp.asarray(scale, H.dtype))

    fit_sums, _ = one_pass(coef, "deviance", _chunk_fit_sums)
    deviance, nobs = fit_sums.deviance, sums.nobs
    if isinstance(family, Gaussian):
        loglik = _gaussian_loglik(deviance, nobs, fit_sums.sum_log_weights)
    elif isinstance(family, Gamma):
        shape = fit_sums.weight_sum / deviance
        loglik, _ = one_pass(
            coef, "log-likelihood", lambda *args: _chunk_gamma_loglik(*args, shape)
        )
    else:
        loglik = fit_sums.loglik
    k = _rank(family, coef.shape[0]) + (1 if _estimates_dispersion(family) else 0)
    return StreamingResult(
        family=family,
        coef=coef,
        cov=cov,
        stderr=jnp.sqrt(jnp.diagonal(cov)).reshape(coef.shape),
        scale=jnp.asarray(scale, coef.dtype),
        objective=jnp.asarray(f, coef.dtype),
        deviance=deviance,
        loglik=loglik,
        aic=-2 * loglik + 2 * k,
        bic=-2 * loglik + jnp.log(nobs.astype(coef.dtype)) * k,
        nobs=nobs,
        n_rows=N,
        n_iter=len(history) - 1,
        n_passes=n_passes,
        converged=jnp.asarray(result == ResultCode.successful),
        grad_norm=jnp.max(jnp.abs(g)),
        history=jnp.asarray(history, coef.dtype),
        result=int(result),
    )
