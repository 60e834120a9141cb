r"""Checking families and links: `verify_family` from the density alone, and ``glmjax verify``.

**`verify_family(family)`** needs no closed form. For each ``eta`` of a grid it computes, from the
density ``p(y; eta) = exp(log_prob(y, eta))`` over the family's `Support`,

    Z = sum_y p(y),   E[T] = sum_y T(y) p(y),   Var[T] = sum_y (T(y) - E[T])^2 p(y)

(sums over a discrete support — an infinite one until the remaining mass is below ``1e-17`` of the
total — or double-exponential quadrature over an interval split at the derived mean and a few
standard deviations around it, refined until two levels agree to ``1e-13``), and compares: ``Z``
with 1, ``E[T]`` with the autodiff `mean` (``grad a``), ``Var[T]`` with the autodiff `variance`
(``phi hessian a``), and ``link(mean(eta))`` with ``eta`` (for an over-parametrised family,
``mean(link(mean(eta)))`` with ``mean(eta)``); when the family writes its own `link`, also that
with the derived `conjugate_link`. A wrong base measure or log-partition breaks ``Z = 1``; a wrong
support breaks the sums; a wrong link breaks the round trip. Relative errors: ``|Z - 1|``; ``|E -
mean| / max(|mean|, sd)`` per entry; ``|Var - variance| / sqrt(variance_rr variance_ss)``;
``|link(mean) - eta| / max(1, |eta|)``. All must be at most ``1e-8``. Float64 is used throughout
(inside this call only).

**``glmjax verify``** checks every built-in family that way, and also each derived mean,
variance and link against the textbook closed forms on wide grids (relative ``1e-10``; link
errors measured against ``max(|g|, sigma)`` with ``sigma_i = sum_j |d g_i / d mu_j| |mu_j|``, the
change of ``eta`` that a relative change of 1 in ``mu`` causes: no method working from the rounded
``mu`` does better than ``eps * sigma``), and each named link (`glmjax.links`): its written
``g`` against the bisection inverse of its ``g^-1`` (errors against ``max(1, |eta|, sigma)``) and
``d mu / d eta`` by autodiff against Richardson-extrapolated central differences (relative to them,
at the points where their rounding error is below ``1e-8`` of them, tolerance ``1e-6``). Each row
of the table says what its error is relative to; the symbols are explained under it. The grids
(float64):

- real line (Bernoulli, Binomial, Poisson, Gaussian): 141 points evenly in [-700, 700], plus 0
  and +-10^j, j = -12..2; Gamma, Exponential: -10^j, j in [-150, 150]; inverse Gaussian:
  -10^j, j in [-150, 150]; Geometric, NegativeBinomial: -10^j, j in [-150, log10 700];
  Categorical(k): every eta in {-700, -300, -30, -1, 0, 1e-8, 1, 30, 300, 700}^m;
- ``mu``: Bernoulli, Binomial 10^j (j in [-290, log10 0.5]) and 1 - 10^j (j in [-15, log10
  0.5]); Poisson 10^j, j in [-290, 300]; NegativeBinomial, Geometric 10^j, j in [-290, 150];
  Gaussian 0 and +-10^j, j in [-300, 150]; Gamma, Exponential, inverse Gaussian 10^j, j in
  [-100, 100]; Categorical(k, minimal=True) probability vectors proportional to 10^e, e in
  {-280, -100, -10, -1, 0}^k with the reference class >= 0.01 (its probability ``1 - sum mu``
  must be resolved); Categorical(k, minimal=False) e in {-20, -10, -1, 0}^k.
"""

import dataclasses
import importlib
import math
import sys
import textwrap
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import expit

from . import links as links_module
from ._exponential_family import ExponentialFamily
from ._families import (
    Bernoulli,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    Gaussian,
    Geometric,
    InverseGaussian,
    NegativeBinomial,
    Poisson,
)

