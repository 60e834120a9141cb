r"""Maximum-likelihood dispersion parameters given fitted means: the negative binomial's ``theta``
(R's ``MASS::theta.ml``, which ``MASS::glm.nb`` alternates with the coefficient fit) and the
Gamma shape (``MASS::gamma.shape``), with their standard errors. Pure functions of
``(y, mu, weights)``: they work under ``jax.jit`` and ``jax.vmap`` (one estimate per gene, say),
keep the inputs' floating dtype, and report degenerate data with a `DispersionResult` code
instead of NaN.

**Negative binomial** (mean ``mu``, variance ``mu + mu^2 / theta``; prior weights ``w_i`` are
frequency weights, as ``glm.nb``'s). The log-likelihood at fixed means (`nb_loglik`, ``glm.nb``'s
``loglik``, so ``glm.nb``'s ``twologlik`` is twice it) is

$$\ell(\theta) = \sum_i w_i \big[\log\Gamma(y_i + \theta) - \log\Gamma(\theta) - \log y_i!
+ \theta \log\theta + y_i \log\mu_i - (\theta + y_i)\log(\theta + \mu_i)\big],$$

evaluated as the Poisson term plus what the overdispersion adds,

$$\ell_i = \underbrace{y_i\log\mu_i - \mu_i - \log y_i!}_{\text{Poisson}}
+ A(\theta, y_i) - \theta\,\mathrm{log1pmx}(\mu_i/\theta) - y_i \log(1 + \mu_i/\theta),
\qquad A(\theta, y) = \log\Gamma(y + \theta) - \log\Gamma(\theta) - y\log\theta,$$

with ``log1pmx(x) = log(1 + x) - x`` and, for ``theta >= 10``, ``A`` from Stirling's series
(``(theta + y - 1/2) log(1 + y/theta) - y`` plus the difference of the series' tails), so that
no term grows with ``theta``: the extra part tends to ``((y - mu)^2 - y) / (2 theta)`` and
``theta = inf`` gives the Poisson log-likelihood exactly. (Written directly, ``lgamma(y + theta)
- lgamma(theta)`` loses ``log10(theta)`` digits, and the score, ``O(1/theta^2)``, is lost
entirely in float32 beyond ``theta ~ 100``.)

The score and curvature are written in closed form, in the same cancellation-free way (the
iteration needs only them; `tests/test_dispersion.py` checks them against exact sums in
60-digit decimals): with ``t = y/theta``, ``v = mu/(theta + mu)``,

$$\frac{\partial\ell_i}{\partial\theta} = A_1 + \mathrm{log1pmx}(-v) + t v, \qquad
\frac{\partial^2\ell_i}{\partial\theta^2} = A_2 + \frac{v}{\theta}\,\big(v - t(2 - v)\big),$$

``A_1 = digamma(theta + y) - digamma(theta) - t`` and ``A_2 = trigamma(theta + y) -
trigamma(theta) + t / theta``, for ``theta >= 10`` from the asymptotic series of digamma and
trigamma (``A_1 = log1pmx(t) + t / (2 (theta + y)) - [T_1(theta + y) - T_1(theta)]``,
``A_2 = t^2/(theta + y) - t (2 + t) / (2 (theta + y)^2) + [T_2(theta + y) - T_2(theta)]``,
``T_1``, ``T_2`` the series' tails beyond ``1/(2x)`` and ``1/(2x^2)``; below 10, the same at
``theta + 10`` plus the sums of the recurrences ``psi(x) = psi(x + 1) - 1/x``, ``psi'(x) =
psi'(x + 1) + 1/x^2``). Written by hand rather than by autodiff of the stable log-likelihood,
which compiles several times slower (a fit compiles these once per shape; the general
``polygamma`` alone would add its zeta series).

*When the estimate is finite.* As ``theta -> inf``, ``ell = ell_Poisson + S / (2 theta) +
O(theta^-2)`` with ``S = sum_i w_i [(y_i - mu_i)^2 - y_i]``. If ``S <= 0`` (the counts are not
overdispersed relative to ``mu``: Poisson or binomial-like data) the likelihood increases towards
its Poisson limit and `theta_ml` reports `DispersionResult.infinite` with ``theta = inf`` without
iterating — for a constant mean this is exactly the case in which no finite maximum exists
(the maximum-likelihood ``theta`` is finite, and unique, iff the (biased) sample variance exceeds
the mean; Anscombe 1950, Levin & Reeds 1977). If ``S > 0`` and some ``y_i > 0``, ``ell -> -inf``
as ``theta -> 0`` and exceeds its limit at infinity, so a finite maximum exists; `theta_ml` finds
the root where the score changes sign from + to - (a local maximum; the profile is unimodal in
every case we know of). If every count with positive weight is 0, ``ell`` increases as
``theta -> 0`` (R: "estimate truncated at zero"): `DispersionResult.zero`, ``theta = 0``.

**Gamma shape** ``alpha`` (``MASS::gamma.shape``: row ``i`` has shape ``w_i alpha``, i.e.
dispersion ``1 / (w_i alpha)``, as R's Gamma family treats prior weights in the coefficient
fit; note that R's ``logLik`` of a Gamma ``glm`` instead multiplies log-densities by ``w_i``):

$$\ell(\alpha) = \sum_i \big[k_i\,\mathrm{log1pmx}(y_i/\mu_i - 1) + k_i\log k_i - k_i
- \log\Gamma(k_i) - \log y_i\big], \qquad k_i = w_i\alpha,$$

whose score ``sum_i w_i [log1pmx(y_i/mu_i - 1) + log k_i - digamma(k_i)]`` decreases strictly
in ``alpha`` from ``+inf`` to ``-D / 2`` (``D`` the Gamma deviance), so the maximum is finite
and unique iff ``D > 0``; ``D = 0`` (every ``y_i = mu_i``) gives `DispersionResult.infinite`.
The curvature is ``sum_i w_i^2 (1 / k_i - trigamma(k_i))``; for ``k >= 10``, ``log k -
digamma(k) = 1/(2k) + T_1(k)`` and ``1/k - trigamma(k) = -1/(2k^2) - T_2(k)``, which keep their
relative accuracy at large shapes (directly, they lose ``log10(k)`` digits).

**The iteration** (both): Newton's method on ``s = log theta`` (``log alpha``), safeguarded as
``rtsafe``: the points where the score was positive / negative bracket the root; a Newton step is
taken when the curvature is negative and the step stays inside the bracket (and, while one side
is still open, within ``3`` in ``s``, a factor ``e^3``); otherwise the bracket is bisected, or,
while one side is open, ``s`` moves by ``3`` towards the root. It stops when a step changes
``s`` by at most ``tol`` (a relative change of the estimate; the estimate returned is the one
after that step, which Newton's quadratic convergence leaves ``O(tol^2)`` from the root).

**Standard errors** (`theta_stderr`, `gamma_shape_stderr`) are ``1 / sqrt(-d^2 ell / d theta^2)``
at the estimate: the observed information in ``theta`` alone, *conditional on the means* — they
ignore the uncertainty of the coefficients, exactly as ``glm.nb``'s ``SE.theta`` and
``gamma.shape``'s ``SE`` do (for both families and any link the expected information between the
coefficients and the dispersion parameter is zero — the score in ``mu`` is proportional to
``y - mu`` — so this is also the large-sample joint standard error).

**Accuracy** (tests/test_dispersion.py compares with R 4.2.2 / MASS 7.3.58, scipy and exact
sums): in float64 ``theta`` and the shape agree with R's tightly converged values to ~1e-13
relative and with the root of scipy's score to ~1e-14; the score and curvature with exact sums
to ~1e-13 for ``theta`` from 0.3 to 1e6; the log-likelihood is accurate to a few ``eps`` times
``sum_i w_i |log p_i|`` for every ``theta`` up to ``inf``. In float32, ``theta`` and its
standard error agree with R to ~5e-6 on R's quine and medpar data (up to ~6e-5 for very flat
likelihoods, standard error ~ theta).

References: Venables & Ripley (2002), *Modern Applied Statistics with S*, 7.4 (``glm.nb``,
``theta.ml``) and 7.6 (``gamma.shape``); Levin & Reeds (1977), *Ann. Statist.* 5, 79-87.
"""

