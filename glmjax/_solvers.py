r"""Solvers for the GLM objective of `glmjax._objective`: configuration objects plus one loop.

A solver holds configuration only (static fields). `minimise` runs it inside a single
``lax.while_loop``, so a whole fit is one jit-compiled call and ``jax.vmap`` over many data sets
works. Each solver implements ``init(objective, coef, f, grad) -> state`` and ``step(objective,
coef, f, grad, state) -> (coef, f, grad, state, StepInfo)``.

| solver | update |
|---|---|
| `Newton` | ``coef - t H^{-1} grad f`` (Cholesky, else eigh pseudo-inverse) |
| `NewtonCG` | ``coef + t d``, ``H d ~ -grad f`` by truncated CG (`glmjax._newton_cg`) |
| `IRLS` | ``coef + t (beta - coef)``, ``beta`` the weighted LS fit of the working response |
| `GradientDescent` | ``coef - t grad f``, t from a Lipschitz bound, then backtracking |
| `OptaxSolver` | any ``optax.GradientTransformation``; ``"lbfgs"`` is ``optax.lbfgs()`` |

Newton, IRLS and gradient descent take the largest ``t`` in ``{t0, t0/2, t0/4, ...}`` with a finite,
not larger objective satisfying Armijo's condition ``f(coef + t d) <= f + 1e-4 t <grad f, d>``, so
the objective never increases (a non-finite objective, e.g. Gamma's ``eta`` leaving ``(-inf, 0)``,
counts as ``+inf``) — except that a Newton or IRLS step whose predicted decrease ``-<grad f, d>``
is below ``4 eps |f|`` is taken in full (`newton_backtrack`): the objective can no longer tell
better from worse there, and the step only shrinks the gradient. For a canonical link IRLS and
Newton are the same iteration written two ways: ``beta = H^{-1}(H coef - grad f)``.

**Stopping.** With ``g = max |grad f|`` and ``s = max(1, |f|)``, a fit has *converged* when ``g <=
tol * s`` and, for Newton/IRLS, the last step moved no coefficient by more than ``1e-3 (1 + max
|coef|)``. If the gradient is that small but Newton steps stay large for 3 iterations in a row, the
minimiser is at infinity (the maximum-likelihood estimate does not exist): *separation* (a
separating hyperplane for Bernoulli/Binomial/Categorical, all-zero counts on a half-space for
Poisson). The fit stops there with finite coefficients. If a step no longer decreases the
objective (rounding), the fit stops and counts as converged when ``g <= max(tol, sqrt(eps)) * s``.
"""

import enum
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from ._objective import GLMObjective, packed_kron_gram, unpack_gram

_ARMIJO = 1e-4
_MAX_HALVINGS = 60
_STEP_RTOL = 1e-3
_DIVERGING_STEPS = 3


class ResultCode(enum.IntEnum):
    """Why a fit stopped. ``ResultCode(solution.result).message`` says it in words."""

    successful = 0
    max_iter_reached = 1
    nonfinite = 2
    separation = 3
    singular_hessian = 4
    stalled = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    ResultCode.successful: "converged: the scaled gradient norm is below `tol`",
    ResultCode.max_iter_reached: "`max_iter` iterations reached before convergence; increase "
    "`max_iter` or `tol`, or use method='newton'",
    ResultCode.nonfinite: "the objective or its gradient is not finite (at the start: the linear "
    "predictor is outside the family's natural parameter space, e.g. Gamma needs eta < 0); the "
    "last finite coefficients are returned",
    ResultCode.separation: "the data are (quasi-)separated: the maximum-likelihood estimate does "
    "not exist and the coefficients diverge (fitted means numerically at the boundary); the "
    "returned coefficients are finite but their size is arbitrary. Consider `l2` > 0",
    ResultCode.singular_hessian: "converged, but the Hessian is singular (collinear columns of "
    "X?): the coefficients are the minimum-norm solution and are not unique",
    ResultCode.stalled: "the line search could not decrease the objective before the gradient "
    "reached `tol` (rounding limits the attainable accuracy in this dtype); consider a larger "
    "`tol`",
}
_RUNNING = -1


