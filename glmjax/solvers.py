"""Solvers for `glmjax.fit_glm` (``method=``): configuration objects, each a *descent* (the
direction rule) and the shared backtracking line search, run by one loop.

| name | class | direction |
|---|---|---|
| ``"auto"`` (`fit_glm`'s default) | `Newton` or `NewtonCG` | by `auto_method`'s cost model |
| ``"newton"`` | `Newton` | ``-H^{-1} grad f``, observed information |
| ``"irls"`` | `IRLS` | the same with the expected information (Fisher scoring) |
| ``"newton-cg"`` | `NewtonCG` | truncated CG on Hessian-vector products |
| ``"gd"`` | `GradientDescent` | ``-grad f / L0``, a growing step |
| ``"lbfgs"`` | `LBFGS` | the L-BFGS two-loop recursion (``optax.scale_by_lbfgs``) |
| an ``optax.GradientTransformation`` | `OptaxSolver` | its update, no line search |

**Writing a solver.** Subclass `AbstractDescent` (``needs``, ``init``, ``direction``) and pass
``Solver(MyDescent(), Backtracking())`` as ``method``; a descent sees the `Evaluation` (objective,
gradient, Hessian if it asks for one) at each accepted point:

```python
import jax.numpy as jnp, glmjax as gj
from glmjax.solvers import AbstractDescent, Backtracking, DescentInfo, Needs, Solver

class DiagonalNewton(AbstractDescent):
    '''Newton's step with the Hessian's diagonal only.'''
    def needs(self):
        return Needs(hess_diag=True)
    def direction(self, problem, coef, evaluation, state):
        return -evaluation.grad / evaluation.hess_diag, state, DescentInfo.none()

solver = Solver(DiagonalNewton(), Backtracking())   # gj.fit_glm(X, y, family, method=solver)
```
"""

from ._solver import IRLS as IRLS
from ._solver import LBFGS as LBFGS
from ._solver import METHODS as METHODS
from ._solver import AbstractDescent as AbstractDescent
from ._solver import Backtracking as Backtracking
from ._solver import DescentInfo as DescentInfo
from ._solver import Evaluation as Evaluation
from ._solver import GradientDescent as GradientDescent
from ._solver import LBFGSDescent as LBFGSDescent
from ._solver import Needs as Needs
from ._solver import Newton as Newton
from ._solver import NewtonCG as NewtonCG
from ._solver import NewtonCGDescent as NewtonCGDescent
from ._solver import NewtonDescent as NewtonDescent
from ._solver import NoSearch as NoSearch
from ._solver import OptaxDescent as OptaxDescent
from ._solver import OptaxSolver as OptaxSolver
from ._solver import Solution as Solution
from ._solver import Solver as Solver
from ._solver import SolverState as SolverState
from ._solver import SteepestDescent as SteepestDescent
from ._solver import auto_method as auto_method
from ._solver import make_solver as make_solver