DENSITY_TOLERANCE = 1e-8
CLOSED_FORM_TOLERANCE = 1e-10
FINITE_DIFFERENCE_RESOLUTION = 1e-8
_TINY = float(np.finfo(np.float64).tiny)
_MAX_TERMS = 2**22


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a report: the largest relative error of one check over a grid, and what the
    error was divided by (`relative_to`, a formula in the symbols of `LEGEND`)."""

    subject: str
    check: str
    grid: str
    points: int
    max_rel_err: float
    relative_to: str
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.max_rel_err <= self.tolerance)


# the symbols of the rows' `relative_to`, explained under the table when a row uses them
LEGEND = {
    "sigma": "sigma = |d eta/d mu| |mu|: how far eta moves for a relative change of 1 in mu (no "
    "link evaluated at a correctly rounded mu can do better than eps sigma)",
    "sd": "sd = the square root of the derived variance (sd_i sd_j for covariance entry i, j)",
    "central diff.": "central diff. = Richardson's (4 D(h) - D(2h)) / 3, D(h) = (g^-1(eta + h) - "
    "g^-1(eta - h)) / 2h, h = 1e-6 max(1, |eta|); only at the points where its rounding error is "
    f"below {FINITE_DIFFERENCE_RESOLUTION:.0e} of it",
}


def _format_error(err: float) -> str:
    # 0 is exact agreement; below 1e-99 (a bisection's 2e-308 at eta = 0) the digits say nothing
    if err == 0:
        return "0"
    return "< 1e-99" if err < 1e-99 else f"{err:.2e}"


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table with a header per column, then the symbols used."""
    header = ("family / link", "check", "grid", "points", "max rel. error", "relative to",
              "tolerance", "result")  # fmt: skip
    body = [
        (
            r.subject,
            r.check,
            r.grid,
            str(r.points),
            _format_error(r.max_rel_err),
            r.relative_to,
            f"{r.tolerance:.0e}",
            "ok" if r.ok else "FAIL",
        )  # fmt: skip
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        "max rel. error: the largest over the grid (and the entries of a vector or matrix) of "
        "|computed - reference| / (relative to)"
    ]
    notes += [text for symbol, text in LEGEND.items() if any(symbol in r.relative_to for r in rows)]
    width = max(100, len(lines[1]))  # the table's, so that formulas rarely break
    notes = [textwrap.fill(n, width, initial_indent="- ", subsequent_indent="  ") for n in notes]
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The result of `verify_family`: `ok` (every check within tolerance) and the `rows`;
    ``print`` it for the table."""

    family: str
    rows: tuple[Row, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return f"{format_table(self.rows)}\n\n{self.family}: {verdict}"


# ----- moments from the density ------------------------------------------------------------------


def _moments_discrete(family, eta: np.ndarray):
    """``(Z, E[T], E[T T^T], terms)`` by summation over the grid ``lower + step k``."""
    support = family.support
    lower, upper, step = (float(np.asarray(v)) for v in (support.lower, support.upper,
                                                          support.step))  # fmt: skip

    @jax.jit
    def block(ys):
        logp = family.log_prob(ys, jnp.broadcast_to(eta, ys.shape + eta.shape))
        t = jax.vmap(family.sufficient_statistic)(ys).reshape(ys.shape[0], -1)
        return logp, t

    finite = math.isfinite(upper)
    count = int(round((upper - lower) / step)) + 1 if finite else 1024
    while True:
        ys = lower + step * np.arange(min(count, _MAX_TERMS), dtype=np.float64)
        logp, t = (np.asarray(a) for a in block(jnp.asarray(ys)))
        top = np.max(logp)
        p = np.exp(logp - top)
        total = p.sum()
        tail = p[len(p) // 2 :].sum()
        if finite or (tail <= 1e-17 * total and p[-1] <= p[len(p) // 2]) or count >= _MAX_TERMS:
            break
        count *= 4
    complete = finite or tail <= 1e-17 * total
    Z = total * math.exp(top) if np.isfinite(top) else 0.0
    p = p / total
    mean = p @ t
    second = (t * p[:, None]).T @ t
    return (Z if complete else math.inf), mean, second - np.outer(mean, mean), len(ys)


def _double_exponential(a: float, b: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the double-exponential (tanh-sinh) rule with step ``h`` on (a, b):
    ``tanh-sinh`` for a finite interval, ``exp-sinh`` for a half-line, ``sinh-sinh`` for the
    line. Their weights decay doubly exponentially, so endpoint singularities (a Gamma density
    with shape < 1 at 0) and infinite tails cost a few nodes."""
    t = np.arange(-4.5, 4.5 + h / 2, h)
    u = 0.5 * np.pi * np.sinh(t)
    du = 0.5 * np.pi * np.cosh(t)
    if math.isfinite(a) and math.isfinite(b):
        # 1 -/+ tanh(u) = 2 expit(-/+ 2u), kept accurate near both ends (a y^-0.7 singularity
        # at 0 has mass 1e-5 below the 1e-16 that a + half (1 + tanh u) could resolve)
        half = 0.5 * (b - a)
        x = np.where(u < 0, a + 2 * half * expit(2 * u), b - 2 * half * expit(-2 * u))
        w = half * du / np.cosh(u) ** 2
    elif math.isfinite(a):
        x, w = a + np.exp(u), du * np.exp(u)
    elif math.isfinite(b):
        x, w = b - np.exp(u), du * np.exp(u)
    else:
        x, w = np.sinh(u), du * np.cosh(u)
    keep = np.isfinite(x) & np.isfinite(w) & (w > 0) & (x > a) & (x < b)
    return x[keep], w[keep] * h