import enum
import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, xlogy
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ._misc import as_float, check_int, check_positive, is_concrete

# Asymptotic series from x = 10, where six terms leave < 2e-15 (relative):
#   log Gamma(x) = (x - 1/2) log x - x + log(2 pi)/2 + sum_j B_2j / (2j (2j-1)) x^(1-2j),
#   digamma(x)   = log x - 1/(2x) - T_1(x),    T_1(x) = sum_j B_2j / (2j) x^(-2j),
#   trigamma(x)  = 1/x + 1/(2x^2) + T_2(x),    T_2(x) = sum_j B_2j x^(-2j-1).
_SERIES_FROM = 10.0
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730)  # B_2, ..., B_12
# log1pmx: the atanh series below |x| = 0.25 (u = x / (2 + x), u^2 < 0.021: 10 terms reach
# eps); above, log1p(x) - x loses at most a factor 10 to cancellation.
_LOG1PMX_SERIES_BELOW = 0.25
_ATANH_TERMS = 10
_MAX_STEP = 3.0  # largest move of log theta while the root is not yet bracketed


class DispersionResult(enum.IntEnum):
    """How a dispersion estimate ended (the ``result`` of a `DispersionEstimate`, an int32 array
    so that ``jax.vmap`` works); ``DispersionResult(int(r)).message`` says it in words."""

    successful = 0
    max_iter_reached = 1
    infinite = 2
    zero = 3
    invalid_data = 4
    nonfinite = 5

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    DispersionResult.successful: "converged: the last Newton step changed the estimate by a "
    "relative `tol` or less",
    DispersionResult.max_iter_reached: "`max_iter` iterations reached before convergence; the "
    "value is the last iterate",
    DispersionResult.infinite: "no finite maximum: the likelihood keeps increasing as the "
    "parameter grows, towards its limit at infinity (negative binomial: the counts are not "
    "overdispersed relative to mu, sum w ((y - mu)^2 - y) <= 0, and the Poisson limit "
    "theta = inf is the estimate; use a Poisson model. Gamma: every y equals mu, the shape is "
    "infinite). The value is inf, its standard error inf",
    DispersionResult.zero: "every count with positive weight is 0: the likelihood increases as "
    "theta -> 0 (R: 'estimate truncated at zero'); the value is 0, its standard error inf",
    DispersionResult.invalid_data: "invalid data: non-finite values, negative weights, no "
    "positive weight, mu <= 0, or y outside the support (negative counts; Gamma y <= 0) in a "
    "row with positive weight; the value is NaN",
    DispersionResult.nonfinite: "the score or its curvature became non-finite during the "
    "iteration; the value is NaN",
}


