r"""The negative binomial GLM with ``theta`` (`NegativeBinomial.r`) estimated by maximum likelihood
jointly with the coefficients, as R's ``MASS::glm.nb``: `fit_glm` with ``NegativeBinomial(r=None)``.

**The iteration** (``glm.nb``'s alternation, in one compiled ``lax.while_loop``): fit the
Poisson GLM with the same link; then, in turn, estimate ``theta`` at the current means
(`glmjax._dispersion.theta_ml`, from the previous ``theta``) and refit the coefficients of the
negative binomial GLM at that ``theta`` (warm-started from the previous coefficients). Each half
step raises the log-likelihood ``l(coef, theta)``, so the alternation climbs to its joint maximum,
at which ``coef`` is the GLM's estimate given ``theta`` and ``theta`` the maximum given the
means. It stops after alternation ``k`` when

$$ \frac{|l_k - l_{k-1}|}{\sqrt{2 \max(1, \mathrm{df_{resid}})}} +
   \frac{|\theta_k - \theta_{k-1}|}{\theta_k} \le \mathrm{tol}, $$

``glm.nb``'s rule with the change of ``theta`` taken relative (R's is absolute, which a large
``theta`` can never meet), or after ``max_iter`` alternations (`ResultCode.max_iter_reached`).
Since coefficients and ``theta`` are orthogonal (their expected cross information is zero), the
alternation converges fast: its rate is the small observed correlation between the two.

**Inference** is that of the negative binomial GLM at the estimate (R's ``summary.negbin``: the
dispersion 1, the coefficients' covariance at fixed ``theta``, exact by orthogonality in large
samples); ``theta_stderr`` is ``glm.nb``'s ``SE.theta`` (`glmjax._dispersion.theta_stderr`).
``loglik`` is the log-likelihood at ``(coef, theta)``, and `aic`, `bic` count ``theta`` as a
parameter (``glm.nb``'s ``aic``: ``-2 loglik + 2 (rank + 1)``).

**No finite maximum.** When the counts are not overdispersed relative to the Poisson means
(`theta_ml` reports ``theta = inf``) the joint maximum is the Poisson fit: the result carries it
(its coefficients and log-likelihood, the rest of the inference at a ``theta`` of ``1 /
sqrt(eps)`` standing in for infinity), ``theta = inf``, ``theta_stderr = inf`` and
`ResultCode.infinite_parameter`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import links
from ._dispersion import DispersionEstimate, DispersionResult, nb_loglik, theta_ml
from ._families import NegativeBinomial, Poisson
from ._objective import RowLikelihood
from ._solution import ResultCode

DEFAULT_LINK = "log"  # glm.nb's; the canonical link log(mu / (mu + theta)) moves with theta


def estimates_theta(family) -> bool:
    """Whether ``family`` asks for ``theta`` to be estimated: ``NegativeBinomial(r=None)``."""
    return isinstance(family, NegativeBinomial) and family.r is None


def models(link) -> tuple[RowLikelihood, RowLikelihood]:
    """The Poisson start's and the negative binomial's `RowLikelihood` for ``link`` (``None``:
    the log link), the latter at ``theta = 1`` (its ``theta`` is replaced as it is estimated)."""
    link = DEFAULT_LINK if link is None else link
    poisson, negbin = Poisson(), NegativeBinomial(1.0)
    nb_link, canonical = links.get(link, negbin)
    if canonical:
        raise ValueError(
            "`link` must not be the negative binomial's canonical link when theta is estimated "
            "(NegativeBinomial(r=None)): it moves with theta; use 'log' (glm.nb's) or another"
        )
    return RowLikelihood(poisson, *links.get(link, poisson)), RowLikelihood(negbin, nb_link, False)


def with_theta(model: RowLikelihood, theta: Float[Array, ""]) -> RowLikelihood:
    """``model`` with its negative binomial at ``theta`` (an infinite one at ``1 / sqrt(eps)``,
    whose terms keep their digits and differ from the Poisson limit's by ``O(sqrt(eps))``)."""
    finite = jnp.minimum(theta, 1 / jnp.sqrt(jnp.finfo(theta.dtype).eps))
    return eqx.tree_at(lambda m: m.family, model, NegativeBinomial(finite))


class _Alternation(eqx.Module):
    solution: object
    theta: DispersionEstimate
    loglik: Float[Array, ""]
    change: Float[Array, ""]
    k: Array


def alternate(solve, nb_model, X, y, w, offset, poisson_solution, df_resid, *, tol, max_iter):
    """``glm.nb``'s alternation (module docstring) from the Poisson fit ``poisson_solution``:
    ``solve(model, start)`` fits the coefficients of ``model`` from ``start``. Returns the last
    `Solution`, with the result code of the whole fit, the last `DispersionEstimate` of
    ``theta`` and the log-likelihood at both (exact also for ``theta = inf``)."""

    def mean(model, coef):
        return jax.vmap(model.mean)(X @ coef + offset)

    def estimate(model, coef, theta0):
        mu = mean(model, coef)
        est = theta_ml(y, mu, w, theta0=theta0)
        return est, nb_loglik(y, mu, w, est.value)

    # the means of a link other than the canonical one do not depend on the family
    theta0, loglik0 = estimate(nb_model, poisson_solution.coef, None)
    scale = jnp.sqrt(2 * jnp.maximum(1.0, df_resid))

    def cond(state):
        boundary = state.theta.result != DispersionResult.successful
        return (state.k < max_iter) & (state.change > tol) & ~boundary

    def body(state):
        model = with_theta(nb_model, state.theta.value)
        solution = solve(model, state.solution.coef)
        theta, loglik = estimate(model, solution.coef, state.theta.value)
        change = (
            jnp.abs(loglik - state.loglik) / scale
            + jnp.abs(theta.value - state.theta.value) / theta.value
        )
        return _Alternation(solution, theta, loglik, change, state.k + 1)

    start = _Alternation(poisson_solution, theta0, loglik0, jnp.asarray(jnp.inf, loglik0.dtype),
                         jnp.zeros((), jnp.int32))  # fmt: skip
    state = jax.lax.while_loop(cond, body, start)
    result = jnp.select(
        [
            state.solution.result != ResultCode.successful,
            state.theta.result == DispersionResult.infinite,
            state.theta.result != DispersionResult.successful,
            state.change > tol,
        ],
        [
            state.solution.result,
            ResultCode.infinite_parameter,
            ResultCode.nonfinite,
            ResultCode.max_iter_reached,
        ],
        ResultCode.successful,
    ).astype(jnp.int32)
    solution = eqx.tree_at(lambda s: s.result, state.solution, result)
    return solution, state.theta, state.loglik