def _moments_continuous(family, eta: np.ndarray, mean_hint, sd_hint):
    """``(Z, E[T], Var[T], evaluations)`` by double-exponential quadrature over the support's
    interval, split at the derived mean and a few standard deviations around it; the step is
    halved until two successive sums agree to ``1e-13``."""
    support = family.support
    lower, upper = float(np.asarray(support.lower)), float(np.asarray(support.upper))

    @jax.jit
    def integrand(ys):
        logp = family.log_prob(ys, jnp.broadcast_to(jnp.asarray(eta), ys.shape + eta.shape))
        t = jax.vmap(family.sufficient_statistic)(ys).reshape(ys.shape[0], -1)
        p = jnp.where(jnp.isfinite(logp), jnp.exp(logp), 0.0)
        return jnp.concatenate([p[:, None], p[:, None] * t,
                                p[:, None] * (t[:, :, None] * t[:, None, :]).reshape(len(ys), -1)],
                               axis=1)  # fmt: skip

    points = {lower, upper}
    if math.isfinite(mean_hint) and math.isfinite(sd_hint) and sd_hint > 0:
        for k in (0.0, 1.0, -1.0, 3.0, -3.0, 10.0, -10.0, 40.0, -40.0):
            points.add(min(max(mean_hint + k * sd_hint, lower), upper))
    edges = sorted(points)
    pieces = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    previous, evaluations = None, 0
    for h in (2.0**-3, 2.0**-4, 2.0**-5, 2.0**-6, 2.0**-7):
        nodes = [_double_exponential(a, b, h) for a, b in pieces]
        x = np.concatenate([n[0] for n in nodes])
        w = np.concatenate([n[1] for n in nodes])
        total = w @ np.asarray(integrand(jnp.asarray(x)), np.float64)
        evaluations += x.size
        if previous is not None and np.max(np.abs(total - previous)) <= 1e-13 * np.max(
            np.abs(total)
        ):
            break
        previous = total
    d = int(round((math.sqrt(4 * len(total) - 3) - 1) / 2))  # len(total) = 1 + d + d^2
    Z = total[0]
    mean = total[1 : 1 + d] / Z
    second = total[1 + d :].reshape(d, d) / Z
    return Z, mean, second - np.outer(mean, mean), evaluations


