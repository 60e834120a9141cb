r"""Comparing fitted GLMs: the likelihood-ratio test of two nested fits (R's
``lmtest::lrtest``), the analysis of deviance of a sequence of them (R's ``anova.glm``), and the
Wald test of linear hypotheses on one fit's coefficients.

Notation: a fit has ``rank = n_obs - df_resid`` estimated coefficients (``p`` times the family's
natural rank) and ``k = rank (+ 1 for an estimated dispersion)`` parameters (as in its `aic`),
log-likelihood ``l``, deviance ``D`` and dispersion ``phi`` (`GLMResult.scale`).

**What can be checked.** A `GLMResult` keeps no data, so these functions check only what the
fits carry: that each is a single fit (not batched), that all have the same family class and
fixed family parameters (`Binomial` trials, `NegativeBinomial` ``r``, ...; the dispersion of a
family that estimates it is not compared), the same ``n_obs``, different numbers of parameters,
and that a fit with more parameters has a deviance (log-likelihood) no worse than one with
fewer, up to ``sqrt(eps) (1 + |D|)``. They cannot check that the fits used the same rows,
responses, weights and offset, that the smaller design's columns lie in the span of the larger
one's (true nesting), that there was no ridge penalty (``l2 > 0`` makes these tests
approximate), nor that the fits converged: that is the caller's to make sure of. Different
links are allowed (the comparison is then of non-nested models and only heuristic).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._distributions import chi2_sf, f_sf
from ._misc import check_choice, is_concrete
from ._result import GLMResult


class TestResult(NamedTuple):
    """A test's ``statistic``, its degrees of freedom ``df`` and its ``pvalue``."""

    statistic: Float[Array, ""]
    df: Float[Array, ""]
    pvalue: Float[Array, ""]


def _fixed_family(fit: GLMResult):
    """The fit's family with an estimated dispersion set to 1 (it is not compared)."""
    family = fit.family
    return family.with_dispersion(1.0) if family.estimates_dispersion else family


def _check_fits(fits: dict[str, GLMResult]) -> None:
    """``ValueError`` unless the named fits are single fits of the same family and, where
    readable here, the same fixed family parameters and ``n_obs``."""
    for name, fit in fits.items():
        if not isinstance(fit, GLMResult):
            raise ValueError(f"`{name}` must be a GLMResult, got {type(fit).__name__}")
        if jnp.ndim(fit.loglik) != 0:
            raise ValueError(
                f"`{name}` is a batch of {jnp.shape(fit.loglik)} fits: index it (or map the "
                "comparison over the batch with jax.vmap)"
            )
    (first, ref), *rest = fits.items()
    ref_family = _fixed_family(ref)
    leaves, treedef = jax.tree_util.tree_flatten(ref_family)
    for name, fit in rest:
        family = _fixed_family(fit)
        other, other_def = jax.tree_util.tree_flatten(family)
        same = other_def == treedef and all(
            not (is_concrete(a) and is_concrete(b)) or np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(leaves, other, strict=True)
        )
        if not same:
            raise ValueError(
                f"`{name}` and `{first}` must have the same family and family parameters, got "
                f"{family!r} and {ref_family!r}"
            )
        if is_concrete(fit.nobs) and is_concrete(ref.nobs) and int(fit.nobs) != int(ref.nobs):
            raise ValueError(
                f"`{name}` and `{first}` must be fitted to the same observations, got "
                f"nobs {int(fit.nobs)} and {int(ref.nobs)}"
            )


def _rounding(value) -> float:
    """The rounding allowed in a deviance or log-likelihood ``value`` when checking nesting."""
    return float(np.sqrt(jnp.finfo(jnp.asarray(value).dtype).eps) * (1 + abs(float(value))))


def lr_test(restricted: GLMResult, full: GLMResult) -> TestResult:
    r"""The likelihood-ratio test of a `restricted` fit nested in a `full` one, as R's
    ``lmtest::lrtest``:

    $$\text{statistic} = 2 (l_\text{full} - l_\text{restricted}), \qquad
    \text{df} = k_\text{full} - k_\text{restricted},$$

    with the p-value ``P(chi2_df > statistic)``. With an estimated dispersion each ``l`` is at
    its own R dispersion (`GLMResult.loglik`); `anova` gives the F test instead. For a fixed
    dispersion the statistic is the difference of the deviances.

    Pure in the fits' arrays, so ``jax.vmap(lr_test)`` compares batches of fits (the checks
    that need values are then skipped). The module docstring lists what can be checked.

    **Arguments:** `restricted`, `full`: single `GLMResult` of the same family on the same data;
    `restricted` must have fewer parameters.

    **Returns:** a `TestResult` ``(statistic, df, pvalue)`` of scalars.

    ```python
    small = gj.fit_glm(X[:, :2], y, gj.Poisson())
    big = gj.fit_glm(X, y, gj.Poisson())
    statistic, df, pvalue = gj.lr_test(small, big)
    ```
    """
    _check_fits({"restricted": restricted, "full": full})
    df = restricted.df_resid - full.df_resid
    if is_concrete(df):
        if not df > 0:
            raise ValueError(
                "`restricted` must have fewer parameters than `full`, got residual df "
                f"{float(restricted.df_resid):g} and {float(full.df_resid):g}"
            )
        if float(full.loglik) < float(restricted.loglik) - _rounding(restricted.loglik):
            raise ValueError(
                "`restricted` must be nested in `full`: its log-likelihood "
                f"{float(restricted.loglik):.10g} exceeds `full`'s {float(full.loglik):.10g}"
            )
    statistic = 2 * (full.loglik - restricted.loglik)
    return TestResult(statistic, df, chi2_sf(statistic, df))


