"""Solvers: a descent (direction rule) and the shared line search, run by `glmjax._iterate`."""

import optax

from ._base import AbstractDescent as AbstractDescent
from ._base import Backtracking as Backtracking
from ._base import DescentInfo as DescentInfo
from ._base import Evaluation as Evaluation
from ._base import Needs as Needs
from ._base import NoSearch as NoSearch
from ._base import Solution as Solution
from ._base import Solver as Solver
from ._base import SolverState as SolverState
from .gradient_descent import GradientDescent as GradientDescent
from .gradient_descent import SteepestDescent as SteepestDescent
from .newton import IRLS as IRLS
from .newton import Newton as Newton
from .newton import NewtonDescent as NewtonDescent
from .newton import solve_newton as solve_newton
from .newton_cg import NewtonCG as NewtonCG
from .newton_cg import NewtonCGDescent as NewtonCGDescent
from .newton_cg import truncated_cg as truncated_cg
from .optax_solvers import LBFGS as LBFGS
from .optax_solvers import LBFGSDescent as LBFGSDescent
from .optax_solvers import OptaxDescent as OptaxDescent
from .optax_solvers import OptaxSolver as OptaxSolver

METHODS = ("newton", "irls", "newton-cg", "gd", "lbfgs")


def make_solver(method, *, hessian: str = "structured") -> Solver:
    """The `Solver` for `fit_glm`'s ``method``: a name (`METHODS`), a `Solver`, or an
    ``optax.GradientTransformation``. ``hessian`` is Newton's (``"structured"`` or ``"full"``)."""
    if isinstance(method, Solver):
        return method
    if isinstance(method, optax.GradientTransformation):
        return OptaxSolver(method)
    if method == "newton":
        return Newton(hessian=hessian)
    if method == "irls":
        return IRLS()
    if method == "newton-cg":
        return NewtonCG()
    if method == "gd":
        return GradientDescent()
    if method == "lbfgs":
        return LBFGS()
    raise ValueError(
        f"`method` must be one of {', '.join(map(repr, METHODS))}, a glmjax.solvers.Solver or an "
        f"optax.GradientTransformation, got {method!r}"
    )
