r"""The built-in families. Each writes T(y), a(eta), log b(y) and its support; mean and variance are
derived by autodiff (`glmjax._exponential_family`). Each also writes its canonical link in closed
form (fits with a non-canonical link evaluate it per row) and the textbook mean and variance;
``glmjax verify`` checks all three against the derived ones and the densities against summation
or quadrature.

| family | eta | T(y) | a(eta) | phi | canonical link |
|---|---|---|---|---|---|
| Bernoulli | log(p/(1-p)) | y | softplus(eta) | 1 | logit |
| Binomial(trials) | log(p/(1-p)) | y (a proportion) | softplus(eta) | 1/trials | logit |
| Poisson | log(lambda) | y | exp(eta) | 1 | log |
| Gaussian(scale) | mu | y | eta^2/2 | scale^2 | identity |
| Gamma(shape) | -1/mu | y | -log(-eta) | 1/shape | -1/mu |
| InverseGaussian(shape) | -1/(2 mu^2) | y | -sqrt(-2 eta) | 1/shape | -1/(2 mu^2) |
| Exponential | -rate | y | -log(-eta) | 1 | -1/mu |
| Geometric | log(1-p) | y (failures) | -log(1-e^eta) | 1 | log(mu/(1+mu)) |
| NegativeBinomial(r) | log(p) | y (count) | -r log(1-e^eta) | 1 | log(mu/(mu+r)) |
| Categorical(k) | log(p_i/p_k), i<k | one-hot, k-1 | log(1+sum e^eta_i) | 1 | log(mu_i/mu_k) |
| Categorical(k, False) | log p_i + c | one-hot, k | log(sum e^eta_i) | 1 | log mu - mean(log mu) |

Gaussian, Gamma and the inverse Gaussian *estimate* their dispersion in a GLM fit (their own
`scale`/`shape` is then ignored), as R's ``glm`` does.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, xlogy
from jaxtyping import ArrayLike, Float

from ._exponential_family import ClosedForms, ExponentialFamily, Support
from ._misc import as_float, check_positive, log1mexp, logsumexp, softplus


def _sigmoid_variance(eta):
    return jax.nn.sigmoid(eta) * jax.nn.sigmoid(-eta)


def _logit(mu):
    mu = as_float(mu)
    return jnp.log(mu) - jnp.log1p(-mu)


class Bernoulli(ExponentialFamily):
    r"""y in {0, 1}: ``p(y) = exp(eta y - log(1 + e^eta))``; the mean is the sigmoid."""

    support = Support.named("binary")
    canonical_link_name: ClassVar[str] = "logit"

    def log_partition(self, eta):
        return softplus(eta)

    def log_base_measure(self, y):
        return jnp.zeros_like(as_float(y))

    def link(self, mu):
        return _logit(mu)

    def closed_forms(self):
        return ClosedForms(mean=jax.nn.sigmoid, variance=_sigmoid_variance)


class Binomial(ExponentialFamily):
    r"""A proportion y in {0, 1/n, ..., 1} of ``n = trials`` successes (R's binomial with a
    proportion response): ``p(y) = C(n, n y) exp(n (eta y - log(1 + e^eta)))``, so ``phi = 1/n``.
    In a fit, prior weights multiply the trials (R's ``weights``): row ``i`` has
    ``trials * w_i`` trials."""

    trials: Float[ArrayLike, ""] = 1.0
    canonical_link_name: ClassVar[str] = "logit"

    def __check_init__(self):
        check_positive(self.trials, "trials")

    @property
    def support(self):
        return Support(True, 0.0, 1.0, 1.0 / self.trials, tolerance=1e-6,
                       description="n*y an integer in [0, n] for n = trials")  # fmt: skip

    @property
    def dispersion(self):
        return 1.0 / self.trials

    def with_dispersion(self, phi):
        return Binomial(trials=1.0 / phi)

    def log_partition(self, eta):
        return softplus(eta)

    def log_base_measure(self, y):
        return self.weighted_log_base_measure(y, 1.0)

    def weighted_log_base_measure(self, y, weight):
        n = self.trials * weight
        k = n * as_float(y)
        log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        return jnp.where(weight > 0, log_choose, 0.0)

    def response_in_support(self, y, weight):
        n = self.trials * as_float(weight)
        k = n * as_float(y)
        tol = 1e-6 * jnp.maximum(1.0, k) + 8 * jnp.finfo(k.dtype).eps * n
        whole = jnp.abs(k - jnp.round(k)) <= tol
        return jnp.isfinite(k) & (y >= 0) & (y <= 1) & (whole | (weight == 0))

    def link(self, mu):
        return _logit(mu)

    def closed_forms(self):
        return ClosedForms(
            mean=jax.nn.sigmoid, variance=lambda eta: _sigmoid_variance(eta) / self.trials
        )


class Poisson(ExponentialFamily):
    r"""Counts: ``p(y) = exp(eta y - e^eta) / y!``; the mean is ``exp``."""

    support = Support.named("nonnegative_integers")
    canonical_link_name: ClassVar[str] = "log"

    def log_partition(self, eta):
        return jnp.exp(eta)

    def log_base_measure(self, y):
        return -gammaln(as_float(y) + 1.0)

    def link(self, mu):
        return jnp.log(as_float(mu))

    def closed_forms(self):
        return ClosedForms(mean=jnp.exp, variance=jnp.exp)


class Gaussian(ExponentialFamily):
    r"""``N(mu, scale^2)``: eta = mu, ``a = eta^2/2``, ``phi = scale^2``,
    ``log b(y) = -y^2/(2 phi) - log(2 pi phi)/2``; the mean is the identity. Prior weights divide
    the dispersion (R's gaussian: ``Var(y_i) = phi / w_i``)."""

    scale: Float[ArrayLike, ""] = 1.0
    support = Support.named("real")
    estimates_dispersion: ClassVar[bool] = True
    canonical_link_name: ClassVar[str] = "identity"

    def __check_init__(self):
        check_positive(self.scale, "scale")

    @property
    def dispersion(self):
        return self.scale**2

    def with_dispersion(self, phi):
        return Gaussian(scale=jnp.sqrt(phi))

    def log_partition(self, eta):
        return 0.5 * eta**2

    def log_base_measure(self, y):
        return self.weighted_log_base_measure(y, 1.0)

    def weighted_log_base_measure(self, y, weight):
        y = as_float(y)
        phi = self.dispersion / jnp.where(weight > 0, weight, 1.0)
        log_b = -0.5 * y**2 / phi - 0.5 * jnp.log(2 * jnp.pi * phi)
        return jnp.where(weight > 0, log_b, 0.0)

    def loglik_dispersion(self, deviance, weight_sum, nobs):
        return deviance / nobs

    def link(self, mu):
        return as_float(mu)

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: eta, variance=lambda eta: jnp.full_like(eta, self.dispersion)
        )


class _ShapeFamily(ExponentialFamily):
    """A positive response with a ``shape`` whose inverse is the dispersion, which GLM fits
    estimate (the Gamma and the inverse Gaussian)."""

    shape: Float[ArrayLike, ""] | None = 1.0
    support = Support.named("positive_real")
    estimates_dispersion: ClassVar[bool] = True
    shape_estimable: ClassVar[bool] = False  # shape=None: `fit_glm` estimates it

    def __check_init__(self):
        if not (self.shape is None and self.shape_estimable):
            check_positive(self.shape, "shape")

    @property
    def dispersion(self):
        return 1.0 / self.shape

    def with_dispersion(self, phi):
        return type(self)(shape=1.0 / phi)


class _ReciprocalMean(ExponentialFamily):
    """``a(eta) = -log(-eta)`` on ``eta < 0``: mean ``-1/eta`` (the Gamma and the exponential)."""

    @property
    def eta_start(self):
        return -1.0

    def log_partition(self, eta):
        return -jnp.log(-eta)

    def link(self, mu):
        return -1.0 / as_float(mu)


class Gamma(_ShapeFamily, _ReciprocalMean):
    r"""Gamma with mean mu and ``shape``: eta = -1/mu < 0, ``a = -log(-eta)``, ``phi = 1/shape``,
    ``log b(y) = (shape-1) log y + shape log shape - lgamma(shape)``.

    R's and statsmodels' "inverse" link is ``1/mu = -eta``: their canonical-link coefficients are
    minus ours (``link="inverse"`` gives theirs).

    ``Gamma(shape=None)``: `fit_glm` estimates the shape by maximum likelihood after the
    coefficients (which do not depend on it), as ``MASS::gamma.shape``, and returns the family
    with the estimate in place; its dispersion is then ``1 / shape`` (``MASS::gamma.dispersion``).
    """

    shape_estimable: ClassVar[bool] = True

    def log_base_measure(self, y):
        k = self.shape
        return xlogy(k - 1.0, as_float(y)) + k * jnp.log(k) - gammaln(k)

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: -1.0 / eta, variance=lambda eta: 1.0 / (self.shape * eta**2)
        )


