r"""A solver is a *descent* (the direction rule) and a *search* (the step length along it), with the
iteration state in an explicit pytree: ``init`` -> ``step`` -> ... until ``result`` is set.

**One evaluation per step.** Each `Solver.step` consumes one `Evaluation` — the objective, the
magnitude of its terms, the gradient and, for second-order descents, the Hessian — at the point
`Solver.trial` asked for, and decides: accept the trial (then compute the next direction there),
halve the step, or (when extrapolating) stop lengthening it. The loop that feeds it evaluations
lives in `glmjax._iterate`: a ``lax.while_loop`` whose body evaluates the objective in the graph,
or a Python loop whose evaluations are passes over chunks of rows read from disk. Both run this
same ``step``.

**The search** (`Backtracking`, the one line search): the first trial of a line is ``t = 1`` (or
``grow`` times the last accepted ``t``: gradient descent), then ``t`` halves until the trial's
objective is finite, not larger than the base's and satisfies Armijo's condition
``f(x + t d) <= f(x) + c t <grad f(x), d>``, each up to the rounding of ``f``: ``8 eps`` times the
magnitude of its terms (`Evaluation.f_scale`, not ``|f|``: a difference of large terms is known
only to their rounding). With ``full_step_at_rounding`` (Newton-type descents) a full step whose
predicted decrease ``-<grad f, d>`` is below that rounding is taken as it is: the objective can no
longer tell better from worse there. With ``extrapolate``, a full step that was accepted is
doubled (at most ``max_stretch``-fold) while the objective keeps decreasing and the descent's
direction at the doubled point still points along ``d`` (far out on an exponential, Newton's
unit steps would take hundreds of iterations). `NoSearch` accepts every finite trial at ``t = 1``
(optax transformations choose their own step).

**Stopping**, at each new line, with the standardised gradient ``g_j / s_j`` (``s_j`` the root
mean square of column ``j`` of ``X`` over the weighted rows, so that rescaling a column changes
nothing) and the standardised step ``|coef_j - coef_j'| s_j``:

- *converged* when ``max |g / s| <= tol * max(1, |f|)`` and, for second-order descents, the last
  line moved no standardised coefficient by more than ``1e-3 (1 + max |coef s|)``
  (``singular_hessian`` instead if the Newton system dropped unexpected directions);
- *separation* when the gradient is that small but the steps stay large for 3 lines in a row: the
  minimiser is at infinity;
- at the rounding floor — a Newton-type step whose predicted decrease (the Newton decrement) is
  below the objective's rounding, taken in full: *converged* (the optimum to the accuracy the
  dtype allows), unless the Newton system found no curvature along the gradient
  (*zero_curvature*); the accepted step changed no coefficient, or the search halved 60 times
  without an acceptable point: *converged* if ``max |g / s| <= max(tol, sqrt(eps)) max(1,
  |f|)``, else *zero_curvature* or *stalled*;
- *max_iter_reached* after ``max_iter`` accepted steps; *nonfinite* when the start is not finite.
"""

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._solution import RUNNING, ResultCode

_STEP_RTOL = 1e-3
_DIVERGING_LINES = 3
_ROUNDING = 8.0


class Needs(NamedTuple):
    """What an evaluation must compute besides the objective and its gradient (static).

    - `hessian`: ``None``; ``"observed"`` or ``"expected"`` (the structured GLM Hessian with
      that information); ``"full"`` (``jax.hessian`` of the whole objective, the reference).
    - `hess_diag`: the Hessian's diagonal: ``True`` at every evaluation, ``"start"`` at the
      start's only (zeros after: gradient descent's first step length, without the per-row
      curvature at every iteration), ``False`` never.
    """

    hessian: str | None = None
    hess_diag: bool | str = False


class Evaluation(eqx.Module):
    """The objective and its derivatives at one point (a pytree; sums over rows add up).

    - `f`: the objective.
    - `f_scale`: the magnitude of its terms (``f`` is known to about ``eps * f_scale``).
    - `grad`: its gradient, shaped like the coefficients.
    - `hessian`: ``(q, q)`` over the row-major flattened coefficients, or ``None``.
    - `hess_diag`: the Hessian's diagonal shaped like the coefficients, or ``None``.
    """

    f: Float[Array, ""]
    f_scale: Float[Array, ""]
    grad: Float[Array, "p *m"]
    hessian: Float[Array, "q q"] | None = None
    hess_diag: Float[Array, "p *m"] | None = None


