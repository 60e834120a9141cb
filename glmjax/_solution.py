"""Why a fit stopped: one enumeration of result codes, with a message each, for every fit path
(in memory, sharded, vmapped, streamed) and every solver."""

import enum

RUNNING = -1  # inside the loop: not finished yet


class ConvergenceWarning(RuntimeWarning):
    """A fit stopped without a clean optimum (max_iter, separation, singular Hessian, no
    feasible start, ...), or its inference is degenerate (no residual degrees of freedom)."""


class ResultCode(enum.IntEnum):
    """Why a fit stopped (``fit.result``, an int32 array, so that ``jax.vmap`` over fits works).
    ``ResultCode(int(fit.result)).message`` says it in words; `GLMResult.message` does that."""

    successful = 0
    max_iter_reached = 1
    nonfinite = 2
    separation = 3
    singular_hessian = 4
    stalled = 5
    zero_curvature = 6
    invalid_data = 7
    not_optimal = 8
    infinite_parameter = 9

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def converged(self) -> bool:
        """Whether the coefficients are an optimum (``successful`` or ``singular_hessian``)."""
        return self in (ResultCode.successful, ResultCode.singular_hessian)


_MESSAGES = {
    ResultCode.successful: "converged: the gradient (in units of standardised columns) is below "
    "`tol` and, for second-order methods, the last step was small",
    ResultCode.max_iter_reached: "`max_iter` iterations reached before convergence; increase "
    "`max_iter`, or use method='newton' (few iterations)",
    ResultCode.nonfinite: "the objective or its gradient is not finite at the start: the linear "
    "predictor is outside the family's natural parameter space or the link's valid range (e.g. "
    "Gamma with its canonical link needs eta < 0, a log-link Binomial needs mu < 1); pass "
    "`start=` coefficients inside it or use another link (e.g. link='log'). The inference "
    "quantities of this fit are NaN",
    ResultCode.separation: "the maximum-likelihood estimate does not exist: the coefficients "
    "diverge while the fitted means approach the boundary of the mean space (separation or "
    "quasi-separation of a binary/categorical response, all-zero counts where a coefficient can "
    "push the Poisson mean to 0, a response with a single value). The returned coefficients are "
    "finite but their size is arbitrary; their standard errors are meaningless. Consider "
    "`firth=True` (Firth's bias-reduced estimate, finite under separation), `l2` > 0 or dropping "
    "the separating columns",
    ResultCode.singular_hessian: "converged, but the Hessian is singular (collinear columns of "
    "X?): the coefficients are the minimum-norm solution and are not unique; the covariance of the "
    "non-identifiable directions is infinite",
    ResultCode.stalled: "the line search could not decrease the objective before the gradient "
    "reached `tol` (rounding limits the attainable accuracy in this dtype); consider a larger "
    "`tol` or float64",
    ResultCode.zero_curvature: "the Hessian vanishes in directions in which the gradient does not "
    "(the fitted means are saturated at the boundary of the mean space, e.g. offsets of huge "
    "magnitude, or the MLE lies at infinity): Newton's quadratic model has no minimum there and "
    "the fit stopped short of the optimum; rescale the offsets, pass `start=`, or add `l2` > 0",
    ResultCode.invalid_data: "the data are invalid (y outside the family's support or non-finite "
    "values); this is reported instead of raised because the inputs were traced (jax.jit or "
    "jax.vmap of fit_glm), where fit_glm raises a ValueError for concrete inputs",
    ResultCode.not_optimal: "the first-order solver met `tol`, but a Newton step from its "
    "coefficients would still move them: they are not at the optimum. The data may be separated "
    "(the maximum-likelihood estimate does not exist) or the problem ill-conditioned; refit with "
    "method='newton' to tell which",
    ResultCode.infinite_parameter: "the family parameter estimated with the coefficients has no "
    "finite maximum-likelihood estimate: the negative binomial's theta is infinite because the "
    "counts are not overdispersed relative to the Poisson means (sum w ((y - mu)^2 - y) <= 0). "
    "The fit is the Poisson limit (coefficients and inference of the Poisson GLM); use Poisson. "
    "Gamma(shape=None): every y equals its fitted mean, the shape is infinite",
}
