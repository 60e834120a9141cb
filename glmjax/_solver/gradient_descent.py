r"""Gradient descent (``method="gd"``): ``d = -grad f / L0`` with the shared backtracking search.

``L0`` is the trace of the Hessian at the start — for a GLM
``(1/n) sum_i w_i tr(D_i) |x_i|^2 + sum l2`` with ``D_i`` the per-row curvature — an upper bound
on its largest eigenvalue there, so the first trial ``t = 1`` is a safe step. Families with
unbounded variance (Poisson, Gamma) have no global bound, so each line starts at twice the last
accepted ``t`` and halves until Armijo's condition holds.
"""

import jax.numpy as jnp

from ._base import AbstractDescent, Backtracking, DescentInfo, Needs, Solver


class SteepestDescent(AbstractDescent):
    """``d = -grad f / L0`` (module docstring); the state is ``1 / L0``."""

    def needs(self) -> Needs:
        # only the start's diagonal is used: the per-row curvature behind it (a k x k Hessian per
        # row for softmax, 3x a gradient pass) is computed there alone
        return Needs(hess_diag="start")

    def init(self, problem, coef, evaluation):
        trace = jnp.sum(evaluation.hess_diag)
        return 1 / jnp.maximum(trace, jnp.finfo(trace.dtype).tiny)

    def direction(self, problem, coef, evaluation, state):
        return -state * evaluation.grad, state, DescentInfo.none()


class GradientDescent(Solver):
    """Gradient descent with a growing backtracking search (``method="gd"``)."""

    def __init__(self):
        self.descent = SteepestDescent()
        self.search = Backtracking(grow=2.0)