class Solution(eqx.Module):
    """What a solver returns (a pytree; under ``jax.vmap`` every field gets a leading batch axis).

    - `coef`: the coefficients, `(p,)` or `(p, m)`.
    - `n_iter`: iterations taken.
    - `converged`: `result` is `successful` or `singular_hessian`.
    - `grad_norm`: ``max |grad f|`` at `coef` (unscaled).
    - `history`: the objective at the start and after each iteration, length ``max_iter + 1``; the
      entries after ``n_iter`` are NaN.
    - `result`: a `ResultCode` as int32.
    """

    coef: Float[Array, "p *m"]
    n_iter: Int[Array, ""]
    converged: Bool[Array, ""]
    grad_norm: Float[Array, ""]
    history: Float[Array, " max_iter+1"]
    result: Int[Array, ""]


class StepInfo(eqx.Module):
    """``stalled``: the step did not decrease the objective; ``singular``: the Hessian solve
    dropped unexpected null directions."""

    stalled: Bool[Array, ""]
    singular: Bool[Array, ""]


def _no_info() -> StepInfo:
    return StepInfo(jnp.array(False), jnp.array(False))


# ----- shared pieces -----------------------------------------------------------------------------


def solve_psd(
    H: Float[Array, "q q"], b: Float[Array, "q *r"], *, expected_nullity: int = 0
) -> tuple[Float[Array, "q *r"], Bool[Array, ""]]:
    """``H^{-1} b`` for a positive semi-definite ``H`` by Cholesky ``H = L L^T``; if ``H`` is
    numerically singular (NaN, or a pivot of the unit-diagonal ``D H D``, ``D = diag(H)^{-1/2}``,
    below ``sqrt(q eps)``), ``H^+ b`` by eigendecomposition, dropping eigenvalues below ``q eps max
    eig`` (the minimum-norm solution). Also returns whether more than ``expected_nullity``
    eigenvalues were dropped (an over-parametrised family is expected to drop some).

    The test is scale-invariant: ``D H D = (D L)(D L)^T``, so its pivots are ``d_i L_ii``, free
    from ``L``. A test on ``L_ii`` against ``max diag H`` would call ``H`` singular whenever the
    columns of ``X`` differ much in scale (raw Longley's run from 1 to 1e5)."""
    q = H.shape[0]
    eps = jnp.finfo(H.dtype).eps
    diag = jnp.diagonal(H)
    L = jnp.linalg.cholesky(H)
    pivots = jnp.diagonal(L) / jnp.sqrt(jnp.where(diag > 0, diag, 1))
    chol_ok = jnp.all(jnp.isfinite(L)) & jnp.all(diag > 0) & (jnp.min(pivots) ** 2 > q * eps)

    x = jax.scipy.linalg.cho_solve((L, True), b)

    def by_eigh():
        # Under vmap both branches run, and nothing orders the eigendecomposition after the
        # Cholesky factorisation. But jaxlib spreads a large batch of LAPACK calls over XLA's CPU
        # thread pool and blocks until it is done: two such calls at once can occupy every thread
        # and wait for each other for ever (10,000 vmapped fits hung, idle, on 2 cores). A zero
        # that XLA cannot fold (0 * [x has a NaN]; an optimization_barrier does not order the
        # CPU runtime's thunks) makes eigh's input depend on the Cholesky solve.
        after_cholesky = H + jnp.zeros((), H.dtype) * jnp.isnan(jnp.sum(x)).astype(H.dtype)
        e, V = jnp.linalg.eigh(after_cholesky)
        cutoff = q * eps * jnp.max(jnp.abs(e))
        keep = e > cutoff
        inv = jnp.where(keep, 1 / jnp.where(keep, e, 1), 0)
        inv = inv.reshape((-1,) + (1,) * (b.ndim - 1))
        return V @ (inv * (V.T @ b)), jnp.sum(~keep) > expected_nullity

    return lax.cond(chol_ok, lambda: (x, jnp.array(False)), by_eigh)


def backtrack(objective, coef, f, slope, direction, t0):
    """The largest ``t = t0 / 2^j`` (j < 60) with a finite ``f(coef + t d) <= f`` satisfying
    Armijo's condition (up to ``4 eps |f|`` of rounding), whether one was found, and ``f(coef + t
    d)``; ``t = 0``, ``accepted=False`` and ``f`` if none."""
    eps = jnp.finfo(f.dtype).eps

    def trial(t):
        fn = objective(coef + t * direction)
        armijo = fn <= f + _ARMIJO * t * slope + 4 * eps * jnp.abs(f)
        return jnp.isfinite(fn) & (fn <= f) & armijo, fn

    def cond(carry):
        t, j, ok, _ = carry
        return ~ok & (j < _MAX_HALVINGS)

    def body(carry):
        t, j, _, _ = carry
        t = 0.5 * t
        return t, j + 1, *trial(t)

    t0 = jnp.asarray(t0, f.dtype)
    t, _, ok, fn = lax.while_loop(cond, body, (t0, jnp.array(0), *trial(t0)))
    return jnp.where(ok, t, 0), ok, jnp.where(ok, fn, f)