class DispersionEstimate(NamedTuple):
    """A maximum-likelihood dispersion parameter given the means (a pytree; under ``jax.vmap``
    every field gains the batch axis).

    - `value`: the estimate (``inf`` / ``0`` / NaN for the boundary and invalid cases, see
      `DispersionResult`);
    - `stderr`: ``1 / sqrt(observed information)`` at `value`, conditional on the means;
    - `result`: a `DispersionResult` code;
    - `n_iter`: Newton steps taken (0 when the data decided the result without any).
    """

    value: Float[Array, ""]
    stderr: Float[Array, ""]
    result: Int[Array, ""]
    n_iter: Int[Array, ""]


# ----- numerically careful pieces -------------------------------------------------------------


def _log1pmx(x: Float[Array, "*b"]) -> Float[Array, "*b"]:
    """``log(1 + x) - x`` for ``x > -1``, to a few ulps near 0 (where it is ``-x^2/2``): with
    ``u = x / (2 + x)``, ``log(1 + x) = 2 atanh(u)`` and ``2u - x = -u x``, so
    ``log1pmx(x) = -u x + 2 u^3 sum_k u^(2k) / (2k + 3)``."""
    small = jnp.abs(x) < _LOG1PMX_SERIES_BELOW
    xs = jnp.where(small, x, 0.0)
    xl = jnp.where(small, 0.0, x)
    u = xs / (2.0 + xs)
    u2 = u * u
    acc = jnp.zeros_like(u)
    for k in reversed(range(_ATANH_TERMS)):
        acc = acc * u2 + 1.0 / (2 * k + 3)
    return jnp.where(small, -u * xs + 2.0 * u * u2 * acc, jnp.log1p(xl) - xl)


def _series(x, coefficients, first_power: int):
    """``sum_j coefficients[j] x^-(first_power + 2j)`` by Horner's rule in ``1/x^2``."""
    z = 1.0 / (x * x)
    acc = jnp.zeros_like(x)
    for c in reversed(coefficients):
        acc = acc * z + c
    return acc * x**-first_power


def _stirling_tail(x):
    """``log Gamma(x) - [(x - 1/2) log x - x + log(2 pi)/2]``, ``x >= 10``."""
    return _series(x, [b / (2 * j * (2 * j - 1)) for j, b in enumerate(_BERNOULLI, 1)], 1)


def _digamma_tail(x):
    """``T_1(x) = log x - 1/(2x) - digamma(x)``, ``x >= 10``."""
    return _series(x, [b / (2 * j) for j, b in enumerate(_BERNOULLI, 1)], 2)


def _trigamma_tail(x):
    """``T_2(x) = trigamma(x) - 1/x - 1/(2x^2)``, ``x >= 10``."""
    return _series(x, list(_BERNOULLI), 3)


def _split(x):
    """``x >= 10``, and ``x`` made safe for each branch (10 below, 1 above), so that neither
    branch of a ``where`` sees an input it was not written for."""
    large = x >= _SERIES_FROM
    return large, jnp.where(large, x, _SERIES_FROM), jnp.where(large, 1.0, x)


# ----- data ------------------------------------------------------------------------------------