class DescentInfo(eqx.Module):
    """Diagnostics of one direction: the Newton system dropped unexpected (near-)null directions
    (`singular`), and the gradient lies mostly in directions without curvature
    (`zero_curvature`)."""

    singular: Bool[Array, ""]
    zero_curvature: Bool[Array, ""]

    @classmethod
    def none(cls) -> "DescentInfo":
        return cls(jnp.array(False), jnp.array(False))


class AbstractDescent(eqx.Module):
    """The direction rule of a `Solver`. A descent implements

    - `needs()`: the `Needs` of each evaluation;
    - `init(problem, coef, evaluation)`: its state at the start (a pytree: L-BFGS memory, optax
      state, ...);
    - `direction(problem, coef, evaluation, state)`: ``(d, state, DescentInfo)`` at an accepted
      point, ``d`` shaped like ``coef``; `Solver` then searches along ``d``.

    ``problem`` is the objective: `fill_null_space(H)` adds its known null directions to a
    Hessian, `exact_hessian(information)` whether the Hessian it gives for an information is the
    objective's exact one (the expected information is, for a canonical link); in memory (not
    when streaming) it also has `hvp(coef, v)` and `value(coef)`.
    Set the class variable `second_order` to ``True`` when ``d`` is a Newton-type step (then
    convergence also asks for a small step, and separation can be detected), and let
    `quadratic` say whether the steps converge quadratically (exact Newton).
    """

    second_order: ClassVar[bool] = False
    needs_problem: ClassVar[bool] = False  # True: `direction` evaluates the objective itself

    def needs(self) -> Needs:
        return Needs()

    def quadratic(self, problem) -> bool:
        """Whether a full step whose predicted decrease is below the objective's rounding leaves
        the optimum to rounding too (a static Python bool). True for exact Newton, whose next
        step is the square of this one's; false for Fisher scoring with a non-canonical link,
        whose steps shrink only by a constant factor: it goes on until its gradient is small."""
        return False

    def init(self, problem, coef: Array, evaluation: Evaluation) -> PyTree:
        return None

    def direction(self, problem, coef, evaluation, state) -> tuple[Array, PyTree, DescentInfo]:
        raise NotImplementedError


class Backtracking(eqx.Module):
    """The line search shared by every descent (see the module docstring).

    - `armijo`: Armijo's constant ``c``.
    - `max_halvings`: halvings before the search gives up (the fit then stops).
    - `grow`: ``None`` (each line starts at ``t = 1``) or a factor: each line starts at ``grow``
      times the last accepted ``t``.
    - `full_step_at_rounding`: take a full step whose predicted decrease is at rounding level.
    - `extrapolate`, `max_stretch`: double an accepted full step while that keeps decreasing the
      objective along the same direction, at most ``max_stretch``-fold.
    """

    armijo: float = eqx.field(static=True, default=1e-4)
    max_halvings: int = eqx.field(static=True, default=60)
    grow: float | None = eqx.field(static=True, default=None)
    full_step_at_rounding: bool = eqx.field(static=True, default=False)
    extrapolate: bool = eqx.field(static=True, default=False)
    max_stretch: float = eqx.field(static=True, default=1024.0)

    def first_trial(self, t_last: Float[Array, ""]) -> Float[Array, ""]:
        return jnp.ones_like(t_last) if self.grow is None else self.grow * t_last

    def acceptable(self, base: Evaluation, slope, t, trial: Evaluation) -> Bool[Array, ""]:
        eps = jnp.finfo(base.f.dtype).eps
        rounding = _ROUNDING * eps * jnp.maximum(base.f_scale, trial.f_scale)
        finite = jnp.isfinite(trial.f) & jnp.all(jnp.isfinite(trial.grad))
        decrease = (trial.f <= base.f + rounding) & (
            trial.f <= base.f + self.armijo * t * slope + rounding
        )
        ok = finite & decrease
        if self.full_step_at_rounding:
            flat = (t == 1) & (-slope <= _ROUNDING * eps * base.f_scale)
            ok = ok | (finite & flat)
        return ok


class NoSearch(eqx.Module):
    """Accept every finite trial at ``t = 1`` (the descent chooses its own step: optax)."""

    max_halvings: ClassVar[int] = 0
    extrapolate: ClassVar[bool] = False
    max_stretch: ClassVar[float] = 1.0

    def first_trial(self, t_last):
        return jnp.ones_like(t_last)

    def acceptable(self, base, slope, t, trial):
        return jnp.isfinite(trial.f) & jnp.all(jnp.isfinite(trial.grad))


