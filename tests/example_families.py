"""Families written as pure functions with `gj.make_family` (as in the README's "Write your own
family"), and deliberately broken ones; importable by ``glmjax verify --family``."""

import jax.numpy as jnp
from jax.scipy.special import gammaln

import glmjax as gj

# the log-series: p(y) = -theta^y / (y log(1 - theta)), y = 1, 2, ...; eta = log theta < 0
log_series = gj.make_family(
    sufficient_statistic=lambda y: y,
    log_partition=lambda eta: jnp.log(-jnp.log1p(-jnp.exp(eta))),
    log_base_measure=lambda y: -jnp.log(y),
    support="positive_integers",
    name="LogSeries",
)

# the zero-truncated Poisson: p(y) = lambda^y e^-lambda / (y! (1 - e^-lambda)), y = 1, 2, ...
zero_truncated_poisson = gj.make_family(
    sufficient_statistic=lambda y: y,
    log_partition=lambda eta: jnp.exp(eta) + jnp.log(-jnp.expm1(-jnp.exp(eta))),
    log_base_measure=lambda y: -gammaln(y + 1.0),
    support="positive_integers",
    name="ZeroTruncatedPoisson",
)

# the beta distribution as a two-parameter family: T(y) = (log y, log(1 - y)), eta = (a, b) > 0
beta = gj.make_family(
    sufficient_statistic=lambda y: jnp.stack([jnp.log(y), jnp.log1p(-y)]),
    log_partition=lambda eta: jnp.where(  # +inf outside a, b > 0, where gammaln is finite again
        jnp.all(eta > 0), gammaln(eta[0]) + gammaln(eta[1]) - gammaln(eta[0] + eta[1]), jnp.inf
    ),
    log_base_measure=lambda y: -jnp.log(y) - jnp.log1p(-y),
    support="unit_interval",
    natural_dim=2,
    name="Beta",
    eta_start=2.0,  # the default grid then keeps a, b >= 1: no density singular at y -> 1, where
    # float64 cannot resolve 1 - y below 1.1e-16 (see `verify_family`)
)


def _poisson(**overrides):
    functions = dict(
        sufficient_statistic=lambda y: y,
        log_partition=jnp.exp,
        log_base_measure=lambda y: -gammaln(y + 1.0),
        support="nonnegative_integers",
        name="Poisson (broken)",
    )
    return gj.make_family(**functions | overrides)


# broken on purpose: verify_family must catch each
wrong_base_measure = _poisson(log_base_measure=lambda y: -gammaln(y))  # 1/(y-1)! instead of 1/y!
log_partition_off_by_a_factor = _poisson(log_partition=lambda eta: 2 * jnp.exp(eta))
wrong_support = _poisson(support="positive_integers")  # forgets y = 0
