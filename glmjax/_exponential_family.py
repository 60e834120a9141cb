r"""The exponential-family base class, the supports, and `make_family`.

A family is an *exponential dispersion family* of a scalar response ``y``,

    p(y; eta) = b(y) exp((<eta, T(y)> - a(eta)) / phi),

with a fixed dispersion ``phi`` (1 for Bernoulli, Poisson, Categorical, ...; ``scale**2`` for the
Gaussian, ``1/shape`` for the Gamma, ``1/trials`` for a Binomial proportion). A family *writes*
only ``T(y)`` (`sufficient_statistic`, by default ``y`` itself), ``a(eta)`` (`log_partition`),
``log b(y)`` (`log_base_measure`) — each for one example — and its `support`; everything else is
derived by autodiff in `glmjax._derive`:

    E[T(y)]   = grad a(eta)              -> ``mean``
    Var[T(y)] = phi * hessian a(eta)     -> ``variance``
    g(mu)     = (grad a)^-1 (mu)         -> ``link`` (the canonical link)

**Two ways to write one.** `make_family` takes the four pure functions and a support (no class);
subclassing `ExponentialFamily` gives a family with parameters (fields, pytree leaves: a
``NegativeBinomial(r)`` under ``jax.vmap`` over ``r``). The hooks a subclass may also write,
each with its default in brackets:

- `natural_dim` (``None``): ``None`` for a scalar natural parameter, ``m`` for a vector;
- `identifiable` (``True``): ``False`` when ``a(eta + c 1) = a(eta) + c`` (over-parametrised);
- `dispersion` (``1.0``): ``phi``;
- `eta_start` (``0.0``): a point inside the natural parameter space;
- `link` (derived, `conjugate_link`): the canonical link; a closed form makes fits with
  non-canonical links faster;
- `closed_forms` (``None``): textbook mean and variance, checked by ``glmjax verify``;
- `estimates_dispersion` (``False``): GLM inference estimates ``phi`` (Gaussian, Gamma, inverse
  Gaussian);
- `with_dispersion(phi)` (raises): the same family with dispersion ``phi``;
- `weighted_log_base_measure(y, w)` (``w log b(y)``): R's convention for prior weights in the
  log-likelihood;
- `loglik_dispersion(D, sum w, n)` (``D / sum w``): the dispersion at which R reports the
  log-likelihood;
- `response_in_support(y, w)` (``y`` in `support`): whether a response with prior weight ``w``
  is valid;
- `response_mean(eta)` (`mean`): the mean of ``y`` itself (all ``k`` class probabilities for
  `Categorical`);
- `natural_parameter_names()` (``None``): labels of the entries of a vector ``eta``;
- `canonical_link_name` (``None``): the name in `glmjax.links` of the canonical link, if any.

Methods are written for one example; the derived public methods (`mean`, `variance`, `link`,
`log_prob`, `in_support`) broadcast over leading axes with ``jnp.vectorize`` and work under
``jax.jit``/``jax.vmap``/``jax.grad``.
"""

import abc
import math
from collections.abc import Callable
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from . import _derive
from ._misc import as_float, check_int, check_positive, is_concrete


class ClosedForms(NamedTuple):
    """Textbook formulas for a family's mean and variance, used only to check the derived ones
    (``glmjax verify``); a family's closed-form canonical link is its `link` method."""

    mean: Callable
    variance: Callable


# ----- supports ---------------------------------------------------------------------------------