def newton_backtrack(objective, coef, f, slope, direction):
    """`backtrack` from ``t = 1`` along a Newton direction, except that once the predicted decrease
    ``-slope`` is below the rounding of ``f`` (``4 eps |f|``) the full step is taken: the line
    search would then only see rounding noise and shrink a good step to nothing."""
    flat = -slope <= 4 * jnp.finfo(f.dtype).eps * jnp.abs(f)
    return lax.cond(
        flat,
        lambda: (jnp.ones((), f.dtype), jnp.array(True), objective(coef + direction)),
        lambda: backtrack(objective, coef, f, slope, direction, 1.0),
    )


def fill_known_null_space(family, l2, H: Float[Array, "q q"]) -> Float[Array, "q q"]:
    """``H + s P`` with ``P`` the projector onto ``H``'s known null space (``H`` itself for an
    identifiable family) and ``s`` the mean eigenvalue of ``H`` (keeps it well conditioned).

    For an over-parametrised family (``eta -> eta + c 1`` changes nothing), moving a row ``j`` of
    ``coef`` by ``c 1`` is a null direction of ``H`` whenever that row has no ridge. The gradient
    (and IRLS's right-hand side) is orthogonal to these directions, so ``(H + s P)^{-1} grad`` is
    the minimum-norm solution ``H^+ grad``, by Cholesky instead of an eigendecomposition, for any
    ``s > 0``.
    """
    if family.identifiable:
        return H
    m = family.natural_dim
    p = H.shape[0] // m
    free = jnp.all(jnp.broadcast_to(l2, (p, m)) == 0, axis=1).astype(H.dtype)
    P = jnp.kron(jnp.diag(free), jnp.full((m, m), 1 / m, H.dtype))
    return H + jnp.trace(H) / H.shape[0] * P


def check_optional_positive_int(value, name: str) -> None:
    """``ValueError`` unless ``value`` is ``None`` or a positive integer (a solver setting)."""
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}")


# ----- the solvers -------------------------------------------------------------------------------


class Newton(eqx.Module):
    """Exact Newton with backtracking: ``d = -H^{-1} grad f`` (Cholesky; eigh pseudo-inverse when
    singular). ``hessian="structured"`` assembles ``H`` from the per-row ``hessian a(eta_i)`` in
    chunks of ``chunk_size`` rows; ``hessian="full"`` is ``jax.hessian`` of the objective.

    For a scalar family the state is ``H`` at the current coefficients: after the line search the
    gradient and the Hessian at the new point come from one pass over the rows, which costs about
    what the gradient alone costs (both are bound by reading ``X``), at the price of one unused
    Hessian after the last step. A vector family's Hessian costs ``~m^2`` gradients, so it is
    computed at the start of each step instead (state ``None``)."""

    hessian: str = eqx.field(static=True, default="structured")
    chunk_size: int | None = eqx.field(static=True, default=None)
    second_order: ClassVar[bool] = True

    def __check_init__(self):
        if self.hessian not in ("structured", "full"):
            raise ValueError(f"`hessian` must be 'structured' or 'full', got {self.hessian!r}")
        check_optional_positive_int(self.chunk_size, "chunk_size")

    def _carries_hessian(self, objective) -> bool:
        return objective.family.natural_dim is None

    def init(self, objective, coef, f, grad):
        if self._carries_hessian(objective):
            return objective.hessian(coef, kind=self.hessian, chunk_size=self.chunk_size)
        return None

    def step(self, objective, coef, f, grad, H):
        if H is None:
            H = objective.hessian(coef, kind=self.hessian, chunk_size=self.chunk_size)
        H = fill_known_null_space(objective.family, objective.l2, H)
        d, singular = solve_psd(H, -grad.reshape(-1))
        d = d.reshape(coef.shape)
        t, ok, f_new = newton_backtrack(objective, coef, f, jnp.vdot(grad, d), d)
        new = coef + t * d
        if self._carries_hessian(objective):
            g_new, H_new = objective.grad_and_hessian(
                new, kind=self.hessian, chunk_size=self.chunk_size
            )
        else:
            g_new, H_new = jax.grad(objective)(new), None
        return new, f_new, g_new, H_new, StepInfo(~(ok & (f_new < f)), singular)


