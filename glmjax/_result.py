"""`GLMResult`: a fitted GLM (every fit path returns one) and its printable summary. The
definitions of the inference quantities are in `glmjax._inference`."""

from typing import TYPE_CHECKING

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ._distributions import two_sided_critical
from ._exponential_family import ExponentialFamily
from ._misc import check_alpha
from ._solution import ResultCode
from ._solver import Solution
from .links import Link

if TYPE_CHECKING:
    from ._comparison import TestResult
    from ._prediction import Prediction


class GLMResult(eqx.Module):
    """A fitted GLM (a pytree: under ``jax.vmap`` every array gets a leading batch axis).

    - `family`, `link`: the family and the link (`glmjax.links.Canonical` for ``link=None``).
    - `coef`: coefficients, `(p,)` or `(p, m)` (from `solution`); `stderr`, `zvalues` (t values
      when the dispersion is estimated), `pvalues` have the same shape; `cov` is `(q, q)`,
      ``q = coef.size``, row-major. All four are ``None`` for a fit with ``covariance=False``.
    - `loglik`, `deviance`, `null_deviance`, `aic`, `bic`: as R's ``logLik``, ``deviance``,
      ``null.deviance``, ``AIC``, ``BIC``.
    - `scale`: the dispersion (Pearson's estimate for Gaussian, Gamma, inverse Gaussian; else 1).
    - `df_resid`, `df_null`, `nobs`: residual and null degrees of freedom, rows with weight > 0.
    - `has_intercept`: whether ``X`` has a constant non-zero column.
    - `solution`: the solver's `glmjax.solvers.Solution`; its fields read as `objective` (the
      objective minimised, at `coef`), `n_iter`, `n_evals` (evaluations of the objective:
      passes over the rows), `converged`, `grad_norm`, `history` and `result` (a `ResultCode`;
      `message` says it in words).
    - `information`: ``"expected"`` or ``"observed"``, the information behind `cov`.
    - `cov_type`: the covariance `cov` is (``"nonrobust"``, ``"HC0"``-``"HC3"``, ``"cluster"``:
      `fit_glm`).
    - `theta`, `theta_stderr`: for ``NegativeBinomial(r=None)``, the estimated ``theta``
      (also `family.r`) and its standard error, as ``MASS::glm.nb`` (`glmjax._negbin`); else
      ``None``.
    """

    family: ExponentialFamily
    link: Link
    solution: Solution
    stderr: Float[Array, " p *m"] | None
    cov: Float[Array, "q q"] | None
    zvalues: Float[Array, " p *m"] | None
    pvalues: Float[Array, " p *m"] | None
    loglik: Float[Array, ""]
    deviance: Float[Array, ""]
    null_deviance: Float[Array, ""]
    aic: Float[Array, ""]
    bic: Float[Array, ""]
    scale: Float[Array, ""]
    df_resid: Float[Array, ""]
    df_null: Float[Array, ""]
    nobs: Int[Array, ""]
    has_intercept: Bool[Array, ""]
    information: str = eqx.field(static=True, default="expected")
    cov_type: str = eqx.field(static=True, default="nonrobust")
    theta: Float[Array, ""] | None = None
    theta_stderr: Float[Array, ""] | None = None

    @property
    def coef(self) -> Float[Array, " p *m"]:
        """The coefficients, `(p,)` or `(p, m)`."""
        return self.solution.coef

    @property
    def objective(self) -> Float[Array, ""]:
        return self.solution.evaluation.f

    @property
    def n_iter(self) -> Int[Array, ""]:
        return self.solution.n_iter

    @property
    def n_evals(self) -> Int[Array, ""]:
        return self.solution.n_evals

    @property
    def converged(self) -> Bool[Array, ""]:
        return self.solution.converged

    @property
    def grad_norm(self) -> Float[Array, ""]:
        return self.solution.grad_norm

    @property
    def history(self) -> Float[Array, " max_iter+1"]:
        return self.solution.history

    @property
    def result(self) -> Int[Array, ""]:
        return self.solution.result

    @property
    def estimated_dispersion(self) -> bool:
        """Whether `scale` is estimated (Gaussian, Gamma, inverse Gaussian) rather than 1."""
        return self.family.estimates_dispersion

    @property
    def message(self) -> str:
        """Why the solver stopped, in words (for an unbatched result)."""
        return ResultCode(int(self.result)).message

    def critical_value(self, alpha=0.05) -> Float[Array, ""]:
        """The half-width in standard errors of a ``1 - alpha`` Wald interval: Student's t
        quantile on `df_resid` degrees of freedom when the dispersion is estimated (as the
        summary's t values), the normal quantile otherwise (R's ``confint.default``)."""
        check_alpha(alpha)
        df = self.df_resid if self.estimated_dispersion else None
        return two_sided_critical(jnp.asarray(alpha, self.coef.dtype), df)

    def conf_int(self, alpha=0.05) -> tuple[Float[Array, " p *m"], Float[Array, " p *m"]]:
        """The ``1 - alpha`` Wald intervals ``coef -/+ c stderr`` (``c``: `critical_value`), each
        shaped like `coef`; the standard errors follow `cov_type`."""
        if self.stderr is None:
            raise ValueError("`conf_int` needs standard errors: fit with covariance=True")
        c = self.critical_value(alpha)
        c = c.reshape(c.shape + (1,) * (self.coef.ndim - c.ndim))
        return self.coef - c * self.stderr, self.coef + c * self.stderr

    def get_prediction(
        self, X: ArrayLike, offset: ArrayLike | None = None, *, alpha=0.05
    ) -> "Prediction":
        """The predicted mean at new rows ``X`` with delta-method standard errors and ``1 -
        alpha`` intervals (the linear predictor's mapped through the inverse link), and the
        linear predictor with its standard errors: a `glmjax.Prediction` (definitions there)."""
        from ._prediction import get_prediction

        return get_prediction(self, X, offset, alpha)

    def residuals(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        kind: str = "deviance",
        weights: ArrayLike | None = None,
        offset: ArrayLike | None = None,
    ) -> Float[Array, " n *m"]:
        """R's ``residuals.glm(type = kind)`` of the rows ``(X, y, weights, offset)``: ``kind``
        is ``"deviance"``, ``"pearson"``, ``"working"`` or ``"response"`` (only ``"response"``
        for a vector family); definitions in `glmjax._prediction.residuals`."""
        from ._prediction import residuals

        return residuals(self, X, y, kind, weights, offset)

    def wald_test(self, R: ArrayLike, q: ArrayLike | None = None) -> "TestResult":
        """The Wald test of ``R @ coef.ravel() = q``: ``W = d^T (R cov R^T)^{-1} d``, ``d = R
        coef.ravel() - q``, against chi-square with ``r`` degrees of freedom; `cov` is the
        fit's (so it follows `cov_type`). ``R``: ``(r, coef.size)`` with independent rows, or
        one row ``(coef.size,)``; ``q``: ``(r,)``, default zeros. Returns a `glmjax.TestResult`
        ``(statistic, df, pvalue)``."""
        from ._comparison import wald_test  # _comparison imports this module

        return wald_test(self, R, q)

    def linear_predictor(
        self, X: ArrayLike, offset: ArrayLike | None = None
    ) -> Float[Array, "n *m"]:
        """``X @ coef + offset`` for new rows ``X``."""
        X = jnp.asarray(X, self.coef.dtype)
        p = self.coef.shape[-2] if self.family.natural_dim is not None else self.coef.shape[-1]
        if X.ndim != 2 or X.shape[1] != p:
            raise ValueError(f"`X` must have shape (n, {p}), got {X.shape}")
        eta = X @ self.coef
        if offset is None:
            return eta
        offset = jnp.asarray(offset, self.coef.dtype)
        if offset.shape not in {eta.shape, eta.shape[:1]}:
            shapes = sorted({str(eta.shape), str(eta.shape[:1])})
            raise ValueError(f"`offset` must have shape {' or '.join(shapes)}, got {offset.shape}")
        return eta + (offset if offset.shape == eta.shape else offset[:, None])

    def predict(self, X: ArrayLike, offset: ArrayLike | None = None) -> Float[Array, " n *k"]:
        """The fitted mean ``g^-1(X @ coef + offset)``; for `Categorical(k)` the probabilities of
        all ``k`` classes (also when ``minimal=True``, where the last one is ``exp(-a(eta))``)."""
        eta = self.linear_predictor(X, offset)
        if self.family.natural_dim is not None:
            return self.family.response_mean(eta)
        return self.link.inverse(eta)

    def summary(self, names: list[str] | None = None) -> "Summary":
        """A printable coefficient table, statsmodels-like; ``names`` label the rows of ``coef``."""
        if self.coef.ndim != (1 if self.family.natural_dim is None else 2):
            raise ValueError("`summary` needs a single fit; index a batched result first")
        p = self.coef.shape[0]
        names = [f"x{j}" for j in range(p)] if names is None else list(names)
        if len(names) != p:
            raise ValueError(f"`names` must have {p} entries, got {len(names)}")
        return Summary(self, names)