class Support(eqx.Module):
    """Where a (scalar) response ``y`` lies: the grid ``lower, lower + step, ..., upper``
    (``discrete=True``; ``upper`` may be ``inf``) or the interval between ``lower`` and ``upper``
    (``discrete=False``; each end open or closed). `glmjax.verify_family` sums a density over the
    grid or integrates it over the interval.

    Named supports (`Support.named`): ``"binary"`` {0, 1}, ``"nonnegative_integers"`` {0, 1, ...},
    ``"positive_integers"`` {1, 2, ...}, ``"real"``, ``"positive_real"`` (0, inf),
    ``"nonnegative_real"`` [0, inf), ``"unit_interval"`` (0, 1).

    - `tolerance`: a discrete ``y`` counts as on the grid when ``(y - lower) / step`` is within
      ``tolerance * max(1, |that|)`` of an integer (0: exactly; a Binomial proportion allows
      ``1e-6`` for the rounding of ``k / n``).
    """

    discrete: bool = eqx.field(static=True)
    lower: Float[ArrayLike, ""] = -math.inf
    upper: Float[ArrayLike, ""] = math.inf
    step: Float[ArrayLike, ""] = 1.0
    lower_open: bool = eqx.field(static=True, default=False)
    upper_open: bool = eqx.field(static=True, default=False)
    tolerance: float = eqx.field(static=True, default=0.0)
    description: str = eqx.field(static=True, default="")

    @classmethod
    def named(cls, name: str) -> "Support":
        """One of the named supports (see the class docstring)."""
        if name not in _NAMED:
            raise ValueError(
                f"`support` must be a Support or one of {', '.join(map(repr, _NAMED))}, got "
                f"{name!r}"
            )
        return _NAMED[name]

    @classmethod
    def labels(cls, k: int) -> "Support":
        """The class labels ``{0, ..., k - 1}``."""
        return cls(True, 0.0, float(k - 1), description=f"integer labels 0..{k - 1}")

    def contains(self, y: ArrayLike) -> Bool[Array, "*b"]:
        """Whether each ``y`` is a possible value (finite, within the bounds, on the grid)."""
        y = as_float(y)
        above = (y > self.lower) if self.lower_open else (y >= self.lower)
        below = (y < self.upper) if self.upper_open else (y <= self.upper)
        ok = jnp.isfinite(y) & above & below
        if not self.discrete:
            return ok
        k = (y - self.lower) / self.step
        off = jnp.abs(k - jnp.round(k))
        return ok & (off <= self.tolerance * jnp.maximum(1.0, jnp.abs(k)))

    @property
    def placeholder(self) -> float:
        """A point of the support (replaces invalid ``y`` where only a harmless value is needed)."""
        if self.discrete:
            return self.lower
        lower, upper = float(self.lower), float(self.upper)
        if math.isfinite(lower) and math.isfinite(upper):
            return 0.5 * (lower + upper)
        if math.isfinite(lower):
            return lower + 1.0
        return upper - 1.0 if math.isfinite(upper) else 0.0


_NAMED = {
    "binary": Support(True, 0.0, 1.0, description="y in {0, 1}"),
    "nonnegative_integers": Support(True, 0.0, description="y a non-negative integer"),
    "positive_integers": Support(True, 1.0, description="y a positive integer"),
    "real": Support(False, description="y a real number"),
    "positive_real": Support(False, 0.0, lower_open=True, description="y > 0"),
    "nonnegative_real": Support(False, 0.0, description="y >= 0"),
    "unit_interval": Support(
        False, 0.0, 1.0, lower_open=True, upper_open=True, description="0 < y < 1"
    ),
}


# ----- the base class ---------------------------------------------------------------------------