class InverseGaussian(_ShapeFamily):
    r"""The inverse Gaussian (Wald) with mean mu and ``shape`` lambda (R's ``inverse.gaussian``,
    dispersion ``phi = 1/shape``): ``p(y) = sqrt(lambda / (2 pi y^3)) exp(-lambda (y - mu)^2 /
    (2 mu^2 y))``, so eta = -1/(2 mu^2) < 0, ``a = -sqrt(-2 eta)`` and
    ``log b(y) = log(lambda / (2 pi y^3)) / 2 - lambda / (2 y)``; variance ``mu^3 / shape``.

    R's canonical link ``1/mu^2`` is ``-2 eta``: its canonical-link coefficients are ``-2`` times
    ours (``link="inverse_squared"`` gives R's).
    """

    @property
    def eta_start(self):
        return -0.5

    def log_partition(self, eta):
        return -jnp.sqrt(-2.0 * eta)

    def log_base_measure(self, y):
        y = as_float(y)
        lam = self.shape
        return 0.5 * jnp.log(lam / (2 * jnp.pi * y**3)) - 0.5 * lam / y

    def link(self, mu):
        return -0.5 / as_float(mu) ** 2

    def closed_forms(self):
        def mean(eta):
            return 1.0 / jnp.sqrt(-2.0 * eta)

        return ClosedForms(mean=mean, variance=lambda eta: mean(eta) ** 3 / self.shape)