class _Rows(NamedTuple):
    y: Array  # responses, 1 where w = 0
    mu: Array  # means, 1 where w = 0
    w: Array  # prior weights, 0 where not positive
    valid: Bool[Array, ""]


def _rows(y, mu, weights, *, positive_y: bool) -> _Rows:
    """The inputs in one floating dtype (the promotion of theirs), rows with ``w = 0`` made
    harmless, and whether the data are valid (see `DispersionResult.invalid_data`)."""
    y, mu = as_float(y), as_float(mu)
    w = jnp.ones_like(mu) if weights is None else as_float(weights)
    dtype = jnp.result_type(y, mu, w)
    y, mu, w = jnp.broadcast_arrays(*(jnp.asarray(a, dtype) for a in (y, mu, w)))
    on = w > 0
    y_ok = (y > 0) if positive_y else (y >= 0)
    valid = (
        jnp.all(jnp.isfinite(w) & (w >= 0))
        & jnp.any(on)
        & jnp.all(~on | (jnp.isfinite(y) & jnp.isfinite(mu) & y_ok & (mu > 0)))
    )
    return _Rows(jnp.where(on, y, 1.0), jnp.where(on, mu, 1.0), jnp.where(on, w, 0.0), valid)


def _weighted_sum(w, values):
    return jnp.sum(jnp.where(w > 0, w * values, 0.0))


# ----- negative binomial ------------------------------------------------------------------------


def _log_gamma_ratio(theta, y):
    """``A(theta, y) = log Gamma(y + theta) - log Gamma(theta) - y log theta``; for
    ``theta >= 10``, with ``t = y / theta``, ``theta [log1pmx(t) + t log1p(t)] - log1p(t) / 2 +
    tail(theta + y) - tail(theta)``, whose terms are all of the size of ``A ~ y (y - 1) /
    (2 theta)`` or smaller (the tails' difference has an absolute error ``~ eps / (12 theta)``);
    below 10, the log-gamma functions directly."""
    large, tl, ts = _split(theta)
    t = y / tl
    lt = jnp.log1p(t)
    tails = _stirling_tail(tl + y) - _stirling_tail(tl)
    series = tl * (_log1pmx(t) + t * lt) - 0.5 * lt + tails
    return jnp.where(large, series, gammaln(y + ts) - gammaln(ts) - y * jnp.log(ts))


def _nb_rows(y, mu, theta):
    """Per-row negative binomial log-likelihood (module docstring); ``theta = inf``: Poisson."""
    finite = jnp.isfinite(theta)
    th = jnp.where(finite, theta, 1.0)
    s = mu / th
    poisson = xlogy(y, mu) - mu - gammaln(y + 1.0)
    extra = _log_gamma_ratio(th, y) - th * _log1pmx(s) - y * jnp.log1p(s)
    return poisson + jnp.where(finite, extra, 0.0)


def _nb_derivatives(rows: _Rows, theta):
    """``(d ell / d theta, d^2 ell / d theta^2)`` summed over rows (module docstring), for a
    finite ``theta > 0``. ``A_1``, ``A_2`` come from the asymptotic series at ``theta' = theta``,
    or ``theta + 10`` below 10 with the recurrences' sums added, their first terms combined
    with ``-y/theta`` and ``+y/theta^2`` so that nothing cancels (for ``y = 0`` both are 0
    exactly)."""
    y, mu = rows.y, rows.mu
    shift = theta < _SERIES_FROM
    tz = theta + jnp.where(shift, _SERIES_FROM, 0.0)
    x = tz + y
    a1 = _log1pmx(y / tz) + y / (2 * tz * x) - (_digamma_tail(x) - _digamma_tail(tz))
    a2 = (y / tz) ** 2 / x - y * (2 * tz + y) / (2 * tz**2 * x**2)
    a2 = a2 + (_trigamma_tail(x) - _trigamma_tail(tz))
    th = jnp.where(shift, theta, 1.0)
    c1 = y / tz - y * (th + y - 1) / (th * (th + y))
    c2 = -y / tz**2 + (y - 1) / th**2 + 1 / (th + y) ** 2
    for j in range(1, int(_SERIES_FROM)):
        c1 = c1 + y / ((th + j) * (th + y + j))
        c2 = c2 - y * (2 * (th + j) + y) / ((th + j) ** 2 * (th + y + j) ** 2)
    v = mu / (theta + mu)
    t = y / theta
    d1 = a1 + jnp.where(shift, c1, 0.0) + _log1pmx(-v) + t * v
    d2 = a2 + jnp.where(shift, c2, 0.0) + v / theta * (v - t * (2.0 - v))
    return _weighted_sum(rows.w, d1), _weighted_sum(rows.w, d2)