class IRLS(eqx.Module):
    r"""Iteratively reweighted least squares: with working weights ``W_i = w_i hessian a(eta_i)``
    and working response ``z_i = eta_i - offset_i + hessian a(eta_i)^+ (T(y_i) - grad a(eta_i))``,

    $$\beta = \Big(\tfrac1n \sum_i x_i x_i^T \otimes W_i + \mathrm{diag}(l2)\Big)^{-1}
        \tfrac1n \sum_i x_i \otimes W_i z_i ,$$

    then ``coef + t (beta - coef)`` with the same line search as Newton. Vector families
    (multinomial) use the ``m x m`` blocks ``W_i``; rows whose curvature vanished (saturated means)
    drop out of the working response as in R's ``glm.fit``."""

    chunk_size: int | None = eqx.field(static=True, default=None)
    second_order: ClassVar[bool] = True

    def init(self, objective, coef, f, grad):
        return None

    def step(self, objective, coef, f, grad, state):
        n = objective.X.shape[0]
        mean = jax.vmap(jax.grad(objective.family._log_partition))

        def block(X, t, w, offset):
            eta = X @ coef + offset
            curv = objective.curvature(eta)
            resid = t - mean(eta)
            if curv.ndim == 1:
                z = eta - offset + resid / jnp.where(curv > 0, curv, 1)
                wz = w * curv * z
            else:
                z = (
                    eta
                    - offset
                    + jnp.einsum("cij,cj->ci", jnp.linalg.pinv(curv, hermitian=True), resid)
                )
                wz = w[:, None] * jnp.einsum("cij,cj->ci", curv, z)
            return packed_kron_gram(X, w, curv), X.T @ wz

        packed, rhs = objective.chunked_sum(block, chunk_size=self.chunk_size)
        H = unpack_gram(packed, objective.family.natural_dim) / n
        H = H + jnp.diag(objective.ridge_diagonal())
        H = fill_known_null_space(objective.family, objective.l2, H)
        beta, singular = solve_psd(H, rhs.reshape(-1) / n)
        d = beta.reshape(coef.shape) - coef
        t, ok, f_new = newton_backtrack(objective, coef, f, jnp.vdot(grad, d), d)
        new = coef + t * d
        g_new = jax.grad(objective)(new)
        return new, f_new, g_new, state, StepInfo(~(ok & (f_new < f)), singular)


class GradientDescent(eqx.Module):
    r"""Gradient descent ``coef - t grad f`` with backtracking.

    The first trial step is ``1/L0`` with the Lipschitz bound at the start
    ``L0 = (1/n) sum_i w_i tr(hessian a(eta_i)) |x_i|^2 + max l2`` (an upper bound on the largest
    eigenvalue of the Hessian there). Families with unbounded variance (Poisson, Gamma) have no
    global bound, so each iteration tries twice the previous step and halves it until Armijo's
    condition holds."""

    second_order: ClassVar[bool] = False

    def init(self, objective, coef, f, grad):
        n = objective.X.shape[0]

        def block(X, _t, w, offset):
            curv = objective.curvature(X @ coef + offset)
            tr = curv if curv.ndim == 1 else jnp.trace(curv, axis1=1, axis2=2)
            return jnp.sum(w * tr * jnp.sum(X**2, axis=1))

        lipschitz = objective.chunked_sum(block) / n + jnp.max(objective.l2)
        tiny = jnp.finfo(coef.dtype).tiny
        return 1 / jnp.maximum(lipschitz, tiny) / 2  # doubled before the first trial

    def step(self, objective, coef, f, grad, t_prev):
        # unlike a Newton step, a gradient step near the optimum may lower f by less than its
        # rounding while still moving towards it: only a rejected step counts as a stall
        t, ok, _ = backtrack(objective, coef, f, -jnp.vdot(grad, grad), -grad, 2 * t_prev)
        new = coef - t * grad
        f_new, g_new = objective.value_and_grad(new)
        return new, f_new, g_new, jnp.where(ok, t, t_prev), StepInfo(~ok, jnp.array(False))


