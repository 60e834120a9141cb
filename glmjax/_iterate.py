"""The one loop: a `glmjax.solvers.Solver` run to its result inside ``lax.while_loop``.

Each pass of the loop evaluates the objective at the point the solver asks for
(`Solver.trial`) and hands the `Evaluation` to `Solver.step`. The whole fit is then one
jit-compilable call, and ``jax.vmap`` over many problems batches it (finished members keep their
state while the others run). Streaming fits (`glmjax._streaming`) run the same ``step`` from a
Python loop whose evaluations are passes over chunks of rows.
"""

from jax import lax
from jaxtyping import Array

from ._solution import RUNNING
from ._solver import Solution, Solver


def minimise(problem, solver: Solver, coef0: Array, *, max_iter: int, tol, scale) -> Solution:
    """Minimise ``problem`` (an objective with ``evaluate(coef, needs, start)``; ``start``:
    whether this is the start's evaluation) from ``coef0``.

    - `max_iter`: most accepted steps (static: the length of `Solution.history`).
    - `tol`: the convergence tolerance (`glmjax._solver._base`); may be traced.
    - `scale`: the standardising scale of each coefficient (shaped like ``coef0``).
    """
    state = solver.init(problem, coef0, max_iter=max_iter, tol=tol, scale=scale)
    needs = solver.needs()

    def body(state):
        ev = problem.evaluate(solver.trial(state), needs, start=~state.started)
        return solver.step(problem, state, ev)

    final = lax.while_loop(lambda state: state.result == RUNNING, body, state)
    return solver.postprocess(final)