class ExponentialFamily(eqx.Module):
    """Base class of the families; see `glmjax._exponential_family` for the hooks.

    A subclass writes `log_partition` and `log_base_measure` for one example (and
    `sufficient_statistic` unless ``T(y) = y``), and a `support` (a class attribute or a
    property); `mean`, `variance` and the canonical `link` are derived.
    """

    # ----- what a family writes (one example each) -----------------------------------------------

    def sufficient_statistic(self, y: Float[Array, ""]) -> Float[Array, "*m"]:
        """T(y) for one response (a scalar, or a vector of length `natural_dim`); ``y`` itself
        unless the family writes another (a natural exponential family)."""
        return as_float(y)

    @abc.abstractmethod
    def log_partition(self, eta: Float[Array, "*m"]) -> Float[Array, ""]:
        """a(eta) for one natural parameter, written in a numerically stable way."""

    @abc.abstractmethod
    def log_base_measure(self, y: Float[Array, ""]) -> Float[Array, ""]:
        """log b(y) for one response in the support (including dispersion-dependent terms)."""

    @property
    @abc.abstractmethod
    def support(self) -> Support:
        """Where ``y`` lies."""

    # ----- hooks with defaults ------------------------------------------------------------------

    estimates_dispersion: ClassVar[bool] = False
    canonical_link_name: ClassVar[str | None] = None

    @property
    def natural_dim(self) -> int | None:
        """``None`` for a scalar natural parameter, ``m`` for a vector of length ``m``."""
        return None

    @property
    def identifiable(self) -> bool:
        """``False`` for an over-parametrised family (``a(eta + c 1) = a(eta) + c``)."""
        return True

    @property
    def dispersion(self) -> Float[ArrayLike, ""]:
        """phi: 1 unless the family carries a scale."""
        return 1.0

    @property
    def eta_start(self) -> float:
        """A point in the interior of the natural parameter space (every entry of a vector eta)."""
        return 0.0

    @property
    def name(self) -> str:
        """The family's name in summaries and error messages."""
        return type(self).__name__

    def closed_forms(self) -> ClosedForms | None:
        """Textbook mean and variance, to check the derived ones (``glmjax verify``); ``None``
        when the family has none (`verify_family` checks it from its density alone)."""
        return None

    def with_dispersion(self, phi: Float[ArrayLike, ""]) -> "ExponentialFamily":
        """The same family with dispersion ``phi`` (for families whose dispersion is a
        parameter: Gaussian, Gamma, inverse Gaussian, Binomial)."""
        raise NotImplementedError(f"{self.name} has no dispersion parameter to set")

    def weighted_log_base_measure(
        self, y: Float[Array, ""], weight: Float[Array, ""]
    ) -> Float[Array, ""]:
        """The ``log b`` part of a row's log-likelihood with prior weight ``weight``: by default
        frequency weights, ``weight * log b(y)`` (R's convention for Poisson, Gamma, ...);
        families whose prior weights divide the dispersion (R's Gaussian and Binomial) override
        it with ``log b(y)`` at dispersion ``phi / weight``."""
        return jnp.where(weight > 0, weight * self.log_base_measure(y), 0.0)

    def loglik_dispersion(self, deviance, weight_sum, nobs) -> Float[Array, ""]:
        """The dispersion at which R's ``logLik`` evaluates an estimated-dispersion family:
        ``deviance / sum w`` (Gamma, inverse Gaussian; the Gaussian uses ``deviance / nobs``)."""
        return deviance / weight_sum

    def response_in_support(self, y: ArrayLike, weight: ArrayLike) -> Bool[Array, "*b"]:
        """Whether ``y`` is a valid response for a row with prior weight ``weight``."""
        return self.in_support(y)

    def response_mean(self, eta: ArrayLike) -> Float[Array, "..."]:
        """The mean of the response ``y`` (equal to `mean` unless ``T(y) != y``)."""
        return self.mean(eta)

    def natural_parameter_names(self) -> list[str] | None:
        """Labels of the entries of a vector ``eta`` (``None`` for a scalar one)."""
        m = self.natural_dim
        return None if m is None else [f"eta[{j}]" for j in range(m)]

    # ----- derived ------------------------------------------------------------------------------

    @property
    def _eta_core(self) -> str:
        return "()" if self.natural_dim is None else "(m)"

    def _check_eta(self, eta: ArrayLike) -> Array:
        eta = as_float(eta)
        m = self.natural_dim
        if m is not None and (eta.ndim == 0 or eta.shape[-1] != m):
            raise ValueError(
                f"`eta` must have {m} entries in its last axis for {self.name} (natural_dim = "
                f"{m}), got shape {eta.shape}"
            )
        return eta

    def in_support(self, y: ArrayLike) -> Bool[Array, "*b"]:
        """Whether each ``y`` is a possible value."""
        return self.support.contains(y)

    def check_support(self, y: ArrayLike, name: str = "y") -> None:
        """``ValueError`` if a concrete ``y`` has a value outside the support (no-op if traced)."""
        if not is_concrete(y):
            return
        y_np = np.asarray(y)
        if not np.all(np.isfinite(y_np)):
            raise ValueError(f"`{name}` contains NaN or inf")
        with jax.ensure_compile_time_eval():
            ok = np.asarray(self.in_support(jnp.asarray(y_np)))
        if not ok.all():
            bad = y_np[~ok] if y_np.ndim else y_np
            raise ValueError(
                f"`{name}` has {int((~ok).sum())} value(s) outside the support of {self.name} "
                f"({self.support.description or self.support}), e.g. "
                f"{np.ravel(bad)[:3].tolist()}"
            )

    def _safe_y(self, y):
        return jnp.where(self.in_support(y), y, jnp.asarray(self.support.placeholder, y.dtype))

    def log_prob(self, y: ArrayLike, eta: ArrayLike) -> Float[Array, "*batch"]:
        """log p(y; eta) = log b(y) + (<eta, T(y)> - a(eta)) / phi.

        Raises ``ValueError`` for concrete ``y`` outside the support; under jit such ``y`` gives
        ``-inf`` (never NaN).
        """
        self.check_support(y)
        eta = self._check_eta(eta)

        def one(v, e):
            safe = self._safe_y(v)
            t = self.sufficient_statistic(safe)
            lp = self.log_base_measure(safe) + (
                jnp.vdot(e, t) - self.log_partition(e)
            ) / jnp.asarray(self.dispersion, e.dtype)
            return jnp.where(self.in_support(v), lp, -jnp.inf)

        return jnp.vectorize(one, signature=f"(),{self._eta_core}->()")(as_float(y), eta)

    def mean(self, eta: ArrayLike) -> Float[Array, "..."]:
        """E[T(y)] = grad a(eta), by ``jax.grad``."""
        core = self._eta_core
        grad = _derive.mean_map(self.log_partition)
        return jnp.vectorize(grad, signature=f"{core}->{core}")(self._check_eta(eta))

    def variance(self, eta: ArrayLike) -> Float[Array, "..."]:
        """Var[T(y)] = phi * hessian a(eta), by ``jax.hessian`` (a matrix for vector eta)."""
        hess = _derive.variance_map(self.log_partition)
        out = "()" if self.natural_dim is None else "(m,m)"

        def one(e):
            return jnp.asarray(self.dispersion, e.dtype) * hess(e)

        return jnp.vectorize(one, signature=f"{self._eta_core}->{out}")(self._check_eta(eta))

    def conjugate_link(self, mu: ArrayLike) -> Float[Array, "..."]:
        """The canonical link derived from ``a`` alone: the ``eta`` with ``grad a(eta) = mu``, the
        maximiser of ``<eta, mu> - a(eta)`` (see `glmjax._derive.canonical_link`). NaN outside
        the closed mean space, ``+-inf`` on its boundary where the natural parameter space is
        unbounded there. Differentiable (implicit function theorem)."""
        return _derive.canonical_link(self, self._check_eta(mu))

    def link(self, mu: ArrayLike) -> Float[Array, "..."]:
        """The canonical link ``g(mu) = (grad a)^-1(mu)``: `conjugate_link` unless the family
        writes a closed form (every built-in family does: a fit with a non-canonical link
        evaluates it for every row and iteration). NaN outside the mean space."""
        return self.conjugate_link(mu)

    @property
    def natural_rank(self) -> int:
        """Free dimensions of eta: ``natural_dim`` (1 if scalar), one less if over-parametrised."""
        m = self.natural_dim or 1
        return m if self.identifiable else m - 1