@jax.jit
def nb_loglik(
    y: Float[ArrayLike, " n"],
    mu: Float[ArrayLike, " n"],
    weights: Float[ArrayLike, " n"] | None,
    theta: Float[ArrayLike, ""],
) -> Float[Array, ""]:
    r"""The negative binomial log-likelihood ``sum_i w_i log p(y_i; mu_i, theta)`` (module
    docstring), as ``MASS::glm.nb``'s ``loglik``: ``glm.nb``'s ``twologlik`` is twice it and
    ``logLik(fit)`` equals it. Prior weights are frequency weights.

    **Arguments:**

    - `y`: counts ``(n,)`` (non-integer values use the continuous extension through
      ``log Gamma``, as R does).
    - `mu`: means ``(n,)``, positive.
    - `weights`: prior weights ``(n,)``, or ``None`` (all 1); rows with weight 0 are ignored.
    - `theta`: the shape ``theta > 0`` (R's theta, `NegativeBinomial`'s ``r``); ``inf`` gives
      the Poisson log-likelihood.

    **Returns:** a scalar, accurate to a few ``eps * sum_i w_i |log p_i|`` for every ``theta``,
    including ``theta >> mu`` where the textbook formula loses ``log10(theta)`` digits. NaN for
    invalid data (`DispersionResult.invalid_data`) or ``theta <= 0``. Differentiable (in
    ``theta`` and ``mu``).

    ```python
    >>> import jax.numpy as jnp
    >>> y, mu = jnp.array([0.0, 3.0]), jnp.array([1.0, 2.0])
    >>> round(float(nb_loglik(y, mu, None, jnp.inf)), 4)  # Poisson: log(e^-1 * 2^3 e^-2 / 3!)
    -2.7123
    ```
    """
    rows = _rows(y, mu, weights, positive_y=False)
    theta = jnp.asarray(theta, rows.mu.dtype)
    loglik = _weighted_sum(rows.w, _nb_rows(rows.y, rows.mu, theta))
    return jnp.where(rows.valid & (theta > 0), loglik, jnp.nan)


# ----- Gamma shape ------------------------------------------------------------------------------


def _gamma_derivatives(rows: _Rows, shape):
    """``(d ell / d alpha, d^2 ell / d alpha^2)`` of the Gamma log-likelihood in the shape
    (module docstring), summed over rows, for a finite ``alpha > 0``: ``log k - digamma(k)`` and
    ``1/k - trigamma(k)`` from the asymptotic series at ``k`` or, below 10, at ``k + 10`` with
    the recurrences' sums."""
    w = jnp.where(rows.w > 0, rows.w, 1.0)
    k = w * shape
    shift = k < _SERIES_FROM
    kz = k + jnp.where(shift, _SERIES_FROM, 0.0)
    ks = jnp.where(shift, k, 1.0)
    inv = [1.0 / (ks + j) for j in range(int(_SERIES_FROM))]
    h1 = 0.5 / kz + _digamma_tail(kz)
    h1 = h1 + jnp.where(shift, sum(inv) - jnp.log1p(_SERIES_FROM / ks), 0.0)
    h2 = -0.5 / kz**2 - _trigamma_tail(kz)
    h2 = h2 + jnp.where(shift, 1.0 / ks - 1.0 / kz - sum(i * i for i in inv), 0.0)
    fit = _log1pmx((rows.y - rows.mu) / rows.mu)
    return _weighted_sum(rows.w, fit + h1), _weighted_sum(rows.w, w * h2)


def gamma_loglik(
    y: Float[ArrayLike, " n"],
    mu: Float[ArrayLike, " n"],
    weights: Float[ArrayLike, " n"] | None,
    shape: Float[ArrayLike, ""],
) -> Float[Array, ""]:
    r"""The Gamma log-likelihood ``ell(alpha)`` of the module docstring (row ``i`` with shape
    ``k_i = w_i alpha`` and mean ``mu_i``, ``gamma.shape``'s convention): ``sum_i log
    dgamma(y_i, shape = k_i, scale = mu_i / k_i)``. NaN for invalid data or ``shape <= 0``."""
    rows = _rows(y, mu, weights, positive_y=True)
    shape = jnp.asarray(shape, rows.mu.dtype)
    k = jnp.where(rows.w > 0, rows.w, 1.0) * shape
    terms = (
        k * _log1pmx((rows.y - rows.mu) / rows.mu) + xlogy(k, k) - k - gammaln(k)
        - jnp.log(rows.y)
    )  # fmt: skip
    loglik = jnp.sum(jnp.where(rows.w > 0, terms, 0.0))
    return jnp.where(rows.valid & (shape > 0), loglik, jnp.nan)


# ----- standard errors ------------------------------------------------------------------------