class Exponential(_ReciprocalMean):
    r"""``p(y) = rate e^{-rate y}``: eta = -rate, ``a = -log(-eta)``, ``b = 1``; mean ``-1/eta``."""

    support = Support.named("nonnegative_real")

    def log_base_measure(self, y):
        return jnp.zeros_like(as_float(y))

    def closed_forms(self):
        return ClosedForms(mean=lambda eta: -1.0 / eta, variance=lambda eta: 1.0 / eta**2)


class Geometric(ExponentialFamily):
    r"""Failures before the first success, ``p(y) = (1-q) q^y`` with q = e^eta < 1:
    ``a = -log(1 - e^eta)``; mean ``q/(1-q)``."""

    support = Support.named("nonnegative_integers")

    @property
    def eta_start(self):
        return -1.0

    def log_partition(self, eta):
        return -log1mexp(eta)

    def log_base_measure(self, y):
        return jnp.zeros_like(as_float(y))

    def link(self, mu):
        return -jnp.log1p(1.0 / as_float(mu))

    def closed_forms(self):
        return ClosedForms(
            mean=lambda eta: 1.0 / jnp.expm1(-eta),
            variance=lambda eta: jnp.exp(eta) / jnp.expm1(eta) ** 2,
        )


class NegativeBinomial(ExponentialFamily):
    r"""Counts with a fixed ``r > 0`` (R's theta): ``p(y) = Gamma(y+r)/(Gamma(r) y!) (1-q)^r q^y``
    with q = e^eta < 1: ``a = -r log(1 - e^eta)``; mean ``r q/(1-q)``, variance ``mu + mu^2/r``.
    R's ``MASS::negative.binomial(theta)`` uses the log link: ``link="log"`` gives its fit.
    ``NegativeBinomial(r=None)``: `fit_glm` estimates ``r`` with the coefficients, as
    ``MASS::glm.nb`` (`glmjax._negbin`; the log link by default), and returns the family with
    the estimate in place."""

    r: Float[ArrayLike, ""] | None = 1.0
    support = Support.named("nonnegative_integers")

    def __check_init__(self):
        if self.r is not None:  # None: `fit_glm` estimates r (glmjax._negbin)
            check_positive(self.r, "r")

    @property
    def eta_start(self):
        return -1.0

    def log_partition(self, eta):
        return -self.r * log1mexp(eta)

    def log_base_measure(self, y):
        y = as_float(y)
        return gammaln(y + self.r) - gammaln(self.r) - gammaln(y + 1.0)

    def link(self, mu):
        return -jnp.log1p(self.r / as_float(mu))

    def closed_forms(self):
        def mean(eta):
            return self.r / jnp.expm1(-eta)

        return ClosedForms(mean=mean, variance=lambda eta: mean(eta) + mean(eta) ** 2 / self.r)


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
    def support(self):
        return Support.labels(self.num_classes)

    @property
    def natural_dim(self) -> int:
        return self.num_classes - 1 if self.minimal else self.num_classes

    @property
    def identifiable(self) -> bool:
        return self.minimal

    def _full_eta(self, eta):
        if not self.minimal:
            return eta
        return jnp.concatenate([eta, jnp.zeros(eta.shape[:-1] + (1,), eta.dtype)], axis=-1)

    def sufficient_statistic(self, y):
        # labels may come as floats (y = 2.0); one_hot wants integers
        labels = jnp.asarray(y).astype(jnp.int32)
        return jax.nn.one_hot(labels, self.num_classes, dtype=as_float(y).dtype)[
            ..., : self.natural_dim
        ]

    def log_partition(self, eta):
        return logsumexp(self._full_eta(eta))

    def log_base_measure(self, y):
        return jnp.zeros(jnp.shape(y), as_float(y).dtype)

    def response_mean(self, eta):
        """All ``k`` class probabilities (with ``minimal=True`` the last, whose ``T`` is zero,
        is ``exp(-a(eta))``)."""
        mean = self.mean(eta)
        if not self.minimal:
            return mean
        last = jnp.exp(-self.log_partition(self._check_eta(eta)))
        return jnp.concatenate([mean, last[..., None]], axis=-1)

    def natural_parameter_names(self):
        k = self.num_classes
        if self.minimal:
            return [f"class {j} vs class {k - 1}" for j in range(k - 1)]
        return [f"class {j}" for j in range(k)]

    def link(self, mu):
        mu = self._check_eta(mu)
        if self.minimal:
            return jnp.log(mu) - jnp.log1p(-jnp.sum(mu, axis=-1, keepdims=True))
        log_mu = jnp.log(mu)
        return log_mu - jnp.mean(log_mu, axis=-1, keepdims=True)

    def closed_forms(self):
        def mean(eta):
            return jax.nn.softmax(self._full_eta(eta), axis=-1)[..., : self.natural_dim]

        def variance(eta):
            # p_i (1 - p_i) with 1 - p_i summed from the other classes, accurate as p_i -> 1
            p_all = jax.nn.softmax(self._full_eta(eta))
            others = 1.0 - jnp.eye(self.num_classes, dtype=p_all.dtype)
            p, p_rest = p_all[: self.natural_dim], (others @ p_all)[: self.natural_dim]
            return jnp.diag(p * p_rest) - jnp.outer(p, p) * others[: p.size, : p.size]

        return ClosedForms(mean=mean, variance=variance)
