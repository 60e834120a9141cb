r"""Hessian-free Newton (``method="newton-cg"``): truncated conjugate gradients on Hessian-vector
products, for models with too many coefficients for a dense Hessian.

With ``q`` coefficients exact Newton stores and factorises the ``(q, q)`` Hessian: softmax
regression with ``d = 1000`` features and ``k = 100`` classes has ``q = 99,000`` and a 78 GB
Hessian. Newton-CG never forms it. Each iteration approximately solves the Newton system
``H d = -grad f`` by conjugate gradients, where each product ``H v`` comes from the objective
(`glmjax._objective.GLMObjective.hvp`: ``X^T (D (X v)) / n`` with the per-row curvature ``D``
applied by a forward derivative, two passes over ``X``). CG stops at the *truncation rule*
(Nocedal & Wright, Numerical Optimization, 2nd ed., Algorithm 7.1)

$$ \|H d + \nabla f\| \le \eta_k \|\nabla f\|, \qquad \eta_k = \min(0.5, \sqrt{\|\nabla f\|}) , $$

so early iterations take cheap, rough steps and the last ones converge superlinearly; or when it
meets a direction of non-positive curvature ``v^T H v <= 0`` (e.g. the over-parametrised softmax
without ridge), keeping the iterate so far (the steepest-descent direction if that happens at
once); or after ``max_cg_iter`` products. The step then goes through the shared line search.
Hessian-vector products need the rows at hand, so streaming fits do not offer this method.
"""

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int

from .._misc import check_choice, check_int
from ._base import AbstractDescent, Backtracking, DescentInfo, Solver


def truncated_cg(
    hvp, b: Float[Array, " q"], *, rtol, max_iter: int
) -> tuple[Float[Array, " q"], Int[Array, ""]]:
    """Conjugate gradients for ``H x = b`` from ``x = 0``, ``H`` given only by ``hvp(v) = H v``.

    Stops when ``|b - H x| <= rtol |b|``, after ``max_iter`` products, or at a direction ``v``
    with ``v^T H v <= 0`` (returning the iterate so far, or ``b`` itself if that is the first
    direction). Returns ``x`` and the number of products used.
    """
    target = (rtol * jnp.linalg.norm(b)) ** 2

    def cond(s):
        _, r, _, rs, i, stop = s
        return ~stop & (i < max_iter) & (rs > target)

    def body(s):
        x, r, v, rs, i, _ = s
        Hv = hvp(v)
        curv = jnp.vdot(v, Hv)
        negative = ~(curv > 0)
        alpha = rs / jnp.where(negative, 1, curv)
        x_new = x + alpha * v
        r_new = r - alpha * Hv
        rs_new = jnp.vdot(r_new, r_new)
        v_new = r_new + (rs_new / rs) * v
        keep = lambda new, old: jnp.where(negative, old, new)  # noqa: E731
        x_out = jnp.where(negative & (i == 0), b, keep(x_new, x))
        return x_out, keep(r_new, r), keep(v_new, v), keep(rs_new, rs), i + 1, negative

    rs0 = jnp.vdot(b, b)
    init = (jnp.zeros_like(b), b, b, rs0, jnp.array(0, jnp.int32), jnp.array(False))
    x, _, _, _, n_products, _ = lax.while_loop(cond, body, init)
    return x, n_products


class NewtonCGDescent(AbstractDescent):
    """Truncated CG on Hessian-vector products (module docstring).

    - `max_cg_iter`: most products per iteration (default: the number of coefficients).
    - `information`: ``"observed"`` or ``"expected"`` curvature in the products.
    """

    max_cg_iter: int | None = eqx.field(static=True, default=None)
    information: str = eqx.field(static=True, default="observed")
    second_order = True
    needs_problem = True

    def __check_init__(self):
        check_int(self.max_cg_iter, "max_cg_iter", minimum=1, optional=True)
        check_choice(self.information, "information", ("observed", "expected"))

    def quadratic(self, problem) -> bool:
        # superlinear: the CG forcing term shrinks with sqrt(|grad f|)
        return problem.exact_hessian(self.information)

    def direction(self, problem, coef, evaluation, state):
        g = evaluation.grad.reshape(-1)
        linear = problem.hvp_at(coef, self.information)

        def hvp(v):
            return linear(v.reshape(coef.shape)).reshape(-1)

        rtol = jnp.minimum(0.5, jnp.sqrt(jnp.linalg.norm(g)))
        d, _ = truncated_cg(hvp, -g, rtol=rtol, max_iter=self.max_cg_iter or g.size)
        return d.reshape(coef.shape), state, DescentInfo.none()


class NewtonCG(Solver):
    """Hessian-free Newton with the shared backtracking search (``method="newton-cg"``)."""

    def __init__(self, *, max_cg_iter: int | None = None, information: str = "observed"):
        self.descent = NewtonCGDescent(max_cg_iter=max_cg_iter, information=information)
        self.search = Backtracking(full_step_at_rounding=True)