class OptaxSolver(eqx.Module):
    """Any ``optax.GradientTransformation``, one update per iteration. Transformations that take
    extra arguments (``optax.lbfgs``'s line search) get ``value``, ``grad`` and ``value_fn``. The
    objective can increase between iterations (e.g. Adam); `history` shows it."""

    optimizer: optax.GradientTransformation = eqx.field(static=True)
    second_order: ClassVar[bool] = False

    def init(self, objective, coef, f, grad):
        return self.optimizer.init(coef)

    def step(self, objective, coef, f, grad, state):
        if isinstance(self.optimizer, optax.GradientTransformationExtraArgs):
            updates, state = self.optimizer.update(
                grad, state, coef, value=f, grad=grad, value_fn=objective
            )
        else:
            updates, state = self.optimizer.update(grad, state, coef)
        new = optax.apply_updates(coef, updates)
        f_new, g_new = objective.value_and_grad(new)
        return new, f_new, g_new, state, _no_info()


_LBFGS = OptaxSolver(optax.lbfgs())


def make_solver(method, *, hessian: str = "structured", chunk_size: int | None = None):
    """The solver for `fit_glm`'s ``method`` argument (a name, a solver object, or an optax
    transformation)."""
    from ._newton_cg import NewtonCG  # it imports this module's line search

    if isinstance(method, optax.GradientTransformation):
        return OptaxSolver(method)
    if isinstance(method, Newton | NewtonCG | IRLS | GradientDescent | OptaxSolver):
        return method
    if method == "newton":
        return Newton(hessian=hessian, chunk_size=chunk_size)
    if method == "newton-cg":
        return NewtonCG()
    if method == "irls":
        return IRLS(chunk_size=chunk_size)
    if method == "gd":
        return GradientDescent()
    if method == "lbfgs":
        return _LBFGS
    raise ValueError(
        "`method` must be 'newton', 'newton-cg', 'irls', 'gd', 'lbfgs' or an "
        f"optax.GradientTransformation, got {method!r}"
    )


# ----- the start and the loop --------------------------------------------------------------------


def start_coef(objective: GLMObjective, eta0: Array | None = None) -> Float[Array, "p *m"]:
    """R's intercept-only start, made generic: the weighted least-squares fit on ``X`` of
    ``eta0 - offset``, ``eta0 = link(mean T(y))`` (with an intercept column and no offset: that
    intercept and zero slopes, set directly without the pass over the rows that a least-squares fit
    costs). Zero instead where that is not finite (``X`` not of full column rank) or has a
    larger objective. One ``link``
    evaluation, not one per row: the per-row Newton solves of a vector family's link would cost
    more than the fit. `fit_glm` passes ``eta0``, computed by a separately compiled ``link`` that
    depends on the family alone, so the link's Newton loop is compiled once per family, not once
    per data shape and method."""
    if eta0 is None:
        eta0 = objective.family.link(mean_statistic(objective))

    zero = jnp.zeros(objective.coef_shape, objective.X.dtype)
    first = objective.X[0]
    constant = jnp.all(objective.X == first, axis=0) & (first != 0)
    j = jnp.argmax(constant)

    def intercept_only():
        return zero.at[j].set(eta0 / first[j])

    def least_squares():
        return least_squares_start(objective.chunked_sum(start_sums), eta0)

    shortcut = jnp.any(constant) & jnp.all(objective.offset == 0)
    ls = lax.cond(shortcut, intercept_only, least_squares)
    f_ls, f_zero = objective(ls), objective(zero)
    use_ls = jnp.isfinite(f_ls) & ~(f_ls > f_zero)
    return jnp.where(use_ls, ls, zero)


class StartSums(eqx.Module):
    """Sums over rows for the least-squares start: ``X^T W X``, ``X^T w``, ``X^T (w offset)``,
    ``sum w T(y)``, ``sum w`` (they add up over chunks of rows, also streamed ones)."""

    gram: Float[Array, "p p"]
    x_weight: Float[Array, " p"]
    x_offset: Float[Array, "p *m"]
    t_sum: Float[Array, "*m"]
    weight_sum: Float[Array, ""]


def start_sums(X, t, w, offset) -> StartSums:
    """`StartSums` of one chunk of rows (a `GLMObjective.chunked_sum` block)."""
    wb = w if t.ndim == 1 else w[:, None]
    gram = (X * w[:, None]).T @ X
    return StartSums(gram, X.T @ w, X.T @ (wb * offset), jnp.sum(wb * t, axis=0), jnp.sum(w))