class SolverState(eqx.Module):
    """The iteration state (a pytree).

    The current accepted point is `coef` with its `evaluation`; the current line runs from
    `base` along `direction`, and the next point evaluated is ``base + t * direction``.
    `next_*` are the direction (and descent state, info) computed at `coef`.
    """

    coef: Array
    evaluation: Evaluation
    base: Array
    base_evaluation: Evaluation
    direction: Array
    slope: Float[Array, ""]
    t: Float[Array, ""]
    t_last: Float[Array, ""]
    n_halvings: Int[Array, ""]
    extrapolating: Bool[Array, ""]
    started: Bool[Array, ""]
    descent_state: PyTree
    next_direction: Array
    next_descent_state: PyTree
    info: DescentInfo
    scale: Array
    tol: Float[Array, ""]
    n_steps: Int[Array, ""]
    n_evals: Int[Array, ""]
    n_diverging: Int[Array, ""]
    history: Float[Array, " max_iter+1"]
    result: Int[Array, ""]


class Solution(eqx.Module):
    """What a solver returns (a pytree; under ``jax.vmap`` every field gets a batch axis).

    - `coef`: the coefficients; `evaluation`: the `Evaluation` there (with the Hessian of a
      second-order dense descent: inference reuses it).
    - `n_iter`: accepted steps; `n_evals`: evaluations (passes over the rows).
    - `converged`: `result` is `successful` or `singular_hessian`.
    - `grad_norm`: ``max |grad f|`` at `coef` (unscaled).
    - `history`: the objective at the start and after each accepted step, length
      ``max_iter + 1``; entries after `n_iter` are NaN.
    - `result`: a `ResultCode` as int32.
    """

    coef: Array
    evaluation: Evaluation
    n_iter: Int[Array, ""]
    n_evals: Int[Array, ""]
    converged: Bool[Array, ""]
    grad_norm: Float[Array, ""]
    history: Float[Array, " max_iter+1"]
    result: Int[Array, ""]


def _where(pred, new, old):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def standardised_max(x: Array, scale: Array) -> Float[Array, ""]:
    return jnp.max(jnp.abs(x * scale))


