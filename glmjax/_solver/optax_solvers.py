r"""Optax inside the solver loop: `LBFGSDescent` (``method="lbfgs"``: the L-BFGS direction of
``optax.scale_by_lbfgs`` with the shared backtracking search) and `OptaxDescent` (any
``optax.GradientTransformation``, one update per evaluation, no search).

L-BFGS (Nocedal & Wright, Algorithm 7.4) keeps the last ``memory_size`` differences of
coefficients and gradients and multiplies the gradient by the inverse-Hessian approximation they
define, scaled by ``s^T y / y^T y``; its first direction is the gradient capped to unit length. A
direction that does not descend (the backtracking search does not enforce the curvature condition
``s^T y > 0``) is replaced by that capped gradient.
"""

import equinox as eqx
import jax.numpy as jnp
import optax

from .._misc import check_int
from ._base import AbstractDescent, Backtracking, DescentInfo, NoSearch, Solver


class LBFGSDescent(AbstractDescent):
    """The L-BFGS direction (module docstring)."""

    memory_size: int = eqx.field(static=True, default=10)

    def __check_init__(self):
        check_int(self.memory_size, "memory_size", minimum=1)

    @property
    def _transformation(self) -> optax.GradientTransformation:
        return optax.scale_by_lbfgs(memory_size=self.memory_size)

    def init(self, problem, coef, evaluation):
        return self._transformation.init(coef)

    def direction(self, problem, coef, evaluation, state):
        g = evaluation.grad
        update, state = self._transformation.update(g, state, coef)
        d = -update.astype(coef.dtype)
        capped = -g * jnp.minimum(1.0, 1.0 / jnp.linalg.norm(g))
        descends = (jnp.vdot(g, d) < 0) & jnp.all(jnp.isfinite(d))
        return jnp.where(descends, d, capped), state, DescentInfo.none()


class OptaxDescent(AbstractDescent):
    """The update of an ``optax.GradientTransformation`` as the step (accepted as it is).
    Transformations that take extra arguments (``optax.lbfgs``'s own line search) get ``value``,
    ``grad`` and ``value_fn`` (in memory only: they evaluate the objective themselves)."""

    transformation: optax.GradientTransformation = eqx.field(static=True)

    @property
    def needs_problem(self) -> bool:
        return isinstance(self.transformation, optax.GradientTransformationExtraArgs)

    def init(self, problem, coef, evaluation):
        return self.transformation.init(coef)

    def direction(self, problem, coef, evaluation, state):
        g = evaluation.grad
        if self.needs_problem:
            update, state = self.transformation.update(
                g, state, coef, value=evaluation.f, grad=g, value_fn=problem.value
            )
        else:
            update, state = self.transformation.update(g, state, coef)
        return update.astype(coef.dtype), state, DescentInfo.none()


class LBFGS(Solver):
    """L-BFGS with the shared backtracking search (``method="lbfgs"``)."""

    def __init__(self, *, memory_size: int = 10):
        self.descent = LBFGSDescent(memory_size=memory_size)
        self.search = Backtracking()


class OptaxSolver(Solver):
    """Any ``optax.GradientTransformation`` (``method=optax.adam(1e-2)``); reuse the same object
    across fits: a new one compiles anew. The objective can increase between iterations (Adam);
    `history` shows it."""

    def __init__(self, transformation: optax.GradientTransformation):
        if not isinstance(transformation, optax.GradientTransformation):
            raise ValueError(
                f"`method` must be an optax.GradientTransformation here, got {transformation!r}"
            )
        self.descent = OptaxDescent(transformation)
        self.search = NoSearch()
