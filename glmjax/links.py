r"""Link functions ``eta = g(mu)`` between a GLM's mean and its linear predictor.

A link writes its mean function `Link.inverse` (``eta -> mu``); its derivatives come from
autodiff, and `Link.__call__` (``mu -> eta``) defaults to inverting it by bisection over the
floats (`glmjax._derive.bisect`: exact to the last bit for a monotone ``inverse``). The named links
are R's ``make.link`` ones plus the loglog, each written in closed form and returning NaN outside
its valid range (R's ``valideta``), so that a fit's line search steps back inside:

| name | class | ``g(mu)`` | ``mu = g^-1(eta)`` |
|---|---|---|---|
| ``"identity"`` | `Identity` | mu | eta |
| ``"log"`` | `Log` | log mu | e^eta |
| ``"logit"`` | `Logit` | log(mu / (1 - mu)) | 1 / (1 + e^-eta) |
| ``"probit"`` | `Probit` | Phi^-1(mu) | Phi(eta) |
| ``"cauchit"`` | `Cauchit` | tan(pi (mu - 1/2)) | 1/2 + arctan(eta) / pi |
| ``"cloglog"`` | `CLogLog` | log(-log(1 - mu)) | 1 - exp(-e^eta) |
| ``"loglog"`` | `LogLog` | -log(-log mu) | exp(-e^-eta) |
| ``"inverse"`` | `Inverse` | 1 / mu | 1 / eta (eta != 0) |
| ``"inverse_squared"`` | `InverseSquared` | 1 / mu^2 | 1 / sqrt(eta) (eta > 0) |
| ``"sqrt"`` | `Sqrt` | sqrt(mu) | eta^2 (eta > 0) |
| | `Power(p)` | mu^p (log for p = 0) | eta^(1/p) (eta > 0) |

`Canonical(family)` is the family's canonical link (``link=None`` in `glmjax.fit_glm`): the linear
predictor is then the natural parameter itself.

```python
import jax, jax.numpy as jnp, glmjax as gj

class MyProbit(gj.Link):
    def inverse(self, eta):
        return jax.scipy.stats.norm.cdf(eta)

MyProbit()(0.975)          # 1.959964..., by inverting `inverse`
```
"""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri
from jaxtyping import Array, ArrayLike, Float

from ._derive import bisect
from ._misc import as_float

__all__ = [
    "Canonical",
    "Cauchit",
    "CLogLog",
    "Identity",
    "Inverse",
    "InverseSquared",
    "Link",
    "Log",
    "Logit",
    "LogLog",
    "NAMES",
    "Power",
    "Probit",
    "Sqrt",
    "get",
]