def _default_grid(family) -> np.ndarray:
    """A few ``eta`` around the family's `eta_start` where ``a`` is finite."""
    start = float(family.eta_start)
    m = family.natural_dim
    if m is None:
        candidates = [np.array(start + d) for d in (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)]
    else:
        base = np.full(m, start)
        mixed = base + np.resize([0.3, -0.7, 1.1, -0.2], m)
        axes = [v for j in range(m) for v in (0.5 * np.eye(m)[j], -np.eye(m)[j])]
        candidates = [base, mixed] + [base + v for v in axes]
    grad = jax.grad(family.log_partition)
    keep = []
    for eta in candidates:
        with jax.ensure_compile_time_eval():
            a = family.log_partition(jnp.asarray(eta))
            g = grad(jnp.asarray(eta))
        if np.isfinite(a) and np.all(np.isfinite(g)):
            keep.append(eta)
    return np.stack(keep)


def _rel(num, ref, scale) -> float:
    num, ref, scale = (np.asarray(x, np.float64) for x in (num, ref, scale))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: counted as inf below
        err = np.where(np.isfinite(num) & np.isfinite(ref), np.abs(num - ref), np.inf)
        return float(np.max(err / np.maximum(scale, _TINY)))


def verify_family(family: ExponentialFamily, *, eta=None) -> VerifyReport:
    """Check ``family`` from its density alone (module docstring).

    **Arguments:**

    - `family`: any `ExponentialFamily` (built-in, subclassed or from `make_family`).
    - `eta`: natural parameters to check at, ``(g,)`` or ``(g, m)``; default a few around the
      family's `eta_start`.

    **Returns:** a `VerifyReport` (``.ok``, ``.rows``; ``print`` it for the table).
    """
    if not isinstance(family, ExponentialFamily):
        raise ValueError(f"`family` must be an ExponentialFamily, got {family!r}")
    with jax.enable_x64(True):
        return _verify_family(family, eta)


def _verify_family(family, eta) -> VerifyReport:
    m = family.natural_dim
    grid = _default_grid(family) if eta is None else np.asarray(eta, np.float64)
    if grid.ndim != (1 if m is None else 2) or (m is not None and grid.shape[1] != m):
        shape = "(g,)" if m is None else f"(g, {m})"
        raise ValueError(f"`eta` must have shape {shape} for {family.name}, got {grid.shape}")
    mean_d = np.asarray(jax.jit(family.mean)(jnp.asarray(grid)), np.float64).reshape(len(grid), -1)
    var_d = np.asarray(jax.jit(family.variance)(jnp.asarray(grid)), np.float64)
    var_d = var_d.reshape(len(grid), mean_d.shape[1], mean_d.shape[1])
    errors = {"normalisation": 0.0, "mean": 0.0, "variance": 0.0}
    scales = {
        "normalisation": "1 (the exact Z)",
        "mean": "max(|mean|, sd)",
        "variance": "sd_i sd_j",
    }
    evaluations = 0
    for eta_i, mu, var in zip(grid, mean_d, var_d, strict=True):
        if family.support.discrete:
            Z, mean, cov, n = _moments_discrete(family, eta_i)
        else:
            # split the interval around the mean of y when T(y) is y itself (else no hint)
            sd = math.sqrt(max(float(np.trace(var)), 0.0)) if m is None else math.nan
            Z, mean, cov, n = _moments_continuous(family, eta_i, float(mu[0]), sd)
        evaluations += n
        sd = np.sqrt(np.abs(np.diagonal(var)))
        errors["normalisation"] = max(errors["normalisation"], abs(Z - 1.0))
        errors["mean"] = max(errors["mean"], _rel(mean, mu, np.maximum(np.abs(mu), sd)))
        errors["variance"] = max(errors["variance"], _rel(cov, var, np.outer(sd, sd)))
    where = "eta near eta_start" if eta is None else "the eta given"
    text = f"{where}; {evaluations} density values"
    name = family.name
    rows = [Row(name, check, text, len(grid), err, scales[check], DENSITY_TOLERANCE)
            for check, err in errors.items()]  # fmt: skip

    eta_j = jnp.asarray(grid)
    mean_j = jax.jit(family.mean)(eta_j)
    back = jax.jit(family.link)(mean_j)
    if family.identifiable:
        trip, scale = _rel(back, grid, np.maximum(1.0, np.abs(grid))), "max(1, |eta|)"
    else:  # eta is known only up to the null space: compare mean(link(mean(eta))) with mean(eta)
        trip = _rel(jax.jit(family.mean)(back), mean_j, np.maximum(np.abs(mean_j), _TINY))
        scale = "|mean|"
    rows.append(Row(name, "link(mean(eta)) = eta", where, len(grid), trip, scale,
                    DENSITY_TOLERANCE))  # fmt: skip
    if type(family).link is not ExponentialFamily.link:
        derived = jax.jit(family.conjugate_link)(mean_j)
        err = _rel(back, derived, np.maximum(1.0, np.abs(derived)))
        rows.append(Row(name, "link = derived link", where, len(grid), err, "max(1, |eta|)",
                        DENSITY_TOLERANCE))  # fmt: skip
    return VerifyReport(name, tuple(rows))


