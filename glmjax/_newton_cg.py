r"""Hessian-free Newton (``method="newton-cg"``): truncated conjugate gradients on Hessian-vector
products, for models with too many coefficients for a dense Hessian.

With ``q`` coefficients, exact Newton stores and factorises the ``(q, q)`` Hessian: softmax
regression with ``d = 1000`` features and ``k = 100`` classes has ``q = 99,000`` and a 78 GB
Hessian. Newton-CG never forms it. Each iteration approximately solves the Newton system

$$ H(\mathrm{coef})\, d = -\nabla f(\mathrm{coef}) $$

by conjugate gradients, where each product ``H v`` is the directional derivative of the gradient,
``jax.jvp(jax.grad(f), (coef,), (v,))`` — forward-over-reverse autodiff, costing a few gradient
evaluations and ``O(q + n m)`` memory. CG stops at the *truncation rule* (Nocedal & Wright,
Numerical Optimization, 2nd ed., Algorithm 7.1)

$$ \|H d + \nabla f\| \le \eta_k \|\nabla f\|, \qquad \eta_k = \min(0.5, \sqrt{\|\nabla f\|}) , $$

so early iterations take cheap, rough steps and the last ones converge superlinearly; or when it
meets a direction of non-positive curvature ``v^T H v <= 0`` (a singular Hessian, e.g.
``Categorical(k, minimal=False)`` without ridge), keeping the iterate so far (the steepest-descent
direction if that happens at once); or after ``max_cg_iter`` products. The step then goes through
the same line search as `Newton` (`glmjax._solvers.newton_backtrack`: Armijo backtracking, the full
step once the predicted decrease is at rounding level) and the same stopping rules.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Int

from ._solvers import StepInfo, check_optional_positive_int, newton_backtrack


def truncated_cg(
    hvp, b: Float[Array, " q"], *, rtol, max_iter: int
) -> tuple[Float[Array, " q"], Int[Array, ""]]:
    """Conjugate gradients for ``H x = b`` from ``x = 0``, ``H`` given only by ``hvp(v) = H v``.

    Stops when ``|b - H x| <= rtol |b|``, after ``max_iter`` products, or at a direction ``v`` with
    ``v^T H v <= 0`` (returning the iterate so far, or ``b`` itself if that is the first direction).
    Returns ``x`` and the number of products used.
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


class NewtonCG(eqx.Module):
    """Hessian-free Newton: truncated CG on ``jax.jvp``-of-gradient products, then a line search.

    - `max_cg_iter`: most Hessian-vector products per iteration (default: the number of
      coefficients, i.e. no limit beyond the truncation rule of the module docstring).
    """

    max_cg_iter: int | None = eqx.field(static=True, default=None)
    second_order: ClassVar[bool] = True

    def __check_init__(self):
        check_optional_positive_int(self.max_cg_iter, "max_cg_iter")

    def init(self, objective, coef, f, grad):
        return None

    def step(self, objective, coef, f, grad, state):
        gradient = jax.grad(objective.__call__)

        def hvp(v):
            return jax.jvp(gradient, (coef,), (v.reshape(coef.shape),))[1].reshape(-1)

        g = grad.reshape(-1)
        gnorm = jnp.linalg.norm(g)
        rtol = jnp.minimum(0.5, jnp.sqrt(gnorm))
        max_iter = self.max_cg_iter or g.size
        d, _ = truncated_cg(hvp, -g, rtol=rtol, max_iter=max_iter)
        d = d.reshape(coef.shape)
        t, ok, _ = newton_backtrack(objective, coef, f, jnp.vdot(grad, d), d)
        new = coef + t * d
        f_new, g_new = objective.value_and_grad(new)
        return new, f_new, g_new, state, StepInfo(~ok, jnp.array(False))