# ----- make_family ------------------------------------------------------------------------------


class FunctionFamily(ExponentialFamily):
    """A family built by `make_family` from pure functions of one example."""

    statistic_fn: Callable = eqx.field(static=True)
    log_partition_fn: Callable = eqx.field(static=True)
    log_base_fn: Callable = eqx.field(static=True)
    support_value: Support
    dim: int | None = eqx.field(static=True)
    dispersion_value: Float[ArrayLike, ""]
    family_name: str = eqx.field(static=True)
    start: float = eqx.field(static=True)
    link_fn: Callable | None = eqx.field(static=True)

    @property
    def support(self) -> Support:
        return self.support_value

    @property
    def natural_dim(self):
        return self.dim

    @property
    def dispersion(self):
        return self.dispersion_value

    @property
    def eta_start(self):
        return self.start

    @property
    def name(self):
        return self.family_name

    def sufficient_statistic(self, y):
        out = "()" if self.dim is None else "(m)"
        return jnp.vectorize(self.statistic_fn, signature=f"()->{out}")(as_float(y))

    def log_partition(self, eta):
        return jnp.vectorize(self.log_partition_fn, signature=f"{self._eta_core}->()")(
            as_float(eta)
        )

    def log_base_measure(self, y):
        return jnp.vectorize(self.log_base_fn, signature="()->()")(as_float(y))

    def link(self, mu):
        if self.link_fn is None:
            return self.conjugate_link(mu)
        core = self._eta_core
        return jnp.vectorize(self.link_fn, signature=f"{core}->{core}")(self._check_eta(mu))