# ----- glmjax verify: closed forms and links ------------------------------------------------------


def _real_line() -> tuple[np.ndarray, str]:
    small = np.logspace(-12, 2, 15)
    eta = np.unique(np.concatenate([np.linspace(-700, 700, 141), [0.0], small, -small]))
    return eta, "eta in [-700, 700]"


def _categorical_grids(k: int, minimal: bool) -> tuple[np.ndarray, str, np.ndarray, str]:
    m = k - 1 if minimal else k
    values = np.array([-700, -300, -30, -1, 0, 1e-8, 1, 30, 300, 700], dtype=np.float64)
    eta = np.stack(np.meshgrid(*[values] * m, indexing="ij"), axis=-1).reshape(-1, m)
    exps = np.array([-280, -100, -10, -1, 0] if minimal else [-20, -10, -1, 0], dtype=np.float64)
    weights = 10.0 ** np.stack(np.meshgrid(*[exps] * k, indexing="ij"), axis=-1).reshape(-1, k)
    probs = weights / weights.sum(axis=1, keepdims=True)
    if minimal:
        probs = probs[probs[:, -1] >= 1e-2]
    mu = probs[:, :m]
    low = -280 if minimal else -20
    mu_text = f"p ~ 10^{{{low}..0}}^{k}" + (", p_k >= 0.01" if minimal else "")
    return eta, f"eta in {{-700..700}}^{m}", mu, mu_text


