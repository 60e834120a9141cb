r"""Firth's bias-reduced GLM: the likelihood penalised by Jeffreys' prior, for `minimise`.

**The objective.** With each row's expected curvature ``c_i`` (`glmjax._objective`) the
Fisher information of the coefficients is ``I(b) / phi`` (``phi`` the family's fixed dispersion),

$$ I(b) = \sum_i w_i\, x_i x_i^T \otimes c_i(\eta_i), \qquad
   c_i = \mathrm{E}_y\Big[\frac{\partial^2 \ell}{\partial \eta^2}\Big](\eta_i) , $$

and Firth (1993) maximises ``loglik(b) + (1/2) log det(I(b) / phi)``. In the units of `fit_glm`'s
objective ``f`` (the mean negative log-likelihood times ``phi``, ridge included) that is the
minimisation of

$$ f_F(b) = f(b) - \frac{\phi}{2n} \log\det I(b) , $$

the ridge staying in ``f`` (``I`` is the likelihood's information). Its gradient is
``grad f - (phi / 2n) grad log det I`` with

$$ \frac{\partial \log\det I}{\partial b} = \sum_i w_i\, x_i \otimes
   \frac{\partial \langle c_i(\eta_i), Q_i \rangle}{\partial \eta_i}, \qquad
   (Q_i)_{rs} = \sum_{jk} x_{ij} x_{ik} (I^{-1})_{jr,ks} , $$

``I^{-1}`` being ``jax.grad`` of the Cholesky log-determinant and ``dc/deta`` (a third
derivative of the log-partition) ``jax.grad`` of the curvature: the chain rule through the chunked
sum ``I(b)``, applied per chunk of rows (`GLMObjective.chunked_sum`): reverse mode never runs
through the loop over chunks (which would keep a copy of every chunk of ``X``). For the
logistic model it is logistf's modified score ``X^T (y - mu + h (1/2 - mu)) / n`` with the hat
values ``h_i = w_i mu_i (1 - mu_i) x_i^T I^{-1} x_i``. ``log det`` is taken of the
unit-diagonal ``D^{-1/2} I D^{-1/2}`` (``D = diag I``) by Cholesky, plus ``sum log D``: stable
for columns of very different scale. Where ``I`` is not positive definite (collinear columns)
``f_F`` is NaN and the line search steps back.

**The "Hessian".** `FirthObjective.evaluate` returns the Fisher information of ``f``,
``I / n + diag(l2)``, whatever information the solver asks for, as logistf and brglm2 do: it
leaves out the penalty's own curvature (``O(p / n)`` of the whole) and, for a non-canonical link,
the observed part of ``f``'s. Newton's and Fisher scoring's iteration then converges linearly to
the same point, the zero of the gradient above, at a rate of about the neglected fraction: fast
when ``n`` is large against ``p``, some tens of iterations for a handful of rows per coefficient.

**Which estimate.** For a canonical link the zero of the gradient is brglm2's mean bias-reducing
estimate (``brglmFit(type = "AS_mean")``) and, for the logistic model, logistf's; for another
link it is the maximum Jeffreys-penalised likelihood (brglm2's ``type = "MPL_Jeffreys"``), whose
bias reduction is first order only for canonical links (Kosmidis & Firth 2009). Families whose
dispersion a fit estimates are not offered (`check_firth`): there the penalty's weight ``phi`` is
itself an unknown (brglm2 adjusts both).

**Standard errors** (`firth_covariance`): the Wald covariance ``phi I(b_F)^{-1}`` (ridge
included, as `glmjax._inference`) at the Firth estimate, brglm2's ``summary()`` and logistf's
``vcov``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._exponential_family import ExponentialFamily
from ._inference import covariance
from ._objective import (
    ColumnSummary,
    GLMObjective,
    RowLikelihood,
    Rows,
    _masked,
    evaluation_sums,
    finish_evaluation,
    null_projector,
    packed_kron_gram,
    rows_dot,
    unpack_gram,
)
from ._solver import Evaluation, Needs

_VALUE_AND_GRADIENT = Needs()
_FISHER = Needs(hessian="expected")


def check_firth(
    family: ExponentialFamily, *, hessian: str = "structured", cov_type: str = "nonrobust"
) -> None:
    """``ValueError`` unless Firth's penalty is defined for ``family`` with a fixed
    dispersion and a non-singular information: every scalar family (any link) and identifiable
    vector families (`Categorical(k, minimal=True)`); not over-parametrised families, nor families
    whose dispersion a fit estimates (Gaussian, Gamma, inverse Gaussian). Also for `fit_glm`'s
    options that do not go with it: ``hessian="full"`` and a robust ``cov_type`` (the rows'
    likelihood scores do not sum to zero at Firth's estimate)."""
    if hessian == "full":
        raise ValueError(
            '`hessian="full"` is not offered with firth=True: its Newton step uses the Fisher '
            'information (use hessian="structured")'
        )
    if cov_type != "nonrobust":
        raise ValueError(
            f"`cov_type={cov_type!r}` is not offered with firth=True: a sandwich needs the rows' "
            "scores to sum to zero, and the likelihood's do not at Firth's estimate"
        )
    if not family.identifiable:
        raise ValueError(
            f"`firth=True` needs a non-singular information, but {family.name} is "
            "over-parametrised (log det I = -inf); use its minimal form "
            "(e.g. Categorical(k, minimal=True))"
        )
    if family.estimates_dispersion:
        raise ValueError(
            f"`firth=True` is not offered for {family.name}: its dispersion is estimated, and "
            "Firth's penalty (1/2) log det(I / phi) weighs the likelihood by that unknown phi"
        )


def expected_curvature(model: RowLikelihood, eta: Float[Array, "*m"]) -> Float[Array, "*mm"]:
    """``c(eta) = E_y[d^2 ell / d eta^2]`` for one row, differentiable in ``eta``: the second
    derivative with ``t`` held at ``mu(eta)`` (`RowLikelihood.curvature`'s value, without its
    ``stop_gradient``, so that ``jax.grad`` of ``c`` is the derivative of the curvature)."""
    if model.canonical:
        return jax.hessian(model.family.log_partition)(eta)
    t = model.mean(eta)
    return jax.hessian(lambda e: model.nll(e, t)[0])(eta)


def information_sums(model: RowLikelihood, coef, rows: Rows) -> Float[Array, "p p *u"]:
    """One chunk's ``sum_i w_i x_i x_i^T (kron) c_i``, packed (`packed_kron_gram`)."""
    eta = rows.X @ coef + rows.offset
    curv = jax.vmap(lambda e: expected_curvature(model, e))(eta)
    return packed_kron_gram(rows.X, rows.weights, curv)


def log_det_score_sums(
    model: RowLikelihood, coef, inverse: Float[Array, "q q"], rows: Rows
) -> Float[Array, "p *m"]:
    """One chunk's part of ``d log det I / d coef`` (module docstring) for ``inverse`` ``=
    I^{-1}``: ``sum_i w_i x_i (kron) d <c_i, Q_i> / d eta_i``."""
    X = rows.X
    c, p = X.shape
    eta = X @ coef + rows.offset
    if eta.ndim == 1:
        Q = jnp.sum((X @ inverse) * X, axis=1)
    else:
        m = eta.shape[1]
        XG = (X @ inverse.reshape(p, m * p * m)).reshape(c, m, p, m)
        Q = jnp.einsum("irks,ik->irs", XG, X)
    dc = jax.vmap(jax.grad(lambda e, q: jnp.sum(expected_curvature(model, e) * q)))(eta, Q)
    return rows_dot(X, _masked(rows.weights, dc))


def log_det(A: Float[Array, "q q"]) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """``(log det A, magnitude)`` for a symmetric positive definite ``A``, by Cholesky of the
    unit-diagonal ``D^{-1/2} A D^{-1/2}`` plus ``sum log D`` (NaN where ``A`` is not positive
    definite); ``magnitude`` is the sum of the terms' absolute values (the rounding scale)."""
    d = jnp.diagonal(A)
    s = 1 / jnp.sqrt(d)
    L = jnp.linalg.cholesky(s[:, None] * A * s[None, :])
    log_d, log_l = jnp.log(d), 2 * jnp.log(jnp.diagonal(L))
    return jnp.sum(log_d) + jnp.sum(log_l), jnp.sum(jnp.abs(log_d)) + jnp.sum(jnp.abs(log_l))


class FirthObjective(eqx.Module):
    """Firth's penalised objective ``f_F`` (module docstring) of a `GLMObjective`, as a problem
    for `glmjax._iterate.minimise`: Newton (`glmjax.solvers.Newton`, either information, the
    structured Hessian) and Fisher scoring (`IRLS`) both take Fisher-scoring steps on it;
    Newton-CG (products with the same Fisher information), gradient descent, L-BFGS and optax
    run it unchanged too.

    **Arguments:**

    - `objective`: the `GLMObjective` (data, family, link, weights, offset, ridge); its family
      must pass `check_firth`.

    ```python
    import jax.numpy as jnp, glmjax as gj
    from glmjax._firth import FirthObjective
    from glmjax._objective import GLMObjective, RowLikelihood
    X = gj.add_intercept(jnp.array([[0.0], [1.0], [2.0], [3.0]]))
    model = RowLikelihood(gj.Bernoulli(), gj.links.Canonical(gj.Bernoulli()), True)
    glm = GLMObjective.from_data(model, X, jnp.array([0.0, 0.0, 1.0, 1.0]), jnp.ones(4), 0.0, 0.0)
    ev = FirthObjective(glm).evaluate(jnp.zeros(2))  # finite although the data are separated
    ```
    """

    objective: GLMObjective

    @property
    def family(self) -> ExponentialFamily:
        return self.objective.family

    def exact_hessian(self, information: str) -> bool:
        """False: the "Hessian" is an approximation for every ``information``, so no solver is
        taken to converge quadratically (it goes on until the gradient is small)."""
        return False

    def _penalty_weight(self, dtype) -> Float[Array, ""]:
        """``phi / (2n)``, the weight of ``-log det I`` in ``f_F``."""
        phi = jnp.asarray(self.family.dispersion, dtype)
        return phi / (2 * self.objective.X.shape[0])

    def information(self, coef: Float[Array, "p *m"]) -> Float[Array, "q q"]:
        """``I(coef)``, ``(q, q)`` over the row-major flattened coefficients (differentiable)."""
        obj = self.objective
        packed = obj.chunked_sum(lambda rows: information_sums(obj.model, coef, rows), hessian=True)
        return unpack_gram(packed, self.family.natural_dim)

    def value(self, coef: Float[Array, "p *m"]) -> Float[Array, ""]:
        """``f_F(coef)`` (differentiable: ``jax.grad`` of it is the reference gradient)."""
        penalty = self._penalty_weight(coef.dtype) * log_det(self.information(coef))[0]
        return self.objective.value(coef) - penalty

    def evaluate(
        self, coef: Float[Array, "p *m"], needs: Needs = _VALUE_AND_GRADIENT, start=True
    ) -> Evaluation:
        """``f_F``, the magnitude of its terms, its gradient and, when ``needs`` asks, the
        Fisher information of ``f`` (``I / n + diag(l2)``, for either information; a ``"full"``
        Hessian raises ``ValueError``) and its diagonal. Two passes over the rows: ``f``,
        ``grad f`` and ``I`` in one, ``grad log det I`` (which needs ``I^{-1}``) in the second.
        ``start`` is part of the solvers' interface; the diagonal is always at hand here."""
        if needs.hessian == "full":
            raise ValueError(
                '`hessian="full"` is not offered with Firth\'s penalty: its Newton step uses the '
                "Fisher information (use the structured Hessian)"
            )
        obj = self.objective
        m = self.family.natural_dim
        sums = obj.chunked_sum(
            lambda rows: evaluation_sums(obj.model, coef, rows, _FISHER), hessian=True
        )
        ev = finish_evaluation(sums, coef, obj.l2, obj.X.shape[0], m)
        (value, magnitude), inverse = jax.value_and_grad(log_det, has_aux=True)(
            unpack_gram(sums["hessian"], m)
        )
        score = obj.chunked_sum(
            lambda rows: log_det_score_sums(obj.model, coef, inverse, rows), hessian=True
        )
        weight = self._penalty_weight(coef.dtype)
        return Evaluation(
            f=ev.f - weight * value,
            f_scale=ev.f_scale + weight * magnitude,
            grad=ev.grad - weight * score,
            hessian=ev.hessian if needs.hessian else None,
            hess_diag=jnp.diagonal(ev.hessian).reshape(coef.shape) if needs.hess_diag else None,
        )

    def hvp_at(self, coef: Float[Array, "p *m"], information: str = "expected"):
        """``v -> (I / n + diag(l2)) v``, products with the same Fisher information (for
        Newton-CG; ``information`` is ignored, as in `evaluate`)."""
        return self.objective.hvp_at(coef, "expected")

    def fill_null_space(self, H: Float[Array, "q q"]) -> Float[Array, "q q"]:
        return self.objective.fill_null_space(H)

    def column_summary(self) -> ColumnSummary:
        return self.objective.column_summary()

    def column_scale(self) -> Float[Array, "p *m"]:
        return self.objective.column_scale()

    def data_valid(self) -> Bool[Array, ""]:
        return self.objective.data_valid()


def firth_covariance(
    problem: FirthObjective, coef: Float[Array, "p *m"]
) -> tuple[Float[Array, "q q"], Float[Array, "p *m"]]:
    """The Wald covariance ``phi (I(coef) + n diag(l2))^{-1}`` at the Firth estimate ``coef``
    and the standard errors ``sqrt(diag)`` shaped like ``coef`` (brglm2's ``summary()``,
    logistf's ``vcov``), inverted as `glmjax._inference.covariance` does (an unidentified
    coefficient gets an infinite variance)."""
    obj = problem.objective
    H = obj.evaluate(coef, _FISHER).hessian
    phi = jnp.asarray(problem.family.dispersion, coef.dtype)
    P = null_projector(problem.family, obj.l2, coef.shape)
    cov, _ = covariance(H, obj.X.shape[0] / phi, P)
    return cov, jnp.sqrt(jnp.diagonal(cov)).reshape(coef.shape)