class Summary:
    """The text of `GLMResult.summary` (``str()`` or ``print`` it)."""

    def __init__(self, result: GLMResult, names: list[str]):
        self.result = result
        self.names = names

    def _table(self, coef, stderr, z, pv, names) -> list[str]:
        stat = "t" if self.result.estimated_dispersion else "z"
        width = max(10, *(len(n) for n in names))
        lines = [f"{'':<{width}} {'coef':>12} {'std err':>12} {stat:>9} {'P>|' + stat + '|':>9}"]
        for row in zip(names, coef, stderr, z, pv, strict=True):
            if np.isnan(row[2]):  # fitted with covariance=False
                lines.append(f"{row[0]:<{width}} {row[1]:>12.6g} {'-':>12} {'-':>9} {'-':>9}")
                continue
            lines.append(
                f"{row[0]:<{width}} {row[1]:>12.6g} {row[2]:>12.6g} {row[3]:>9.3f} {row[4]:>9.3g}"
            )
        return lines

    def __str__(self) -> str:
        r = self.result
        coef = np.asarray(r.coef)
        arrays = [coef] + [
            np.full(coef.shape, np.nan) if a is None else np.asarray(a)
            for a in (r.stderr, r.zvalues, r.pvalues)
        ]
        rule = "=" * 78
        link = getattr(r.link, "name", type(r.link).__name__)
        head = [
            rule,
            f"{'Generalized linear model':<40}{'Family:':<12}{r.family.name}",
            f"{'Link:':<20}{link:<20}{'Information:':<20}{r.information}",
            f"{'No. observations:':<20}{int(r.nobs):<20}{'Df residuals:':<20}{float(r.df_resid):g}",
            f"{'Log-likelihood:':<20}{float(r.loglik):<20.6g}{'Scale:':<20}{float(r.scale):.6g}",
            f"{'Deviance:':<20}{float(r.deviance):<20.6g}"
            f"{'Null deviance:':<20}{float(r.null_deviance):.6g}",
            f"{'AIC:':<20}{float(r.aic):<20.6g}{'BIC:':<20}{float(r.bic):.6g}",
            f"{'Iterations:':<20}{int(r.n_iter):<20}{'Converged:':<20}{bool(r.converged)}",
            f"{'Covariance:':<20}{r.cov_type}",
            *(
                [
                    f"{'Theta:':<20}{float(r.theta):<20.6g}{'Std. Err.:':<20}"
                    f"{float(r.theta_stderr):.6g}"
                ]
                if r.theta is not None
                else []
            ),  # fmt: skip
            rule,
        ]
        body = []
        if arrays[0].ndim == 1:
            body += self._table(*arrays, self.names)
        else:
            labels = r.family.natural_parameter_names()
            for j, label in enumerate(labels):
                body += [label] + self._table(*(a[:, j] for a in arrays), self.names)
        return "\n".join(head + body + [rule, f"Solver: {r.message}"])

    def __repr__(self) -> str:
        return str(self)