class Anova:
    r"""The analysis-of-deviance table of `anova` (``str()`` or ``print`` it), as R's
    "Analysis of Deviance Table". Its columns are numpy arrays, one entry per fit, in the
    order given (the first row's differences and tests are NaN):

    - `resid_df`, `resid_dev`: each fit's `df_resid` and `deviance`;
    - `df`, `deviance`: ``df_resid`` and ``D`` of the previous fit minus this fit's (R's "Df",
      "Deviance");
    - `F` (``test="F"``; else ``None``), `pvalue` (R's "Pr(>F)" or "Pr(>Chi)").

    Also `test` (``"Chisq"`` or ``"F"``), `dispersion` (the ``phi`` used), `family` (its name)
    and `descriptions` (a line per fit).
    """

    def __init__(self, *, resid_df, resid_dev, df, deviance, F, pvalue, test, dispersion,
                 family, descriptions):  # fmt: skip
        self.resid_df = resid_df
        self.resid_dev = resid_dev
        self.df = df
        self.deviance = deviance
        self.F = F
        self.pvalue = pvalue
        self.test = test
        self.dispersion = dispersion
        self.family = family
        self.descriptions = descriptions

    def __str__(self) -> str:
        tests = [("F", self.F, ".4g"), ("Pr(>F)", self.pvalue, ".4g")]
        columns = [
            ("Resid. Df", self.resid_df, "g"),
            ("Resid. Dev", self.resid_dev, ".6g"),
            ("Df", self.df, "g"),
            ("Deviance", self.deviance, ".6g"),
            *(tests if self.test == "F" else [("Pr(>Chi)", self.pvalue, ".4g")]),
        ]
        texts = [
            [head] + ["" if np.isnan(v) else f"{v:{fmt}}" for v in values]
            for head, values, fmt in columns
        ]
        texts = [[t.rjust(max(map(len, col))) for t in col] for col in texts]
        labels = [""] + [str(i) for i in range(1, len(self.resid_df) + 1)]
        width = max(map(len, labels))
        rows = [
            " ".join([label.ljust(width), *cells])
            for label, *cells in zip(labels, *texts, strict=True)
        ]
        lines = [
            "Analysis of Deviance Table",
            "",
            f"Family: {self.family}; test: {self.test}; dispersion: {self.dispersion:.6g}",
            *(f"Model {i}: {text}" for i, text in enumerate(self.descriptions, start=1)),
            "",
            *rows,
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def anova(*fits: GLMResult, test: str | None = None) -> Anova:
    r"""The analysis of deviance of a sequence of nested fits, as R's ``anova(fit_1, fit_2,
    ..., test=test)`` (``anova.glmlist``).

    Row ``j > 1`` compares fit ``j`` with fit ``j - 1``: ``Df_j = df_{j-1} - df_j`` (residual
    df) and ``Deviance_j = D_{j-1} - D_j``. With ``phi`` the dispersion of the largest fit (the
    first with the fewest residual df; 1 when the dispersion is fixed):

    - ``test="Chisq"`` (or R's synonym ``"LRT"``): ``P(chi2_{|Df|} > Deviance / (phi
      sign(Df)))``;
    - ``test="F"``: ``F = Deviance / (Df phi)`` and ``P(F_{|Df|, df_big} > F)`` with ``df_big``
      the largest fit's residual df; only for families that estimate their dispersion.

    Default: ``"F"`` when the dispersion is estimated (`GLMResult.estimated_dispersion`), else
    ``"Chisq"``. The fits may come in any order (R's rule: an order with decreasing
    parameters gives negative ``Df`` and the same tests); they must differ in the number of
    parameters. The module docstring lists what can be checked.

    **Arguments:** `fits`: at least two single `GLMResult` of the same family on the same data;
    `test`: ``None``, ``"Chisq"``, ``"LRT"`` or ``"F"``.

    **Returns:** an `Anova` table (printable; columns as numpy arrays).

    ```python
    fits = [gj.fit_glm(X[:, :c], y, gj.Poisson()) for c in (1, 2, 4)]
    print(gj.anova(*fits))
    ```
    """
    if len(fits) < 2:
        raise ValueError(f"`anova` needs at least 2 fits, got {len(fits)}")
    _check_fits({f"fits[{i}]": fit for i, fit in enumerate(fits)})
    if not all(is_concrete(f.deviance) for f in fits):
        raise ValueError("`anova` needs concrete fits (not traced inside jax.jit or jax.vmap)")
    estimated = fits[0].estimated_dispersion
    if test is None:
        test = "F" if estimated else "Chisq"
    check_choice(test, "test", ("Chisq", "LRT", "F"))
    if test == "F" and not estimated:
        raise ValueError(
            f"`test='F'` needs an estimated dispersion, but {fits[0].family.name} has a fixed "
            "one (R warns that this is inappropriate): use test='Chisq'"
        )
    dtype = jnp.asarray(fits[0].deviance).dtype
    resid_df = np.array([float(f.df_resid) for f in fits])
    resid_dev = np.array([float(f.deviance) for f in fits])
    by_size = np.argsort(-resid_df, kind="stable")
    for small, big in zip(by_size[:-1], by_size[1:], strict=True):
        if resid_df[small] == resid_df[big]:
            raise ValueError(
                f"`fits[{small}]` and `fits[{big}]` have the same number of parameters "
                f"(residual df {resid_df[big]:g}): nested fits must differ in it"
            )
        if resid_dev[big] > resid_dev[small] + _rounding(fits[small].deviance):
            raise ValueError(
                f"`fits[{small}]` must be nested in `fits[{big}]` (fewer parameters), but its "
                f"deviance {resid_dev[small]:.10g} is below {resid_dev[big]:.10g}"
            )
    largest = fits[int(np.argmin(resid_df))]
    dispersion = float(largest.scale)
    df = np.concatenate([[np.nan], -np.diff(resid_df)])
    deviance = np.concatenate([[np.nan], -np.diff(resid_dev)])
    # one scalar at a time: a new shape would compile the incomplete gamma (beta) anew
    F = None
    if test == "F":
        F = deviance / df / dispersion
        tails = [
            f_sf(jnp.asarray(f, dtype), abs(d), largest.df_resid)
            for f, d in zip(F[1:], df[1:], strict=True)
        ]
    else:
        chi2 = deviance / dispersion * np.sign(df)
        tails = [
            chi2_sf(jnp.asarray(x, dtype), abs(d)) for x, d in zip(chi2[1:], df[1:], strict=True)
        ]
    descriptions = [
        f"{f.coef.shape[0]} coefficient{'s' if f.coef.shape[0] != 1 else ''}, "
        f"link {getattr(f.link, 'name', type(f.link).__name__)}"
        for f in fits
    ]
    return Anova(
        resid_df=resid_df, resid_dev=resid_dev, df=df, deviance=deviance, F=F,
        pvalue=np.array([np.nan, *map(float, tails)]),
        test="F" if test == "F" else "Chisq", dispersion=dispersion,
        family=fits[0].family.name, descriptions=descriptions,
    )  # fmt: skip


def wald_test(
    fit: GLMResult, R: Float[ArrayLike, "r q"] | Float[ArrayLike, " q"], q=None
) -> TestResult:
    r"""The Wald test of ``R vec(coef) = q`` (``vec`` row-major, as `GLMResult.cov`):

    $$W = (R b - q)^\top (R \, \mathrm{cov} \, R^\top)^{-1} (R b - q) \sim \chi^2_r$$

    under the hypothesis, ``r`` the rows of ``R`` (linearly independent). ``cov`` is the fit's
    covariance, so the test follows its `cov_type` (robust ones included) and its scaling by
    an estimated dispersion; with one row ``W`` is the square of the coefficient's z (t) value
    for ``R = e_j``, ``q = 0``. Works under ``jax.vmap`` over fits.

    **Arguments:** `fit`: a single `GLMResult` with a covariance; `R`: ``(r, q)`` or one row
    ``(q,)``, ``q = coef.size``; `q`: ``(r,)``, default zeros.

    **Returns:** a `TestResult` ``(statistic, df, pvalue)`` (``df = r``).
    """
    if fit.cov is None:
        raise ValueError("`wald_test` needs the covariance: fit with covariance=True")
    if fit.cov.ndim != 2:
        raise ValueError("`wald_test` needs a single fit: index a batched result first")
    dtype, size = fit.cov.dtype, fit.cov.shape[-1]
    R = jnp.asarray(R, dtype)
    R = R[None] if R.ndim == 1 else R
    if R.ndim != 2 or R.shape[0] == 0 or R.shape[1] != size:
        raise ValueError(f"`R` must have shape (r, {size}) or ({size},), got {jnp.shape(R)}")
    if is_concrete(R):
        if not np.all(np.isfinite(np.asarray(R))):
            raise ValueError("`R` must be finite")
        if np.linalg.matrix_rank(np.asarray(R)) < R.shape[0]:
            raise ValueError(f"`R` must have {R.shape[0]} linearly independent rows")
    r = R.shape[0]
    q = jnp.zeros(r, dtype) if q is None else jnp.asarray(q, dtype)
    if q.shape != (r,):
        raise ValueError(f"`q` must have shape ({r},) (one entry per row of `R`), got {q.shape}")
    d = R @ fit.coef.reshape(-1) - q
    statistic = d @ jnp.linalg.solve(R @ fit.cov @ R.T, d)
    df = jnp.asarray(r, dtype)
    return TestResult(statistic, df, chi2_sf(statistic, df))
