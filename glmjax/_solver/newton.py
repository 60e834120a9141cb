r"""Newton's method and Fisher scoring (IRLS): the direction ``d = -H^{-1} grad f``.

``H`` is the Hessian of the objective with the *observed* information (`Newton`: the second
derivative of each row's negative log-likelihood in its linear predictor) or the *expected*
information (`IRLS`, Fisher scoring: its expectation over ``y``). For a canonical link the two are
the same matrix and so are the iterates. Iteratively reweighted least squares is Fisher scoring
written as a weighted least-squares fit of the working response
``z = eta - offset + (y - mu) / mu'(eta)``: ``beta = (X^T W X)^{-1} X^T W z`` equals
``coef - H^{-1} grad f`` with ``W`` the expected curvature, so IRLS here computes the latter.

`solve_newton` solves ``H d = -g`` by Cholesky; when ``H`` is not numerically positive definite it
falls back to an eigendecomposition and uses ``|e|`` for each eigenvalue (an indefinite observed
information far from the optimum of a non-canonical link: the step still descends) and drops
those below ``q eps max |e|`` (collinear columns: the minimum-norm step). Known null directions
(the over-parametrised softmax) are filled in by the objective beforehand, so that those cost no
eigendecomposition.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._batching import rare_cond
from .._misc import check_choice
from ._base import AbstractDescent, Backtracking, DescentInfo, Needs, Solver


def solve_newton(
    H: Float[Array, "q q"], b: Float[Array, " q"]
) -> tuple[Float[Array, " q"], DescentInfo]:
    """``H^{-1} b`` for a symmetric ``H`` (see the module docstring), with diagnostics.

    Cholesky is used when it succeeds with every pivot of the unit-diagonal ``D H D``
    (``D = diag(H)^{-1/2}``) above ``sqrt(q eps)`` — a scale-invariant test, so columns of very
    different scale (Longley's run from 1 to 1e5) do not count as singular. Otherwise the
    eigendecomposition ``H = V diag(e) V^T`` gives ``V diag(1/|e|) V^T b`` over the eigenvalues
    kept: every step then lies in the range of ``H`` (for a GLM the row space of ``X``), so the
    iterates from a start in it end at the minimum-norm optimum. `DescentInfo.singular` says some
    were dropped, `DescentInfo.zero_curvature` that most of ``b`` lies in the dropped directions
    (the gradient has no curvature to go with it).
    """
    q = H.shape[0]
    eps = jnp.finfo(H.dtype).eps
    diag = jnp.diagonal(H)
    positive = diag > 0
    d = 1 / jnp.sqrt(jnp.where(positive, diag, 1))
    L = jnp.linalg.cholesky(H)
    pivots = jnp.diagonal(L) * d
    chol_ok = jnp.all(jnp.isfinite(L)) & jnp.all(positive) & (jnp.min(pivots) ** 2 > q * eps)
    x = jax.scipy.linalg.cho_solve((L, True), b)
    # under vmap the eigendecomposition runs only when some member needs it (`rare_cond`); it
    # runs after the Cholesky factorisation, whose result decides it (jaxlib spreads a large
    # batch of LAPACK calls over XLA's CPU thread pool and blocks until it is done: two batches
    # at once could wait for each other for ever, as 10,000 vmapped fits did on 2 cores)
    return rare_cond(~chol_ok, _by_eigh, (x, DescentInfo.none()), H, b)


def _by_eigh(H, b):
    """`solve_newton`'s fallback: ``V diag(1/|e|) V^T b`` over the eigenvalues kept."""
    q = H.shape[0]
    e, V = jnp.linalg.eigh(H)
    magnitude = jnp.abs(e)
    keep = magnitude > q * jnp.finfo(H.dtype).eps * jnp.max(magnitude)
    inv = jnp.where(keep, 1 / jnp.where(keep, magnitude, 1), 0)
    coords = V.T @ b
    dropped = jnp.sum(jnp.where(keep, 0, coords**2))
    info = DescentInfo(singular=jnp.any(~keep), zero_curvature=dropped > 0.5 * jnp.sum(coords**2))
    return V @ (inv * coords), info


class NewtonDescent(AbstractDescent):
    """``d = -H^{-1} grad f`` (`solve_newton`) with the Hessian of the chosen information.

    - `information`: ``"observed"`` (Newton) or ``"expected"`` (Fisher scoring / IRLS).
    - `hessian`: ``"structured"`` (the GLM form, assembled from per-row curvatures in chunks) or
      ``"full"`` (``jax.hessian`` of the whole objective: observed, the reference).
    """

    information: str = eqx.field(static=True, default="observed")
    hessian: str = eqx.field(static=True, default="structured")
    second_order = True

    def __check_init__(self):
        check_choice(self.information, "information", ("observed", "expected"))
        check_choice(self.hessian, "hessian", ("structured", "full"))

    def needs(self) -> Needs:
        return Needs(hessian="full" if self.hessian == "full" else self.information)

    def quadratic(self, problem) -> bool:
        return problem.exact_hessian(self.needs().hessian)

    def direction(self, problem, coef, evaluation, state):
        H = problem.fill_null_space(evaluation.hessian)
        d, info = solve_newton(H, -evaluation.grad.reshape(-1))
        return d.reshape(coef.shape), state, info


def _newton_search() -> Backtracking:
    return Backtracking(full_step_at_rounding=True)


class Newton(Solver):
    """Exact Newton with the shared backtracking search (``method="newton"``); see
    `NewtonDescent` for `information` and `hessian`."""

    def __init__(self, *, information: str = "observed", hessian: str = "structured"):
        self.descent = NewtonDescent(information=information, hessian=hessian)
        self.search = _newton_search()


class IRLS(Solver):
    """Fisher scoring, i.e. iteratively reweighted least squares (``method="irls"``): Newton's
    step with the expected information."""

    def __init__(self):
        self.descent = NewtonDescent(information="expected")
        self.search = _newton_search()
