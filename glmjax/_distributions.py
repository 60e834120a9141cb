r"""The reference distributions of the tests and intervals (normal, Student's t, chi-square, F):
tail probabilities and quantiles in pure JAX, so p-values and intervals work under ``jax.jit``
and ``jax.vmap`` like every other result.

- Normal: ``P(|Z| > z) = erfc(|z| / sqrt 2)``, quantile ``ndtri``.
- Student's t with ``nu`` degrees of freedom: ``P(|T| > t) = I_{nu / (nu + t^2)}(nu/2, 1/2)``
  (the regularised incomplete beta function); the quantile by Newton's method
  (`t_quantile`).
- Chi-square with ``k`` degrees of freedom: ``P(X > x) = Q(k/2, x/2)`` (the regularised upper
  incomplete gamma function).
- F with ``(d1, d2)``: ``P(F > f) = I_{d2 / (d2 + d1 f)}(d2/2, d1/2)``.
"""

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.special import betainc, erfc, gammaincc, gammaln, ndtri
from jaxtyping import Array, ArrayLike, Float

from ._misc import softplus

_NEWTON_STEPS = 40
_EXPANSION_DF = 1e5
# the terms g_k(z) / nu^k of the Cornish-Fisher expansion of the t quantile in the normal one:
# g_k = z P_k(z^2) / d_k (Abramowitz and Stegun 26.7.5), as (P_k's coefficients, d_k)
_CORNISH_FISHER = (
    ((1, 1), 4),
    ((5, 16, 3), 96),
    ((3, 19, 17, -15), 384),
    ((79, 776, 1482, -1920, -945), 92160),
)


def normal_two_sided(z: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """``P(|Z| > |z|)`` for a standard normal ``Z``."""
    return erfc(jnp.abs(z) / jnp.sqrt(2.0))


def t_two_sided(t: Float[ArrayLike, "*b"], df: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """``P(|T| > |t|)`` for Student's ``T`` with ``df`` degrees of freedom."""
    t, df = jnp.asarray(t), jnp.asarray(df, jnp.result_type(t, float))
    return betainc(0.5 * df, 0.5, df / (df + t**2))


def chi2_sf(x: Float[ArrayLike, "*b"], df: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """``P(X > x)`` for a chi-square ``X`` with ``df`` degrees of freedom."""
    x = jnp.asarray(x)
    return gammaincc(0.5 * jnp.asarray(df, x.dtype), 0.5 * jnp.maximum(x, 0))


def f_sf(x, df1, df2) -> Float[Array, "*b"]:
    """``P(F > x)`` for an F-distributed ``F`` with ``(df1, df2)`` degrees of freedom."""
    x = jnp.maximum(jnp.asarray(x), 0)
    df1, df2 = jnp.asarray(df1, x.dtype), jnp.asarray(df2, x.dtype)
    return betainc(0.5 * df2, 0.5 * df1, df2 / (df2 + df1 * x))


def normal_quantile(p: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """The standard normal quantile ``Phi^-1(p)``."""
    return ndtri(jnp.asarray(p, jnp.result_type(p, float)))


def t_quantile(p: Float[ArrayLike, "*b"], df: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Student's t quantile ``F_nu^-1(p)`` (``-/+inf`` at ``p = 0, 1``; NaN for ``nu <= 0``).

    Solved for ``x >= 0`` at the smaller tail ``r = min(p, 1 - p)`` by Newton's method on a
    function that is concave and monotone in the variable solved for, so that the iterates
    approach the root from one side and cannot diverge:

    - ``r > 1/4``: ``F(x) - 1/2 = I_{x^2 / (nu + x^2)}(1/2, nu/2) / 2`` against ``x`` (concave:
      the density decreases right of 0), from ``x = 0``, equated to ``|p - 1/2|`` (exact);
    - ``r <= 1/4``: ``log S(x) = log(I_{nu / (nu + x^2)}(nu/2, 1/2) / 2)`` against ``log x``
      (concave: ``x f(x) / S(x)`` increases, to ``nu`` for the power tail), from the
      Cornish-Fisher expansion of the normal quantile; each tail probability is evaluated
      directly, without ``1 - S``.

    For ``nu > 1e5`` the expansion itself: its error ``O(z^9 / nu^4)`` is below rounding there.
    """
    p = jnp.asarray(p, jnp.result_type(p, float))
    p, df = jnp.broadcast_arrays(p, jnp.asarray(df, p.dtype))
    r = jnp.minimum(p, 1 - p)
    z = -ndtri(r)
    nu = jnp.where(jnp.isfinite(df) & (df > 0), df, 1.0)
    expansion = z + sum(
        jnp.polyval(jnp.asarray(c, p.dtype), z**2) * z / d / nu**k
        for k, (c, d) in enumerate(_CORNISH_FISHER, start=1)
    )
    log_norm = gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu * jnp.pi)

    def log_pdf_at_log(s):
        # log1p(x^2 / nu) as softplus(2 s - log nu): no overflow of x^2 for huge quantiles
        return log_norm - 0.5 * (nu + 1) * softplus(2 * s - jnp.log(nu))

    def centre(_, x):
        f = 0.5 * betainc(0.5, 0.5 * nu, x**2 / (nu + x**2)) - jnp.abs(p - 0.5)
        return x - f / jnp.exp(log_pdf_at_log(jnp.log(x)))

    def tail(_, s):
        log_sf = jnp.log(0.5 * betainc(0.5 * nu, 0.5, jax.nn.sigmoid(jnp.log(nu) - 2 * s)))
        slope = -jnp.exp(s + log_pdf_at_log(s) - log_sf)
        return s - (log_sf - jnp.log(r)) / slope

    in_tail = r <= 0.25
    s0 = jnp.log(jnp.maximum(jnp.where(in_tail, expansion, 1.0), 0.5))
    s = lax.fori_loop(0, _NEWTON_STEPS, tail, s0)
    x = lax.fori_loop(0, _NEWTON_STEPS, centre, jnp.zeros_like(r))
    x = jnp.where(df > _EXPANSION_DF, expansion, jnp.where(in_tail, jnp.exp(s), x))
    x = jnp.where(df > 0, jnp.where(r > 0, x, jnp.inf), jnp.nan)
    return jnp.where(p >= 0.5, x, -x)


def two_sided_critical(alpha, df=None) -> Float[Array, "*b"]:
    """The ``1 - alpha/2`` quantile of the standard normal (``df=None``) or of Student's t with
    ``df`` degrees of freedom: the half-width, in standard errors, of a ``1 - alpha`` Wald
    interval."""
    upper = 1 - 0.5 * jnp.asarray(alpha, jnp.result_type(alpha, float))
    return normal_quantile(upper) if df is None else t_quantile(upper, df)