def closed_form_cases() -> list[tuple[str, ExponentialFamily, np.ndarray, str, np.ndarray, str]]:
    """``(label, family, eta grid, text, mu grid, text)`` for every built-in family."""
    real, real_text = _real_line()

    def neg_log(lo, hi, num):
        eta = -np.logspace(lo, hi, num)
        return eta, f"eta = -10^[{lo:g}, {hi:.3g}]"

    def pos_log(lo, hi, num):
        return np.logspace(lo, hi, num), f"mu = 10^[{lo:g}, {hi:g}]"

    prob = np.concatenate([np.logspace(-290, np.log10(0.5), 59),
                           1 - np.logspace(-15, np.log10(0.5), 31)])  # fmt: skip
    prob_text = "mu = 10^[-290, -0.3], 1 - 10^[-15, -0.3]"
    gauss = np.logspace(-300, 150, 91)
    gauss_mu = np.concatenate([-gauss[::-1], [0.0], gauss])
    gauss_text = "mu = 0, +-10^[-300, 150]"
    gamma_eta = neg_log(-150, 150, 61)
    geom_eta = neg_log(-150, np.log10(700), 61)
    cases = [
        ("Bernoulli()", Bernoulli(), *_real_line(), prob, prob_text),
        ("Binomial(trials=5)", Binomial(trials=5), real, real_text, prob, prob_text),
        ("Poisson()", Poisson(), real, real_text, *pos_log(-290, 300, 119)),
        ("Gaussian(2.0)", Gaussian(2.0), real, real_text, gauss_mu, gauss_text),
        ("Gamma(3.0)", Gamma(3.0), *gamma_eta, *pos_log(-150, 150, 61)),
        ("InverseGaussian(2.0)", InverseGaussian(2.0), *gamma_eta, *pos_log(-100, 100, 41)),
        ("Exponential()", Exponential(), *gamma_eta, *pos_log(-150, 150, 61)),
        ("Geometric()", Geometric(), *geom_eta, *pos_log(-290, 150, 89)),
        ("NegativeBinomial(2.5)", NegativeBinomial(2.5), *geom_eta, *pos_log(-290, 150, 89)),
    ]
    for k, minimal in [(4, True), (4, False)]:
        label = f"Categorical({k}, minimal={minimal})"
        cases.append((label, Categorical(k, minimal=minimal), *_categorical_grids(k, minimal)))
    return cases


def _link_sensitivity(link: Callable, mu: jax.Array, vector: bool) -> jax.Array:
    """sigma = |d g / d mu| |mu|: how much eta moves for a relative change of 1 in mu."""
    if vector:
        jac = jax.vmap(jax.jacfwd(link))(mu)
        return jnp.einsum("nij,nj->ni", jnp.abs(jac), jnp.abs(mu))
    return jnp.abs(jax.vmap(jax.grad(link))(mu) * mu)


@jax.jit
def _closed_form_values(family, eta, mu):
    closed = family.closed_forms()
    vector = family.natural_dim is not None
    one = jax.vmap if vector else (lambda f: f)
    return (
        (family.mean(eta), one(closed.mean)(eta)),
        (family.variance(eta), one(closed.variance)(eta)),
        (family.conjugate_link(mu), family.link(mu), _link_sensitivity(family.link, mu, vector)),
    )


def check_closed_forms(label, family, eta, eta_text, mu, mu_text) -> list[Row]:
    """Derived mean, variance and link against the closed forms (three rows)."""
    mean, variance, (derived, written, sigma) = _closed_form_values(
        family, jnp.asarray(eta), jnp.asarray(mu)
    )
    tol = CLOSED_FORM_TOLERANCE
    return [
        Row(label, "mean = closed form", eta_text, len(eta),
            _rel(mean[0], mean[1], np.abs(mean[1])), "|closed form|", tol),
        Row(label, "variance = closed form", eta_text, len(eta),
            _rel(variance[0], variance[1], np.abs(variance[1])), "|closed form|", tol),
        Row(label, "derived link = written link", mu_text, len(mu),
            _rel(derived, written, np.maximum(np.abs(written), sigma)), "max(|eta|, sigma)", tol),
    ]  # fmt: skip