def _find_eta_start(log_partition: Callable, natural_dim: int | None) -> float:
    """The first of a few candidate values (every entry of eta) where ``a`` is finite and strictly
    convex."""
    grad, hess = jax.grad(log_partition), jax.hessian(log_partition)
    for value in (0.0, -1.0, 1.0, -0.5, 0.5, -2.0, 2.0, -10.0, 10.0):
        eta = jnp.full(() if natural_dim is None else (natural_dim,), value)
        with jax.ensure_compile_time_eval():
            a, g, h = log_partition(eta), grad(eta), hess(eta)
            ok = bool(jnp.isfinite(a)) and bool(jnp.all(jnp.isfinite(g)))
            ok = ok and bool(jnp.all(jnp.linalg.eigvalsh(jnp.atleast_2d(h)) > 0))
        if ok:
            return value
    raise ValueError(
        "`log_partition` is not finite and strictly convex at any of eta = 0, -1, 1, -0.5, 0.5, "
        "-2, 2, -10, 10: pass `eta_start`, a point inside the natural parameter space"
    )


def make_family(
    *,
    sufficient_statistic: Callable,
    log_partition: Callable,
    log_base_measure: Callable,
    support: str | Support,
    natural_dim: int | None = None,
    dispersion: float = 1.0,
    name: str | None = None,
    eta_start: float | None = None,
    canonical_link: Callable | None = None,
) -> ExponentialFamily:
    r"""An exponential family from pure functions of one example:
    ``p(y; eta) = b(y) exp((<eta, T(y)> - a(eta)) / phi)``.

    **Arguments:**

    - `sufficient_statistic`: ``y -> T(y)`` (a scalar, or a vector of length `natural_dim`).
    - `log_partition`: ``eta -> a(eta)``, written stably (softplus, logsumexp, ``log1p``), and
      ``+inf`` outside the natural parameter space where the formula would still give a finite
      number (``gammaln`` of a negative argument): the solvers step back from non-finite points.
    - `log_base_measure`: ``y -> log b(y)`` for ``y`` in the support.
    - `support`: a `Support`, or a name: ``"binary"``, ``"nonnegative_integers"``,
      ``"positive_integers"``, ``"real"``, ``"positive_real"``, ``"nonnegative_real"``,
      ``"unit_interval"``.
    - `natural_dim`: ``None`` for a scalar ``eta``, else its length.
    - `dispersion`: a known ``phi`` (``log_base_measure`` must include its terms).
    - `name`: used in summaries and messages.
    - `eta_start`: a point inside the natural parameter space (default: the first of 0, -1, 1,
      -0.5, ... where ``a`` is finite and strictly convex).
    - `canonical_link`: optionally, ``mu -> eta`` in closed form (faster fits with non-canonical
      links; `verify_family` checks it); by default derived from ``a``.

    Mean, variance and the canonical link are derived; the family fits, infers and verifies with
    no closed forms. For parameters that should be pytree leaves (``jax.vmap`` over them),
    subclass `ExponentialFamily` instead.

    ```python
    import jax.numpy as jnp, glmjax as gj
    from jax.scipy.special import gammaln
    poisson = gj.make_family(
        sufficient_statistic=lambda y: y,
        log_partition=jnp.exp,
        log_base_measure=lambda y: -gammaln(y + 1.0),
        support="nonnegative_integers",
        name="MyPoisson",
    )
    assert gj.verify_family(poisson).ok
    ```
    """
    for fn, arg in [
        (sufficient_statistic, "sufficient_statistic"),
        (log_partition, "log_partition"),
        (log_base_measure, "log_base_measure"),
    ]:
        if not callable(fn):
            raise ValueError(f"`{arg}` must be a function of one example, got {fn!r}")
    if canonical_link is not None and not callable(canonical_link):
        raise ValueError(f"`canonical_link` must be a function or None, got {canonical_link!r}")
    support = support if isinstance(support, Support) else Support.named(support)
    check_int(natural_dim, "natural_dim", minimum=1, optional=True)
    check_positive(dispersion, "dispersion")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"`name` must be a string or None, got {name!r}")
    if eta_start is None:
        eta_start = _find_eta_start(log_partition, natural_dim)
    elif isinstance(eta_start, bool) or not isinstance(eta_start, int | float):
        raise ValueError(f"`eta_start` must be a number or None, got {eta_start!r}")
    return FunctionFamily(
        statistic_fn=sufficient_statistic,
        log_partition_fn=log_partition,
        log_base_fn=log_base_measure,
        support_value=support,
        dim=natural_dim,
        dispersion_value=dispersion,
        family_name=name or "family",
        start=float(eta_start),
        link_fn=canonical_link,
    )