class Solver(eqx.Module):
    """A descent and a search (configuration only; the state is a `SolverState`).

    `glmjax.fit_glm` accepts a `Solver` as ``method``: e.g.
    ``Solver(MyDescent(), Backtracking())`` for a direction rule of your own
    (see `AbstractDescent`).
    """

    descent: AbstractDescent
    search: Backtracking | NoSearch = Backtracking()

    @property
    def second_order(self) -> bool:
        return self.descent.second_order

    def needs(self) -> Needs:
        """What every evaluation computes."""
        return self.descent.needs()

    def trial(self, state: SolverState) -> Array:
        """The point the next `step` wants evaluated."""
        return state.base + state.t * state.direction

    # ----- classification ---------------------------------------------------------------------

    def _classify(self, state: SolverState, ev: Evaluation, info, moved, step, exhausted,
                  settled):  # fmt: skip
        """The result code after a line ended (``RUNNING`` to go on) and the new divergence
        count. ``exhausted``: the search gave up; ``settled``: a Newton-type step was taken whose
        predicted decrease (the Newton decrement) is below the objective's rounding: the optimum
        to the attainable accuracy."""
        eps = jnp.finfo(ev.f.dtype).eps
        size = jnp.maximum(1.0, jnp.abs(ev.f))
        gmax = standardised_max(ev.grad, 1 / state.scale)
        grad_small = gmax <= state.tol * size
        precise = gmax <= jnp.maximum(state.tol, jnp.sqrt(eps)) * size
        if self.second_order:
            limit = _STEP_RTOL * (1 + standardised_max(state.coef, state.scale))
            step_small = step <= limit
        else:
            step_small = jnp.array(True)
        n_div = jnp.where(grad_small & ~step_small, state.n_diverging + 1, 0)
        finite = jnp.isfinite(ev.f) & jnp.all(jnp.isfinite(ev.grad))
        floor = exhausted | settled | ~moved
        at_floor = jnp.select(
            [info.zero_curvature & ~precise, precise | settled],
            [ResultCode.zero_curvature, ResultCode.successful],
            ResultCode.stalled,
        )
        success = jnp.where(info.singular, ResultCode.singular_hessian, ResultCode.successful)
        result = jnp.select(
            [
                ~finite,
                grad_small & step_small,
                n_div >= _DIVERGING_LINES,
                floor,
                state.n_steps >= state.history.shape[0] - 1,
            ],
            [
                ResultCode.nonfinite,
                success,
                ResultCode.separation,
                at_floor,
                ResultCode.max_iter_reached,
            ],  # fmt: skip
            RUNNING,
        )
        return result.astype(jnp.int32), n_div

    # ----- init / step ------------------------------------------------------------------------

    def init(self, problem, coef: Array, *, max_iter: int, tol, scale) -> SolverState:
        """The state before the first evaluation, which is at ``coef`` (the start): the first
        `step` accepts it (if finite), initialises the descent there and takes its direction.
        ``scale`` (shaped like ``coef``) standardises gradients and steps. Nothing is evaluated
        here, so the loop's body holds the only compiled copy of the evaluation."""
        dtype = coef.dtype
        needs = self.needs()
        q = coef.size
        blank = Evaluation(
            f=jnp.zeros((), dtype),
            f_scale=jnp.zeros((), dtype),
            grad=jnp.zeros_like(coef),
            hessian=jnp.zeros((q, q), dtype) if needs.hessian else None,
            hess_diag=jnp.zeros_like(coef) if needs.hess_diag else None,
        )
        shapes = jax.eval_shape(lambda: self.descent.init(problem, coef, blank))
        dstate = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
        zero, one = jnp.zeros_like(coef), jnp.ones((), dtype)
        return SolverState(
            coef=coef,
            evaluation=blank,
            base=coef,
            base_evaluation=blank,
            direction=zero,
            slope=jnp.zeros((), dtype),
            t=one,
            t_last=one,
            n_halvings=jnp.array(0, jnp.int32),
            extrapolating=jnp.array(False),
            started=jnp.array(False),
            descent_state=dstate,
            next_direction=zero,
            next_descent_state=dstate,
            info=DescentInfo.none(),
            scale=jnp.broadcast_to(jnp.asarray(scale, dtype), coef.shape),
            tol=jnp.asarray(tol, dtype),
            n_steps=jnp.array(0, jnp.int32),
            n_evals=jnp.array(0, jnp.int32),
            n_diverging=jnp.array(0, jnp.int32),
            history=jnp.full((max_iter + 1,), jnp.nan, dtype),
            result=jnp.array(RUNNING, jnp.int32),
        )

    def _judge(self, problem, state: SolverState, ev: Evaluation):
        """Whether the trial is accepted, and the descent's direction there (computed only for a
        candidate: an acceptable point, or one that may lengthen the line)."""
        trial = self.trial(state)
        eps = jnp.finfo(ev.f.dtype).eps
        finite = jnp.isfinite(ev.f) & jnp.all(jnp.isfinite(ev.grad))
        first, ex = ~state.started, state.extrapolating
        rounding = _ROUNDING * eps * jnp.maximum(state.evaluation.f_scale, ev.f_scale)
        lower = finite & (ev.f <= state.evaluation.f + rounding)
        acceptable = self.search.acceptable(state.base_evaluation, state.slope, state.t, ev)
        candidate = jnp.select([first, ex], [finite, lower], acceptable)
        # the first evaluation (the start) initialises the descent
        dstate_in = lax.cond(
            first, lambda: self.descent.init(problem, trial, ev), lambda: state.descent_state
        )
        direction = lax.cond(
            candidate,
            lambda: self.descent.direction(problem, trial, ev, dstate_in),
            lambda: (state.next_direction, state.next_descent_state, state.info),
        )
        # lengthen only while the direction there is well defined and would move no coordinate
        # that the line moves back (an overshoot in a coordinate that had already settled)
        d, d_new, info_new = state.direction, direction[0], direction[2]
        moving = jnp.abs(d) > 1e-8 * jnp.max(jnp.abs(d))
        agrees = jnp.all((d_new * d > 0) | ~moving) & ~info_new.singular
        accepted = jnp.where(ex, candidate & agrees, candidate)
        moved = jnp.any(jnp.abs(trial - state.coef) > 2 * eps * jnp.abs(state.coef)) | first
        return trial, finite, accepted, moved, direction

    def _line(self, state: SolverState, accepted, moved, n_steps):
        """What happens to the line: lengthen it, halve the step, or start a new one."""
        search, first, ex = self.search, ~state.started, state.extrapolating
        fresh = (state.n_halvings == 0) & ~ex & ~first
        room = (2 * state.t <= search.max_stretch) & (n_steps < state.history.shape[0] - 1)
        lengthen = accepted & room & ((fresh & search.extrapolate & moved) | ex)
        halve = ~accepted & ~ex & ~first
        exhausted = halve & (state.n_halvings >= search.max_halvings)
        new_line = (accepted & ~lengthen) | (~accepted & ex) | exhausted | first
        t_line = jnp.where(
            first, 1.0, search.first_trial(jnp.where(accepted, state.t, state.t_last))
        )
        t_next = jnp.select([new_line, lengthen], [t_line, 2 * state.t], 0.5 * state.t)
        return lengthen, halve, exhausted, new_line, t_next.astype(state.t.dtype)

    def step(self, problem, state: SolverState, ev: Evaluation) -> SolverState:
        """Consume the `Evaluation` ``ev`` at `trial` ``(state)``: accept it or not, move the
        line, and classify the iteration when a line ends."""
        first, ex = ~state.started, state.extrapolating
        trial, finite, accepted, moved, (d_new, dstate_new, info_new) = self._judge(
            problem, state, ev
        )
        # an accepted point becomes the current one
        coef = jnp.where(accepted, trial, state.coef)
        evaluation = _where(accepted, ev, state.evaluation)
        n_steps = state.n_steps + (accepted & moved & ~first)
        history = jnp.where(accepted & moved, state.history.at[n_steps].set(ev.f), state.history)
        next_direction = jnp.where(accepted, d_new, state.next_direction)
        next_dstate = _where(accepted, dstate_new, state.next_descent_state)
        info = _where(accepted, info_new, state.info)
        lengthen, halve, exhausted, new_line, t_next = self._line(state, accepted, moved, n_steps)

        # a second-order method takes at least one step: convergence also asks for a small step
        step = jnp.where(first, jnp.inf if self.second_order else 0.0,
                         standardised_max(coef - state.base, state.scale))  # fmt: skip
        # a Newton-type step whose predicted decrease is below the objective's rounding, taken in
        # full: the iteration has reached its rounding floor (the step itself is kept)
        eps = jnp.finfo(ev.f.dtype).eps
        flat = -state.slope <= _ROUNDING * eps * state.base_evaluation.f_scale
        full_steps = getattr(self.search, "full_step_at_rounding", False)
        settled = accepted & ~ex & ~first & flat & full_steps & self.descent.quadratic(problem)
        result, n_div = self._classify(
            eqx.tree_at(lambda s: (s.coef, s.n_steps), state, (coef, n_steps)),
            evaluation, info, moved | ex, step, exhausted, settled,
        )  # fmt: skip
        result = jnp.select(
            # no start (a non-finite first evaluation), or a non-finite optax trial (no
            # halving: the last finite point stays)
            [first & ~finite, exhausted & ~finite & (self.search.max_halvings == 0), new_line],
            [ResultCode.nonfinite, ResultCode.nonfinite, result],
            RUNNING,
        )
        return SolverState(
            coef=coef,
            evaluation=evaluation,
            base=jnp.where(new_line, coef, state.base),
            base_evaluation=_where(new_line, evaluation, state.base_evaluation),
            direction=jnp.where(new_line, next_direction, state.direction),
            slope=jnp.where(new_line, jnp.vdot(evaluation.grad, next_direction), state.slope),
            t=t_next,
            t_last=jnp.where(accepted & ~first, state.t, state.t_last),
            n_halvings=jnp.where(halve, state.n_halvings + 1, 0).astype(jnp.int32),
            extrapolating=lengthen,
            started=jnp.array(True),
            descent_state=_where(new_line, next_dstate, state.descent_state),
            next_direction=next_direction,
            next_descent_state=next_dstate,
            info=info,
            scale=state.scale,
            tol=state.tol,
            n_steps=n_steps.astype(jnp.int32),
            n_evals=state.n_evals + 1,
            n_diverging=jnp.where(new_line & ~first, n_div, state.n_diverging).astype(jnp.int32),
            history=history,
            result=result.astype(jnp.int32),
        )

    def postprocess(self, state: SolverState) -> Solution:
        result = state.result
        converged = (result == ResultCode.successful) | (result == ResultCode.singular_hessian)
        return Solution(
            coef=state.coef,
            evaluation=state.evaluation,
            n_iter=state.n_steps,
            n_evals=state.n_evals,
            converged=converged,
            grad_norm=jnp.max(jnp.abs(state.evaluation.grad)),
            history=state.history,
            result=result,
        )