def least_squares_start(sums: StartSums, eta0) -> Float[Array, "p *m"]:
    """The weighted least-squares fit of ``eta0 - offset`` on ``X`` from `StartSums`; NaN when
    ``X^T W X`` is singular. Plain Cholesky: a second `solve_psd` would compile a second
    eigendecomposition into every solver loop."""
    rhs = jnp.multiply.outer(sums.x_weight, eta0) - sums.x_offset
    return jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(sums.gram), True), rhs)


def mean_statistic(objective: GLMObjective) -> Float[Array, "*m"]:
    """The weighted mean of ``T(y)``: the intercept-only model's fitted mean (no offset)."""
    w, t = objective.weights, objective.t
    wb = w if t.ndim == 1 else w[:, None]
    return jnp.sum(wb * t, axis=0) / jnp.sum(w)


class _LoopState(eqx.Module):
    k: Int[Array, ""]
    coef: Array
    f: Array
    grad: Array
    solver_state: object
    history: Array
    n_diverging: Int[Array, ""]
    result: Int[Array, ""]


def minimise(
    objective: GLMObjective, solver, *, max_iter: int, tol, eta0: Array | None = None
) -> Solution:
    """Minimise ``objective`` with ``solver`` in one ``lax.while_loop`` from `start_coef` (the
    stopping rules are in the module docstring)."""
    coef0 = start_coef(objective, eta0)
    dtype = coef0.dtype
    tol = jnp.asarray(tol, dtype)
    eps = jnp.finfo(dtype).eps
    f0, g0 = objective.value_and_grad(coef0)
    history = jnp.full((max_iter + 1,), jnp.nan, dtype).at[0].set(f0)

    def classify(k, f, grad, step, singular, stalled, n_div):
        gmax = jnp.max(jnp.abs(grad))
        scale = jnp.maximum(1, jnp.abs(f))
        grad_small = gmax <= tol * scale
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(grad))
        success = jnp.where(singular, ResultCode.singular_hessian, ResultCode.successful)
        precise = gmax <= jnp.maximum(tol, jnp.sqrt(eps)) * scale
        result = jnp.select(
            [
                ~finite,
                grad_small & step,
                n_div >= _DIVERGING_STEPS,
                stalled & precise,
                stalled,
                k >= max_iter,
            ],
            [
                ResultCode.nonfinite,
                success,
                ResultCode.separation,
                success,
                ResultCode.stalled,
                ResultCode.max_iter_reached,
            ],
            _RUNNING,
        )
        return result.astype(jnp.int32)

    first_order = not solver.second_order
    init = _LoopState(
        k=jnp.array(0, jnp.int32),
        coef=coef0,
        f=f0,
        grad=g0,
        solver_state=solver.init(objective, coef0, f0, g0),
        history=history,
        n_diverging=jnp.array(0, jnp.int32),
        # Newton/IRLS take at least one step: convergence also asks for a small last step
        result=classify(0, f0, g0, jnp.array(first_order), jnp.array(False), jnp.array(False), 0),
    )

    def cond(s):
        return s.result == _RUNNING

    def body(s):
        coef, f, grad, sstate, info = solver.step(objective, s.coef, s.f, s.grad, s.solver_state)
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(grad)) & jnp.all(jnp.isfinite(coef))
        step = jnp.max(jnp.abs(coef - s.coef))
        step_small = first_order | (step <= _STEP_RTOL * (1 + jnp.max(jnp.abs(coef))))
        gmax = jnp.max(jnp.abs(grad))
        grad_small = gmax <= tol * jnp.maximum(1, jnp.abs(f))
        n_div = jnp.where(grad_small & ~step_small, s.n_diverging + 1, 0)
        k = s.k + 1
        result = classify(k, f, grad, step_small, info.singular, info.stalled, n_div)
        keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        return _LoopState(
            k=k,
            coef=keep(coef, s.coef),
            f=keep(f, s.f),
            grad=keep(grad, s.grad),
            solver_state=sstate,
            history=s.history.at[k].set(f),
            n_diverging=n_div,
            result=result,
        )

    final = lax.while_loop(cond, body, init)
    converged = (final.result == ResultCode.successful) | (
        final.result == ResultCode.singular_hessian
    )
    return Solution(
        coef=final.coef,
        n_iter=final.k,
        converged=converged,
        grad_norm=jnp.max(jnp.abs(final.grad)),
        history=final.history,
        result=final.result,
    )