def _stderr(derivatives: Callable, value):
    """``1 / sqrt(-ell''(value))``; ``inf`` for ``value`` 0 or ``inf`` (boundary) or without
    negative curvature, NaN for a NaN ``value``."""
    interior = jnp.isfinite(value) & (value > 0)
    _, d2 = derivatives(jnp.where(interior, value, 1.0))
    return _stderr_from(-d2, interior, value)


def _stderr_from(info, interior, value):
    se = jnp.where(info > 0, 1.0 / jnp.sqrt(jnp.where(info > 0, info, 1.0)), jnp.inf)
    return jnp.where(interior, se, jnp.where(jnp.isnan(value), jnp.nan, jnp.inf))


@jax.jit
def theta_stderr(
    y: Float[ArrayLike, " n"],
    mu: Float[ArrayLike, " n"],
    weights: Float[ArrayLike, " n"] | None,
    theta: Float[ArrayLike, ""],
) -> Float[Array, ""]:
    r"""``1 / sqrt(I(theta))`` with ``I(theta) = -d^2 ell / d theta^2`` the observed information
    of `nb_loglik` in ``theta`` at the given means: ``glm.nb``'s ``SE.theta`` (``theta.ml``'s
    ``sqrt(1 / info)``). It is *conditional on* ``mu``: the coefficients' uncertainty is
    ignored (module docstring).

    Arguments as `nb_loglik`. **Returns:** a scalar; ``inf`` when ``theta`` is ``inf`` or ``0``
    or the curvature there is not negative, NaN for invalid data.
    """
    rows = _rows(y, mu, weights, positive_y=False)
    theta = jnp.asarray(theta, rows.mu.dtype)
    se = _stderr(lambda t: _nb_derivatives(rows, t), theta)
    return jnp.where(rows.valid, se, jnp.nan)


@jax.jit
def gamma_shape_stderr(
    y: Float[ArrayLike, " n"],
    mu: Float[ArrayLike, " n"],
    weights: Float[ArrayLike, " n"] | None,
    shape: Float[ArrayLike, ""],
) -> Float[Array, ""]:
    r"""``gamma.shape``'s ``SE``: ``1 / sqrt(sum_i w_i (w_i trigamma(w_i alpha) - 1 / alpha))``,
    the (observed = expected) information in the shape ``alpha`` at the given means,
    conditional on them; accurate for large shapes too, where the difference is
    ``~ 1 / (2 alpha^2)`` per row (module docstring).

    Arguments as `gamma_shape_ml`, plus the `shape`. **Returns:** a scalar (``inf`` for an
    infinite shape, NaN for invalid data).
    """
    rows = _rows(y, mu, weights, positive_y=True)
    shape = jnp.asarray(shape, rows.mu.dtype)
    se = _stderr(lambda a: _gamma_derivatives(rows, a), shape)
    return jnp.where(rows.valid, se, jnp.nan)


# ----- the iteration ----------------------------------------------------------------------------


class _State(NamedTuple):
    s: Array  # log of the parameter
    s_prev: Array  # the previous iterate (s - s_prev: the last step)
    lo: Array  # largest s seen with a positive score (-inf: none yet)
    hi: Array  # smallest s seen with a negative score (+inf: none yet)
    d2: Array  # d^2 ell / d p^2 at p = exp(s)
    n_iter: Array
    done: Array
    code: Array  # the result once done


