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

METHODS = ("auto", "newton", "irls", "newton-cg", "gd", "lbfgs")

# `auto_method`'s thresholds: a Hessian worth more than this many Hessian-vector products ...
_HESSIAN_IN_PRODUCTS = 40
# ... and more than this many flops (below it a fit's time is dispatch and iterations, not flops)
_HESSIAN_FLOPS = 1e8


def auto_method(n: int, p: int, m: int | None) -> str:
    r"""``method="auto"``: exact Newton or Newton-CG, whichever the cost model expects faster.

    With ``n`` rows, ``p`` columns and a natural parameter of dimension ``m`` (1 for a scalar
    family), one structured Hessian costs ``F_H = 2 n p^2 m (m + 1) / 2`` flops (the upper
    triangle of each ``m x m`` curvature, `glmjax._objective.packed_kron_gram`) and one
    Hessian-vector product ``F_v = 4 n p m`` (``X v`` and ``X^T u``), so a Hessian is worth
    ``F_H / F_v = p (m + 1) / 4`` products. Both methods take a handful of outer iterations
    (Newton-CG one or two more); truncated CG spends 5-20 products per iteration, and a product
    is a pass over ``X`` that runs at the memory's rate rather than the matmul's, so it costs
    more than its flops say. Newton-CG is chosen when a Hessian is worth more than 40 products
    *and* costs over ``1e8`` flops; else exact Newton (small problems: fewer iterations win).
    Measured on the 2-core benchmark machine (`benchmarks/profile.py`): logistic n=1e6, p=21
    (10.5 products) Newton 0.30 s vs Newton-CG 0.61 s; softmax n=1e5, p=33, m=8 (74 products)
    Newton 1.54 s vs Newton-CG 0.50 s.
    """
    m = m or 1
    hessian_flops = n * p * p * m * (m + 1)
    if p * (m + 1) / 4 > _HESSIAN_IN_PRODUCTS and hessian_flops > _HESSIAN_FLOPS:
        return "newton-cg"
    return "newton"


def make_solver(method, *, hessian: str = "structured", shape=None) -> Solver:
    """The `Solver` for `fit_glm`'s ``method``: a name (`METHODS`), a `Solver`, or an
    ``optax.GradientTransformation``. ``hessian`` is Newton's (``"structured"`` or ``"full"``);
    ``shape`` ``(n, p, m)`` is what ``"auto"`` decides from (`auto_method`)."""
    if isinstance(method, Solver):
        return method
    if isinstance(method, optax.GradientTransformation):
        return OptaxSolver(method)
    if method == "auto":
        if shape is None:
            raise ValueError('`method="auto"` is offered by fit_glm only; choose a method')
        method = "newton" if hessian == "full" else auto_method(*shape)
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