class Link(eqx.Module):
    """A link function ``eta = g(mu)`` for a scalar mean. Write `inverse`; optionally
    `__call__`."""

    name: ClassVar[str] = "custom"

    @abc.abstractmethod
    def inverse(self, eta: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """The mean ``mu = g^-1(eta)`` (monotone in ``eta``); NaN where ``eta`` is invalid."""

    def __call__(self, mu: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """``eta = g(mu)``: by default the ``eta`` where the monotone `inverse` crosses ``mu``
        (bisection over the floats; NaN where ``inverse`` never reaches ``mu``)."""

        def one(m):
            # a valid reference point: NaN (invalid) eta above it count as beyond the root
            probes = jnp.array([0.0, 1.0, -1.0, 0.5, 2.0], m.dtype)
            ref = probes[jnp.argmax(jnp.isfinite(self.inverse(probes)))]
            up = jax.grad(self.inverse)(ref) > 0

            def beyond(eta):
                value = self.inverse(eta)
                return jnp.where(jnp.isnan(value), eta > ref, jnp.where(up, value >= m, value <= m))

            lo, hi = bisect(beyond, m.dtype)
            f_lo, f_hi = self.inverse(lo) - m, self.inverse(hi) - m
            straddles = jnp.isfinite(f_lo) & jnp.isfinite(f_hi) & (f_lo * f_hi <= 0)
            return jnp.where(straddles, jnp.where(jnp.abs(f_lo) < jnp.abs(f_hi), lo, hi), jnp.nan)

        return jnp.vectorize(one)(as_float(mu))

    def derivative(self, eta: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
        """``d mu / d eta``, by ``jax.grad`` of `inverse`."""
        return jnp.vectorize(jax.grad(self.inverse))(as_float(eta))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _positive(eta):
    return eta > 0


class Identity(Link):
    name: ClassVar[str] = "identity"

    def inverse(self, eta):
        return as_float(eta)

    def __call__(self, mu):
        return as_float(mu)


class Log(Link):
    name: ClassVar[str] = "log"

    def inverse(self, eta):
        return jnp.exp(as_float(eta))

    def __call__(self, mu):
        return jnp.log(as_float(mu))


class Logit(Link):
    name: ClassVar[str] = "logit"

    def inverse(self, eta):
        return jax.nn.sigmoid(as_float(eta))

    def __call__(self, mu):
        mu = as_float(mu)
        return jnp.log(mu) - jnp.log1p(-mu)


class Probit(Link):
    name: ClassVar[str] = "probit"

    def inverse(self, eta):
        return ndtr(as_float(eta))

    def __call__(self, mu):
        return ndtri(as_float(mu))


class Cauchit(Link):
    name: ClassVar[str] = "cauchit"

    def inverse(self, eta):
        # 1/2 + arctan(eta)/pi loses all digits as eta -> -inf; arctan(-1/eta)/pi keeps them
        eta = as_float(eta)
        negative = eta < 0
        far = jnp.arctan(-1.0 / jnp.where(negative, eta, -1.0)) / jnp.pi
        return jnp.where(negative, far, 0.5 + jnp.arctan(jnp.where(negative, 0.0, eta)) / jnp.pi)

    def __call__(self, mu):
        return jnp.tan(jnp.pi * (as_float(mu) - 0.5))


class CLogLog(Link):
    name: ClassVar[str] = "cloglog"

    def inverse(self, eta):
        return -jnp.expm1(-jnp.exp(as_float(eta)))

    def __call__(self, mu):
        return jnp.log(-jnp.log1p(-as_float(mu)))


class LogLog(Link):
    name: ClassVar[str] = "loglog"

    def inverse(self, eta):
        return jnp.exp(-jnp.exp(-as_float(eta)))

    def __call__(self, mu):
        return -jnp.log(-jnp.log(as_float(mu)))


class Inverse(Link):
    name: ClassVar[str] = "inverse"

    def inverse(self, eta):
        eta = as_float(eta)
        return jnp.where(eta != 0, 1.0 / jnp.where(eta != 0, eta, 1.0), jnp.nan)

    def __call__(self, mu):
        return 1.0 / as_float(mu)


class InverseSquared(Link):
    name: ClassVar[str] = "inverse_squared"

    def inverse(self, eta):
        eta = as_float(eta)
        return jnp.where(
            _positive(eta), 1.0 / jnp.sqrt(jnp.where(_positive(eta), eta, 1.0)), jnp.nan
        )

    def __call__(self, mu):
        return 1.0 / as_float(mu) ** 2


class Sqrt(Link):
    name: ClassVar[str] = "sqrt"

    def inverse(self, eta):
        eta = as_float(eta)
        return jnp.where(_positive(eta), eta**2, jnp.nan)

    def __call__(self, mu):
        return jnp.sqrt(as_float(mu))


class Power(Link):
    """``g(mu) = mu^p`` (``log`` for ``p = 0``), R's ``power(lambda)``; ``mu = eta^(1/p)`` for
    ``eta > 0``."""

    p: float = eqx.field(static=True)
    name: ClassVar[str] = "power"

    def __check_init__(self):
        if isinstance(self.p, bool) or not isinstance(self.p, int | float):
            raise ValueError(f"`p` must be a number, got {self.p!r}")

    def inverse(self, eta):
        eta = as_float(eta)
        if self.p == 0:
            return jnp.exp(eta)
        if self.p == 1:
            return eta
        safe = jnp.where(_positive(eta), eta, 1.0)
        return jnp.where(_positive(eta), safe ** (1.0 / self.p), jnp.nan)

    def __call__(self, mu):
        mu = as_float(mu)
        return jnp.log(mu) if self.p == 0 else mu**self.p

    def __repr__(self) -> str:
        return f"Power({self.p!r})"


class Canonical(Link):
    """The family's canonical link: ``mu = grad a(eta)`` (`ExponentialFamily.mean`) and
    ``eta = (grad a)^-1 (mu)`` (`ExponentialFamily.link`); the linear predictor is the natural
    parameter."""

    family: object
    name: ClassVar[str] = "canonical"

    def inverse(self, eta):
        return self.family.mean(eta)

    def __call__(self, mu):
        return self.family.link(mu)

    def __repr__(self) -> str:
        return f"Canonical({self.family.name})"


NAMES: dict[str, type[Link]] = {
    cls.name: cls
    for cls in (
        Identity,
        Log,
        Logit,
        Probit,
        Cauchit,
        CLogLog,
        LogLog,
        Inverse,
        InverseSquared,
        Sqrt,
    )  # fmt: skip
}


def get(link, family) -> tuple[Link, bool]:
    """The `Link` for `fit_glm`'s ``link`` argument and whether it is ``family``'s canonical one
    (then the linear predictor is the natural parameter and no conversion is needed).

    **Raises:** ``ValueError`` for an unknown name, a non-link, or a non-canonical link of a
    family with a vector natural parameter.
    """
    if link is None or isinstance(link, Canonical):
        return Canonical(family), True
    if isinstance(link, str):
        if link not in NAMES:
            raise ValueError(
                f"`link` must be None, a glmjax.Link or one of {', '.join(map(repr, NAMES))}, "
                f"got {link!r}"
            )
        link = NAMES[link]()
    if not isinstance(link, Link):
        raise ValueError(f"`link` must be None, a name or a glmjax.Link, got {link!r}")
    if family.natural_dim is not None:
        raise ValueError(
            f"`link`: {family.name} has a vector natural parameter; only its canonical link "
            "(link=None) is supported"
        )
    canonical = type(link) in NAMES.values() and link.name == family.canonical_link_name
    return link, canonical
