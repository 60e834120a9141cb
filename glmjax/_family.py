"""The exponential-family base class: a family writes T(y), a(eta) and log b(y); the rest is
derived.

A family here is an *exponential dispersion family*

    p(y; eta) = b(y) exp((<eta, T(y)> - a(eta)) / phi)

with a fixed dispersion ``phi`` (1 for Bernoulli, Poisson, Categorical, ...; ``scale**2`` for the
Gaussian, ``1/shape`` for the Gamma, ``1/trials`` for the Binomial proportion). Then

    E[T(y)]   = grad a(eta)              -> ``mean``
    Var[T(y)] = phi * hessian a(eta)     -> ``variance``
    g(mu)     = (grad a)^-1 (mu)         -> ``link`` (the canonical link)

all computed by autodiff from ``log_partition`` in `glmjax._derive`. Methods are written for one
example and broadcast over leading axes with ``jnp.vectorize`` (so they also work under
jit/vmap/grad).
"""

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ._derive import conjugate_link, mean_map, variance_map


class ClosedForms(NamedTuple):
    """Textbook formulas for a family's moments and link, used only to check the derived ones."""

    mean: object
    variance: object
    link: object


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_float(x: ArrayLike) -> Array:
    """``x`` as an array of a floating dtype (integers -> the default float), for ``jax.grad``."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


class ExponentialFamily(eqx.Module):
    """Base class. Subclasses implement `sufficient_statistic`, `log_partition`, `log_base_measure`
    and `in_support` for a single example; `dispersion` and `natural_dim` are overridable."""

    # a point in the interior of the natural parameter space, where the link's Newton search starts
    _eta_start: ClassVar[float] = 0.0

    # ----- what a family writes -----------------------------------------------------------------

    @abc.abstractmethod
    def _sufficient_statistic(self, y: Float[Array, ""]) -> Float[Array, "*m"]:
        """T(y) for one example."""

    @abc.abstractmethod
    def _log_partition(self, eta: Float[Array, "*m"]) -> Float[Array, ""]:
        """a(eta) for one natural parameter, written in a numerically stable way."""

    @abc.abstractmethod
    def _log_base_measure(self, y: Float[Array, ""]) -> Float[Array, ""]:
        """log b(y) for one example in the support (including any dispersion-dependent term)."""

    @abc.abstractmethod
    def _in_support(self, y: Float[Array, ""]) -> Bool[Array, ""]:
        """Whether ``y`` is a possible value."""

    @abc.abstractmethod
    def closed_forms(self) -> ClosedForms:
        """Textbook mean, variance and link, to check the derived ones (`glmjax verify`)."""

    _support_text: ClassVar[str] = ""
    _y_placeholder: ClassVar[float] = 0.0

    @property
    def natural_dim(self) -> int | None:
        """``None`` for a scalar natural parameter, ``m`` for a vector of length ``m``."""
        return None

    @property
    def identifiable(self) -> bool:
        """False for an over-parametrised family, whose hessian of ``a`` is singular."""
        return True

    @property
    def dispersion(self) -> Float[ArrayLike, ""]:
        """phi: 1 unless the family carries a scale."""
        return 1.0

    # ----- shapes -------------------------------------------------------------------------------

    @property
    def _eta_core(self) -> str:
        return "()" if self.natural_dim is None else "(m)"

    @property
    def _var_core(self) -> str:
        return "()" if self.natural_dim is None else "(m,m)"

    def _vectorize(self, fn, signature: str):
        return jnp.vectorize(fn, signature=signature)

    def check_support(self, y: ArrayLike, name: str = "y") -> None:
        """``ValueError`` if a concrete ``y`` has a value outside the support (no-op if traced)."""
        if not _is_concrete(y):
            return
        y = np.asarray(y)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"`{name}` contains NaN or inf")
        # a concrete y met while tracing (a constant inside jit) is checked now, not traced
        with jax.ensure_compile_time_eval():
            ok = np.asarray(self._vectorize(self._in_support, "()->()")(jnp.asarray(y)))
        if not ok.all():
            bad = np.asarray(y)[~ok] if np.ndim(y) else np.asarray(y)
            raise ValueError(
                f"`{name}` has {int((~ok).sum())} value(s) outside the support of "
                f"{type(self).__name__} ({self._support_text}), e.g. {np.ravel(bad)[:3].tolist()}"
            )

    def _safe_y(self, y):
        """``y`` where valid, a harmless placeholder elsewhere (so no NaN leaks into gradients)."""
        return jnp.where(
            self._in_support(y), y, jnp.asarray(self._y_placeholder, jnp.result_type(y))
        )

    # ----- the public methods -------------------------------------------------------------------

    def sufficient_statistic(self, y: ArrayLike) -> Float[Array, "..."]:
        """T(y)."""
        self.check_support(y)
        sig = "()->()" if self.natural_dim is None else "()->(m)"
        return self._vectorize(lambda v: self._sufficient_statistic(self._safe_y(v)), sig)(y)

    def log_partition(self, eta: ArrayLike) -> Float[Array, "*batch"]:
        """a(eta)."""
        return self._vectorize(self._log_partition, f"{self._eta_core}->()")(_as_float(eta))

    def log_base_measure(self, y: ArrayLike) -> Float[Array, "*batch"]:
        """log b(y); ``-inf`` outside the support under jit (``ValueError`` when concrete)."""
        self.check_support(y)

        def one(v):
            return jnp.where(self._in_support(v), self._log_base_measure(self._safe_y(v)), -jnp.inf)

        return self._vectorize(one, "()->()")(y)

    def log_prob(self, y: ArrayLike, eta: ArrayLike) -> Float[Array, "*batch"]:
        """log p(y; eta) = log b(y) + (<eta, T(y)> - a(eta)) / phi.

        Raises ``ValueError`` for concrete ``y`` outside the support; under jit such ``y`` gives
        ``-inf`` (never NaN).
        """
        self.check_support(y)

        def one(v, e):
            ok = self._in_support(v)
            v = self._safe_y(v)
            t = self._sufficient_statistic(v)
            lp = (
                self._log_base_measure(v)
                + (jnp.vdot(e, t) - self._log_partition(e)) / self.dispersion
            )
            return jnp.where(ok, lp, -jnp.inf)

        return self._vectorize(one, f"(),{self._eta_core}->()")(y, eta)

    def mean(self, eta: ArrayLike) -> Float[Array, "..."]:
        """E[T(y)] = grad a(eta), by ``jax.grad``."""
        core = self._eta_core
        return self._vectorize(mean_map(self._log_partition), f"{core}->{core}")(_as_float(eta))

    def variance(self, eta: ArrayLike) -> Float[Array, "..."]:
        """Var[T(y)] = phi * hessian a(eta), by ``jax.hessian`` (a matrix for vector eta)."""
        hess = variance_map(self._log_partition)
        return self._vectorize(
            lambda e: self.dispersion * hess(e), f"{self._eta_core}->{self._var_core}"
        )(_as_float(eta))

    def link(self, mu: ArrayLike) -> Float[Array, "..."]:
        """The canonical link g(mu) = (grad a)^-1(mu), by Newton's method on the convex conjugate.

        Differentiable (implicit function theorem). For an over-parametrised family (a singular
        hessian, e.g. ``Categorical(k, minimal=False)``) it returns the minimum-norm solution.
        """
        mu = _as_float(mu)
        core = self._eta_core

        def one(m):
            return conjugate_link(
                self._log_partition, m, self._eta_start, singular=not self.identifiable
            )

        return self._vectorize(one, f"{core}->{core}")(mu)
