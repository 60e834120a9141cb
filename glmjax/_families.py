r"""The concrete families. Each writes only T(y), a(eta), log b(y), its support and, for checking,
the textbook closed forms; mean, variance and link are derived in `glmjax._family`.

| family | eta | T(y) | a(eta) | phi |
|---|---|---|---|---|
| Bernoulli | log(p/(1-p)) | y | softplus(eta) | 1 |
| Binomial(trials) | log(p/(1-p)) | y (a proportion) | softplus(eta) | 1/trials |
| Poisson | log(lambda) | y | exp(eta) | 1 |
| Gaussian(scale) | mu | y | eta^2/2 | scale^2 |
| Gamma(shape) | -1/mu | y | -log(-eta) | 1/shape |
| Exponential | -rate | y | -log(-eta) | 1 |
| Geometric | log(1-p) | y (failures) | -log(1-e^eta) | 1 |
| NegativeBinomial(r) | log(p) | y (count) | -r log(1-e^eta) | 1 |
| Categorical(k, minimal=True) | log(p_i/p_k), i<k | one-hot, length k-1 | log(1+sum e^eta_i) | 1 |
| Categorical(k, minimal=False) | log p_i + c | one-hot, length k | log(sum e^eta_i) | 1 |
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlogy
from jaxtyping import Array, ArrayLike, Bool, Float

from ._family import ClosedForms, ExponentialFamily


def _float(y):
    y = jnp.asarray(y)
    return y if jnp.issubdtype(y.dtype, jnp.inexact) else y.astype(jnp.result_type(float))


def _is_integer(y) -> Bool[Array, ""]:
    return jnp.floor(y) == y


def _log1mexp(x):
    """log(1 - e^x) for x < 0, accurate at both ends (Maechler 2012).

    Each branch only sees inputs where it is finite (the "double where"): otherwise the unused
    branch's infinite derivative, times its zero cotangent, makes a NaN gradient (e.g.
    ``log1p(-exp(x))`` at ``x = -1e-17``, where ``exp(x)`` rounds to 1).
    """
    near_zero = x > -jnp.log(2.0)
    x_near = jnp.where(near_zero, x, -1.0)
    x_far = jnp.where(near_zero, -1.0, x)
    return jnp.where(near_zero, jnp.log(-jnp.expm1(x_near)), jnp.log1p(-jnp.exp(x_far)))


def _logsumexp(x: Float[Array, " m"]) -> Float[Array, ""]:
    """log sum_i e^{x_i}, pivoted on the largest entry ``x_*`` *including its gradient*:
    ``x_* + log1p(sum_{i != *} e^{x_i - x_*})``.

    Every exponential is <= 1 (no overflow) and small terms keep their relative accuracy (log1p).
    Unlike ``jax.nn.logsumexp``/``softplus`` (whose max is a stop-gradient constant, so that the
    autodiff hessian is computed as ``p - p^2``), differentiating this form twice gives each entry
    of ``diag(p) - p p^T`` without cancellation: the derived variance ``p (1 - p)`` stays accurate
    to a few ulps when ``p`` is within ``e^-700`` of 1 (it was lost beyond ``|eta| ~ 37``). The
    pivot is piecewise constant, so the derivatives are those of logsumexp everywhere.
    """
    top = jnp.argmax(x)
    rest = jnp.where(jnp.arange(x.shape[-1]) == top, 0.0, jnp.exp(x - x[top]))
    return x[top] + jnp.log1p(jnp.sum(rest))


def _softplus(eta: Float[Array, ""]) -> Float[Array, ""]:
    """log(1 + e^eta), `_logsumexp` of ``(eta, 0)`` written for two entries: the pivot
    ``max(eta, 0)`` and the other entry, ``-|eta|``, are picked by ``where`` so that the gradient
    flows through both (at ``eta = 0`` the pivot is the constant 0). Stacking the pair and
    reducing over it would be ~30x slower under vmap on a CPU."""
    positive = eta > 0
    return jnp.where(positive, eta, 0.0) + jnp.log1p(jnp.exp(jnp.where(positive, -eta, eta)))


def _positive(value, name: str):
    if not isinstance(value, jax.core.Tracer) and not np.all(np.asarray(value) > 0):
        raise ValueError(f"`{name}` must be positive, got {value!r}")


class Bernoulli(ExponentialFamily):
    r"""y in {0, 1}: ``p(y) = exp(eta y - log(1 + e^eta))``; the mean is the sigmoid."""

    _support_text = "y in {0, 1}"

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return _softplus(eta)

    def _log_base_measure(self, y):
        return jnp.zeros_like(_float(y))

    def _in_support(self, y):
        return (y == 0) | (y == 1)

    def closed_forms(self):
        return ClosedForms(
            mean=jax.nn.sigmoid,
            variance=lambda eta: jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta),
            link=jax.scipy.special.logit,
        )


class Binomial(ExponentialFamily):
    r"""A proportion y in {0, 1/n, ..., 1} of ``n = trials`` successes (R's binomial with weights):
    ``p(y) = C(n, n y) exp(n (eta y - log(1 + e^eta)))``, so ``phi = 1/n``."""

    trials: Float[ArrayLike, ""] = 1.0
    _support_text = "n*y an integer in [0, n] for n = trials"

    def __check_init__(self):
        _positive(self.trials, "trials")

    @property
    def dispersion(self):
        return 1.0 / self.trials

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return _softplus(eta)

    def _log_base_measure(self, y):
        n = self.trials
        k = n * _float(y)
        return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)

    def _in_support(self, y):
        k = self.trials * y
        return (y >= 0) & (y <= 1) & (jnp.abs(k - jnp.round(k)) <= 1e-6 * jnp.maximum(1.0, k))

    def closed_forms(self):
        return ClosedForms(
            mean=jax.nn.sigmoid,
            variance=lambda eta: jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta) / self.trials,
            link=jax.scipy.special.logit,
        )


class Poisson(ExponentialFamily):
    r"""Counts: ``p(y) = exp(eta y - e^eta) / y!``; the mean is ``exp``."""

    _support_text = "y a non-negative integer"

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return jnp.exp(eta)

    def _log_base_measure(self, y):
        return -gammaln(_float(y) + 1.0)

    def _in_support(self, y):
        return (y >= 0) & _is_integer(y)

    def closed_forms(self):
        return ClosedForms(mean=jnp.exp, variance=jnp.exp, link=jnp.log)


class Gaussian(ExponentialFamily):
    r"""``N(mu, scale^2)`` with known scale: eta = mu, ``a = eta^2/2``, ``phi = scale^2``,
    ``log b(y) = -y^2/(2 phi) - log(2 pi phi)/2``; the mean is the identity."""

    scale: Float[ArrayLike, ""] = 1.0
    _support_text = "y a real number"

    def __check_init__(self):
        _positive(self.scale, "scale")

    @property
    def dispersion(self):
        return self.scale**2

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return 0.5 * eta**2

    def _log_base_measure(self, y):
        y = _float(y)
        phi = self.dispersion
        return -0.5 * y**2 / phi - 0.5 * jnp.log(2 * jnp.pi * phi)

    def _in_support(self, y):
        return jnp.isfinite(y)

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: eta,
            variance=lambda eta: jnp.full_like(eta, self.dispersion),
            link=lambda mu: mu,
        )


class Gamma(ExponentialFamily):
    r"""Gamma with mean mu and ``shape``: eta = -1/mu < 0, ``a = -log(-eta)``, ``phi = 1/shape``,
    ``log b(y) = (shape-1) log y + shape log shape - lgamma(shape)``.

    R's and statsmodels' "inverse" link is ``1/mu = -eta``: their coefficients are minus ours.
    """

    shape: Float[ArrayLike, ""] = 1.0
    _eta_start = -1.0
    _y_placeholder = 1.0
    _support_text = "y > 0"

    def __check_init__(self):
        _positive(self.shape, "shape")

    @property
    def dispersion(self):
        return 1.0 / self.shape

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return -jnp.log(-eta)

    def _log_base_measure(self, y):
        k = self.shape
        return xlogy(k - 1.0, _float(y)) + k * jnp.log(k) - gammaln(k)

    def _in_support(self, y):
        return y > 0

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: -1.0 / eta,
            variance=lambda eta: 1.0 / (self.shape * eta**2),
            link=lambda mu: -1.0 / mu,
        )


class Exponential(ExponentialFamily):
    r"""``p(y) = rate e^{-rate y}``: eta = -rate, ``a = -log(-eta)``, ``b = 1``; mean ``-1/eta``."""

    _eta_start = -1.0
    _y_placeholder = 1.0
    _support_text = "y >= 0"

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return -jnp.log(-eta)

    def _log_base_measure(self, y):
        return jnp.zeros_like(_float(y))

    def _in_support(self, y):
        return y >= 0

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: -1.0 / eta,
            variance=lambda eta: 1.0 / eta**2,
            link=lambda mu: -1.0 / mu,
        )


class Geometric(ExponentialFamily):
    r"""Failures before the first success, ``p(y) = (1-q) q^y`` with q = e^eta < 1:
    ``a = -log(1 - e^eta)``; mean ``q/(1-q)``."""

    _eta_start = -1.0
    _support_text = "y a non-negative integer"

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return -_log1mexp(eta)

    def _log_base_measure(self, y):
        return jnp.zeros_like(_float(y))

    def _in_support(self, y):
        return (y >= 0) & _is_integer(y)

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: 1.0 / jnp.expm1(-eta),
            variance=lambda eta: jnp.exp(eta) / jnp.expm1(eta) ** 2,
            link=lambda mu: -jnp.log1p(1.0 / mu),
        )


class NegativeBinomial(ExponentialFamily):
    r"""Counts with a fixed ``r > 0``: ``p(y) = Gamma(y+r)/(Gamma(r) y!) (1-q)^r q^y`` with
    q = e^eta < 1: ``a = -r log(1 - e^eta)``; mean ``r q/(1-q)``, variance ``mu + mu^2/r``."""

    r: Float[ArrayLike, ""] = 1.0
    _eta_start = -1.0
    _support_text = "y a non-negative integer"

    def __check_init__(self):
        _positive(self.r, "r")

    def _sufficient_statistic(self, y):
        return _float(y)

    def _log_partition(self, eta):
        return -self.r * _log1mexp(eta)

    def _log_base_measure(self, y):
        y = _float(y)
        return gammaln(y + self.r) - gammaln(self.r) - gammaln(y + 1.0)

    def _in_support(self, y):
        return (y >= 0) & _is_integer(y)

    def closed_forms(self):
        def mean(eta):
            return self.r / jnp.expm1(-eta)

        return ClosedForms(
            mean=mean,
            variance=lambda eta: mean(eta) + mean(eta) ** 2 / self.r,
            link=lambda mu: -jnp.log1p(self.r / mu),
        )


class Categorical(ExponentialFamily):
    r"""A label y in {0, ..., k-1}.

    ``minimal=True`` (the seed's "rigorous" form): eta has k-1 entries, ``eta_i = log(p_i / p_k)``,
    T(y) is the one-hot vector of length k-1 (all zeros for the last class, the reference), and
    ``a(eta) = log(1 + sum_i e^{eta_i})``, whose gradient is
    ``p_i = e^{eta_i} / (1 + sum_{j<k} e^{eta_j})``.

    ``minimal=False`` (the common softmax): eta has k entries, T(y) is the full one-hot vector and
    ``a(eta) = log sum_i e^{eta_i}``. It is over-parametrised (adding a constant to eta changes
    nothing, the hessian of ``a`` is singular); its link returns the representative with
    ``sum(eta) = 0``.
    """

    num_classes: int = eqx.field(static=True)
    minimal: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        k = self.num_classes
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {k!r}")

    @property
    def natural_dim(self) -> int:
        return self.num_classes - 1 if self.minimal else self.num_classes

    @property
    def identifiable(self) -> bool:
        return self.minimal

    @property
    def _support_text(self):
        return f"integer labels 0..{self.num_classes - 1}"

    def _full_eta(self, eta):
        return jnp.concatenate([eta, jnp.zeros((1,), eta.dtype)]) if self.minimal else eta

    def _sufficient_statistic(self, y):
        # labels may come as floats (y = 2.0); one_hot wants integers
        one_hot = jax.nn.one_hot(
            jnp.asarray(y).astype(jnp.int32), self.num_classes, dtype=jnp.result_type(float)
        )
        return one_hot[: self.natural_dim]

    def _log_partition(self, eta):
        return _logsumexp(self._full_eta(eta))

    def _log_base_measure(self, y):
        return jnp.zeros((), jnp.result_type(float))

    def _in_support(self, y):
        return (y >= 0) & (y < self.num_classes) & _is_integer(y)

    def closed_forms(self):
        def mean(eta):
            return jax.nn.softmax(self._full_eta(eta))[: self.natural_dim]

        def variance(eta):
            # p_i (1 - p_i) with 1 - p_i summed from the other classes, accurate as p_i -> 1
            p_all = jax.nn.softmax(self._full_eta(eta))
            others = 1.0 - jnp.eye(self.num_classes, dtype=p_all.dtype)
            p, p_rest = p_all[: self.natural_dim], (others @ p_all)[: self.natural_dim]
            return jnp.diag(p * p_rest) - jnp.outer(p, p) * others[: p.size, : p.size]

        def link(mu):
            if self.minimal:
                return jnp.log(mu) - jnp.log1p(-jnp.sum(mu))
            log_mu = jnp.log(mu)
            return log_mu - jnp.mean(log_mu)

        return ClosedForms(mean=mean, variance=variance, link=link)