def check_link(link) -> list[Row]:
    """A named link: ``g(g^-1(eta)) = eta`` against the bisection inverse of ``g^-1``, and
    ``d mu / d eta`` by autodiff against central differences (Richardson-extrapolated, so that
    what is left of their error is rounding, bounded by ``eps max |g^-1| / h``; checked where
    that bound is below `FINITE_DIFFERENCE_RESOLUTION` of the derivative: where the mean
    saturates, ``1 - 1e-12`` say, no difference of rounded means resolves its slope)."""
    eta = np.linspace(-4.0, 4.0, 81)
    half_line = not np.isfinite(np.asarray(link.inverse(jnp.zeros(()))))
    if half_line:
        eta = eta[eta > 0]  # a link valid on a half-line (1/mu, 1/mu^2, sqrt, powers)
    text = "eta in (0, 4]" if half_line else "eta in [-4, 4]"
    mu = jnp.asarray(link.inverse(jnp.asarray(eta)))
    written = np.asarray(link(mu))
    # where the mean saturates (cloglog's 1 - exp(-e^4) rounds to 1) no inverse can be checked
    keep = np.isfinite(np.asarray(mu)) & np.isfinite(written)
    eta, mu, written = eta[keep], mu[keep], written[keep]
    inverted = np.asarray(jax.jit(lambda m: links_module.Link.__call__(link, m))(mu))
    auto = np.asarray(link.derivative(jnp.asarray(eta)))
    # sigma = |d eta / d mu| |mu|: where the mean saturates, eta is only known to eps * sigma
    sigma = np.abs(np.asarray(mu)) / np.maximum(np.abs(auto), _TINY)

    h = 1e-6 * np.maximum(1.0, np.abs(eta))
    m2, m1, p1, p2 = (np.asarray(link.inverse(jnp.asarray(eta + s * h))) for s in (-2, -1, 1, 2))
    fd = (8 * (p1 - m1) - (p2 - m2)) / (12 * h)  # (4 D(h) - D(2h)) / 3: error O(h^4)
    rounding = np.finfo(np.float64).eps * np.max(np.abs([m2, m1, p1, p2]), axis=0) / h
    resolved = rounding <= FINITE_DIFFERENCE_RESOLUTION * np.abs(fd)
    name = f"link {link.name}" if link.name != "power" else f"link {link!r}"
    return [
        Row(name, "g = inverse of g^-1", text, eta.size,
            _rel(written, inverted, np.maximum(np.maximum(1.0, np.abs(inverted)), sigma)),
            "max(1, |eta|, sigma)", 1e-10),
        Row(name, "d mu/d eta = finite diff.", text, int(resolved.sum()),
            _rel(auto[resolved], fd[resolved], np.abs(fd[resolved])), "|central diff.|", 1e-6),
    ]  # fmt: skip


def _load_family(spec: str) -> ExponentialFamily:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"`--family` must be 'package.module:attribute', got {spec!r}")
    value = getattr(importlib.import_module(module_name), attr)
    if callable(value) and not isinstance(value, ExponentialFamily):
        try:
            value = value()
        except TypeError:
            pass
    if not isinstance(value, ExponentialFamily):
        raise ValueError(
            f"`--family` {spec!r} is not an ExponentialFamily or a function of no arguments "
            f"returning one (got {value!r})"
        )
    return value


def run_verify(family: str | None = None) -> int:
    """``glmjax verify``: print the tables; 0 if every check passes, else 1. With ``family``
    (``"package.module:attribute"``, a family or a function returning one) only
    `verify_family` of that family."""
    if family is not None:
        report = verify_family(_load_family(family))
        print(report)
        return 0 if report.ok else 1
    with jax.enable_x64(True):
        rows = []
        for case in closed_form_cases():
            rows += check_closed_forms(*case)
            # labelled as constructed: the two Categorical cases share one `name`
            rows += [dataclasses.replace(r, subject=case[0]) for r in verify_family(case[1]).rows]
        for cls in links_module.NAMES.values():
            rows += check_link(cls())
        rows += check_link(links_module.Power(1 / 3))
    print(format_table(rows))
    worst = max(rows, key=lambda r: r.max_rel_err / r.tolerance)
    failed = [r for r in rows if not r.ok]
    print(
        f"\n{len(rows)} checks; the closest to its tolerance: {worst.subject}, {worst.check} "
        f"({_format_error(worst.max_rel_err)} of {worst.tolerance:.0e})."
    )
    if failed:
        print(f"{len(failed)} check(s) FAILED.", file=sys.stderr)
        return 1
    return 0