def _maximise_log_scale(derivatives: Callable, s0, *, done, code, tol, max_iter) -> _State:
    """Safeguarded Newton on ``f(s) = ell(exp(s))`` (module docstring), given ``derivatives(p)
    = (ell'(p), ell''(p))``. ``done``/``code``: the data already decided the result (nothing is
    evaluated for such a member).

    Each iteration evaluates the derivatives at the current ``s`` first and then decides, so
    the loop ends with them at the final ``s`` (the standard error needs no other evaluation),
    one evaluation after the last small step."""
    # theta^4 (in the curvature) stays finite up to the cap: theta <= 3.6e9 in float32
    s_cap = 0.25 * math.log(float(jnp.finfo(s0.dtype).max))

    def cond(st):
        return ~st.done

    def body(st):
        p = jnp.exp(st.s)
        d1, d2 = derivatives(p)
        g = p * d1  # df/ds
        h = p * p * d2 + g  # d^2f/ds^2
        lo = jnp.where(g > 0, st.s, st.lo)
        hi = jnp.where(g < 0, st.s, st.hi)
        bad = ~(jnp.isfinite(g) & jnp.isfinite(h))
        converged = (g == 0) | (jnp.abs(st.s - st.s_prev) <= tol) | (hi - lo <= tol)
        to_inf = (st.s >= s_cap) & (g > 0)
        to_zero = (st.s <= -s_cap) & (g < 0)
        out_of_steps = st.n_iter >= max_iter
        code = jnp.select(
            [bad, converged, to_inf, to_zero, out_of_steps],
            [
                DispersionResult.nonfinite,
                DispersionResult.successful,
                DispersionResult.infinite,
                DispersionResult.zero,
                DispersionResult.max_iter_reached,
            ],
            st.code,
        ).astype(jnp.int32)
        done = bad | converged | to_inf | to_zero | out_of_steps

        newton = st.s - g / jnp.where(h < 0, h, -1.0)
        bracketed = jnp.isfinite(lo) & jnp.isfinite(hi)
        take_newton = (
            (h < 0)
            & (newton >= lo)  # inclusive: a step below the rounding of s lands on s
            & (newton <= hi)
            & (bracketed | (jnp.abs(newton - st.s) <= _MAX_STEP))
        )
        fallback = jnp.where(bracketed, 0.5 * (lo + hi), st.s + jnp.sign(g) * _MAX_STEP)
        s = jnp.clip(jnp.where(take_newton, newton, fallback), -s_cap, s_cap)
        s = jnp.where(done, st.s, s)
        n_iter = st.n_iter + jnp.where(done, 0, 1)
        return _State(s, st.s, lo, hi, d2, n_iter, done, code)

    inf = jnp.full_like(s0, jnp.inf)
    init = _State(
        s=jnp.where(done, 0.0, s0),
        s_prev=-inf,
        lo=-inf,
        hi=inf,
        d2=jnp.full_like(s0, jnp.nan),
        n_iter=jnp.zeros((), jnp.int32),
        done=done,
        code=jnp.asarray(code, jnp.int32),
    )
    return jax.lax.while_loop(cond, body, init)


def _estimate(st: _State) -> DispersionEstimate:
    code = st.code
    interior = (code == DispersionResult.successful) | (code == DispersionResult.max_iter_reached)
    value = jnp.select(
        [interior, code == DispersionResult.infinite, code == DispersionResult.zero],
        [jnp.exp(st.s), jnp.inf, 0.0],
        jnp.nan,
    ).astype(st.s.dtype)
    return DispersionEstimate(value, _stderr_from(-st.d2, interior, value), code, st.n_iter)


def _solve(derivatives, start, *, decided, code, tol, max_iter) -> DispersionEstimate:
    dtype = start.dtype
    tol = math.sqrt(float(jnp.finfo(dtype).eps)) if tol is None else tol
    s0 = jnp.log(jnp.where(start > 0, start, 1.0))
    final = _maximise_log_scale(
        derivatives, s0, done=decided, code=code, tol=tol, max_iter=max_iter
    )
    return _estimate(final)


def _check_iteration(max_iter, tol) -> None:
    """``ValueError`` for a concrete ``max_iter`` that is not an integer >= 0, or a ``tol``
    that is neither ``None`` nor a positive number."""
    if is_concrete(max_iter) and not isinstance(max_iter, jax.Array):
        check_int(max_iter, "max_iter")
    if tol is not None:
        check_positive(tol, "tol")


def theta_ml(
    y: Float[ArrayLike, " n"],
    mu: Float[ArrayLike, " n"],
    weights: Float[ArrayLike, " n"] | None = None,
    *,
    theta0: Float[ArrayLike, ""] | None = None,
    max_iter: int = 100,
    tol: float | None = None,
) -> DispersionEstimate:
    r"""The maximum-likelihood negative binomial ``theta`` given the means, as
    ``MASS::theta.ml(y, mu, sum(w), w)`` (module docstring: the log-likelihood, when the
    estimate is finite, the safeguarded Newton iteration on ``log theta``).

    **Arguments:**

    - `y`: counts ``(n,)``; `mu`: fitted means ``(n,)``, positive; `weights`: prior (frequency)
      weights ``(n,)`` as ``glm.nb``'s, or ``None``. Rows with weight 0 are ignored.
    - `theta0`: the starting value; default ``theta.ml``'s ``sum w / sum w (y/mu - 1)^2``. In an
      alternation with the coefficient fit the previous ``theta`` is a better start (``glm.nb``
      restarts from the moment value each time).
    - `max_iter`: the most Newton steps (traced: changing it does not recompile).
    - `tol`: stop when a step changes ``log theta`` by at most this (a relative change of
      ``theta``); default ``sqrt(eps)`` of the dtype, which leaves ``theta`` ``O(eps)``-close
      to the root (quadratic convergence).

    **Returns:** a `DispersionEstimate`: ``value`` = ``theta`` (``inf`` with
    `DispersionResult.infinite` when the counts are not overdispersed, ``0`` with
    `DispersionResult.zero` when all are 0, NaN with `DispersionResult.invalid_data`),
    ``stderr`` (as `theta_stderr`), ``result``, ``n_iter``. Under ``jax.vmap``, members decided
    by their data do not iterate and the others stop as they converge.

    ```python
    >>> import jax.numpy as jnp
    >>> y = jnp.array([0.0, 0.0, 1.0, 2.0, 5.0, 9.0])
    >>> est = theta_ml(y, jnp.full(6, 17 / 6))
    >>> round(float(est.value), 4), DispersionResult(int(est.result)).name
    (0.7148, 'successful')
    ```
    """
    _check_iteration(max_iter, tol)
    return _theta_ml(y, mu, weights, theta0, jnp.asarray(max_iter, jnp.int32), tol=tol)


@functools.partial(jax.jit, static_argnames=("tol",))
def _theta_ml(y, mu, weights, theta0, max_iter, *, tol):
    rows = _rows(y, mu, weights, positive_y=False)
    overdispersion = _weighted_sum(rows.w, (rows.y - rows.mu) ** 2 - rows.y)
    all_zero = ~jnp.any((rows.w > 0) & (rows.y > 0))
    if theta0 is None:
        pearson = _weighted_sum(rows.w, (rows.y / rows.mu - 1.0) ** 2)
        start = jnp.sum(rows.w) / jnp.where(pearson > 0, pearson, 1.0)
    else:
        start = jnp.asarray(theta0, rows.mu.dtype)
    code = jnp.select(
        [~rows.valid, all_zero, overdispersion <= 0],
        [DispersionResult.invalid_data, DispersionResult.zero, DispersionResult.infinite],
        DispersionResult.successful,
    )
    return _solve(
        lambda theta: _nb_derivatives(rows, theta),
        start,
        decided=~rows.valid | all_zero | (overdispersion <= 0),
        code=code,
        tol=tol,
        max_iter=max_iter,
    )


def gamma_shape_ml(
    y: Float[ArrayLike, " n"],
    mu: Float[ArrayLike, " n"],
    weights: Float[ArrayLike, " n"] | None = None,
    *,
    shape0: Float[ArrayLike, ""] | None = None,
    max_iter: int = 100,
    tol: float | None = None,
) -> DispersionEstimate:
    r"""The maximum-likelihood Gamma shape ``alpha`` given the means, as
    ``MASS::gamma.shape(fit)`` (module docstring: row ``i`` has shape ``w_i alpha``; the maximum
    is unique, and finite iff the deviance ``D > 0``).

    **Arguments:**

    - `y`: positive responses ``(n,)``; `mu`: fitted means ``(n,)``; `weights`: prior weights
      ``(n,)`` or ``None``.
    - `shape0`: the starting value; default the one ``gamma.shape`` starts from,
      ``(6 + 2 Dbar) / (Dbar (6 + Dbar))``, here with ``Dbar = D / sum w`` (``gamma.shape``
      divides by the residual degrees of freedom; the start changes only the iteration count).
    - `max_iter`, `tol`: as `theta_ml` (``tol`` on ``log alpha``).

    **Returns:** a `DispersionEstimate` with ``value`` = ``alpha`` (``inf`` with
    `DispersionResult.infinite` when every ``y_i = mu_i``), ``stderr`` = ``gamma.shape``'s
    ``SE`` (as `gamma_shape_stderr`), ``result``, ``n_iter``. The dispersion is ``1 / alpha``
    (``MASS::gamma.dispersion``).
    """
    _check_iteration(max_iter, tol)
    return _gamma_shape_ml(y, mu, weights, shape0, jnp.asarray(max_iter, jnp.int32), tol=tol)


@functools.partial(jax.jit, static_argnames=("tol",))
def _gamma_shape_ml(y, mu, weights, shape0, max_iter, *, tol):
    rows = _rows(y, mu, weights, positive_y=True)
    deviance = -2.0 * _weighted_sum(rows.w, _log1pmx((rows.y - rows.mu) / rows.mu))
    if shape0 is None:
        dbar = deviance / jnp.sum(rows.w)
        dbar = jnp.where(dbar > 0, dbar, 1.0)
        start = (6.0 + 2.0 * dbar) / (dbar * (6.0 + dbar))
    else:
        start = jnp.asarray(shape0, rows.mu.dtype)
    code = jnp.select(
        [~rows.valid, deviance <= 0],
        [DispersionResult.invalid_data, DispersionResult.infinite],
        DispersionResult.successful,
    )
    return _solve(
        lambda shape: _gamma_derivatives(rows, shape),
        start,
        decided=~rows.valid | (deviance <= 0),
        code=code,
        tol=tol,
        max_iter=max_iter,
    )
