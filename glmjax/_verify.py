r"""``glmjax verify``: each family's autodiff-derived mean, variance and link against closed forms.

For each family (with a few parameter values) the derived ``mean(eta)``, ``variance(eta)`` and
``link(mu)`` are evaluated in float64 on the grids below and compared entry by entry with the
family's `closed_forms()`; one row per family and quantity reports the largest absolute and
relative error, and the exit code is 1 if any relative error exceeds ``1e-10``.

**Relative error.** Mean and variance: ``|d - c| / max(|c|, tiny)`` with ``tiny`` the smallest
normal float64 (2.2e-308), so values that underflow are compared on that absolute scale (XLA on
CPU flushes subnormals to zero). Link: ``|d - c| / max(|c|, sigma, tiny)`` with

    sigma_i = sum_j |d g_i / d mu_j| |mu_j|     (closed-form link g, differentiated by jax),

the change of ``eta`` caused by a relative change of 1 in ``mu``. Where ``eta`` is not small,
``|c|`` dominates and this is the plain relative error; where the link is ill-conditioned (``eta``
near 0, e.g. Bernoulli ``mu = 0.5 + 1e-10``, or the mean map saturating, ``mu -> 1``) no method
working from the rounded ``mu`` can do better than ``eps * sigma``, and an error of
``1e-10 * sigma`` is what a relative perturbation of ``1e-10`` in ``mu`` would cause (a backward
error). A non-finite derived value where the closed form is finite counts as an infinite error.

**Grids** (float64; ``eta`` "up to +-700 where a(eta) is finite", pushed to the representable
limits where the natural parameter space is a half-line):

- real line (Bernoulli, Binomial, Poisson, Gaussian): 141 points evenly in [-700, 700], plus
  0 and +-10^j for j = -12..2;
- Gamma, Exponential (eta < 0): -10^j for j in [-150, 150] (61 points), where the variance
  1/eta^2 is a normal float;
- Geometric, NegativeBinomial (eta < 0): -10^j for j in [-150, log10 700] (61 points);
- Categorical(k): every eta in {-700, -300, -30, -1, 0, 1e-8, 1, 30, 300, 700}^m (m = k-1 or k).

``mu`` grids, where the mean map is resolved (see `glmjax._derive.conjugate_link` for why):

- Bernoulli, Binomial: 10^j for j in [-290, log10 0.5] and 1 - 10^j for j in [-15, log10 0.5];
- Poisson, Geometric, NegativeBinomial: 10^j for j in [-290, 300] (NegativeBinomial, Geometric:
  j <= 150, where the variance ~ mu^2 is finite);
- Gaussian: 0 and +-10^j for j in [-300, 150] (a(eta) = eta^2/2 overflows beyond);
- Gamma, Exponential: 10^j for j in [-150, 150];
- Categorical(k, minimal=True): probability vectors proportional to 10^e,
  e in {-280, -100, -10, -1, 0}^k, whose reference (last) class has probability >= 0.01 (its
  probability ``1 - sum(mu)`` must be resolved), the first k-1 entries;
- Categorical(k, minimal=False): e in {-20, -10, -1, 0}^k. Known gap: for classes below ~1e-20
  next to a class near 1 the derived over-parametrised link stalls (see `glmjax._derive`).
"""

import dataclasses
import sys
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._families import (
    Bernoulli,
    Binomial,
    Categorical,
    Exponential,
    Gamma,
    Gaussian,
    Geometric,
    NegativeBinomial,
    Poisson,
)
from ._family import ExponentialFamily

TOLERANCE = 1e-10
_TINY = float(np.finfo(np.float64).tiny)


@dataclasses.dataclass(frozen=True)
class _Case:
    label: str
    family: ExponentialFamily
    eta: np.ndarray
    eta_text: str
    mu: np.ndarray
    mu_text: str


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: the largest errors of one derived quantity of one family."""

    family: str
    quantity: str
    grid: str
    points: int
    max_abs: float
    max_rel: float

    @property
    def ok(self) -> bool:
        return bool(self.max_rel <= TOLERANCE)


def _logspace(lo: float, hi: float, num: int) -> np.ndarray:
    return np.logspace(lo, hi, num)


def _real_line() -> tuple[np.ndarray, str]:
    small = np.logspace(-12, 2, 15)
    eta = np.unique(np.concatenate([np.linspace(-700, 700, 141), [0.0], small, -small]))
    return eta, f"eta in [-700, 700] ({eta.size})"


def _categorical_grids(k: int, minimal: bool) -> tuple[np.ndarray, str, np.ndarray, str]:
    m = k - 1 if minimal else k
    values = np.array([-700, -300, -30, -1, 0, 1e-8, 1, 30, 300, 700], dtype=np.float64)
    eta = np.stack(np.meshgrid(*[values] * m, indexing="ij"), axis=-1).reshape(-1, m)
    # see the module docstring: the minimal link needs the reference class resolved, the
    # over-parametrised one is only accurate for probabilities down to ~1e-20 (a known gap)
    exps = np.array([-280, -100, -10, -1, 0] if minimal else [-20, -10, -1, 0], dtype=np.float64)
    weights = 10.0 ** np.stack(np.meshgrid(*[exps] * k, indexing="ij"), axis=-1).reshape(-1, k)
    probs = weights / weights.sum(axis=1, keepdims=True)
    if minimal:
        probs = probs[probs[:, -1] >= 1e-2]
    mu = probs[:, :m]
    mu_text = (
        f"p ~ 10^{{-280..0}}^{k}, p_k >= 0.01 ({mu.shape[0]})"
        if minimal
        else f"p ~ 10^{{-20..0}}^{k} ({mu.shape[0]})"
    )
    return eta, f"eta in {{-700..700}}^{m} ({eta.shape[0]})", mu, mu_text


def _cases() -> list[_Case]:
    real, real_text = _real_line()
    gamma_eta = -_logspace(-150, 150, 61)
    gamma_text = f"eta = -10^[-150, 150] ({gamma_eta.size})"
    gamma_mu = _logspace(-150, 150, 61)
    gamma_mu_text = f"mu = 10^[-150, 150] ({gamma_mu.size})"
    geom_eta = -_logspace(-150, np.log10(700), 61)
    geom_text = f"eta = -10^[-150, 2.85] ({geom_eta.size})"
    geom_mu = _logspace(-290, 150, 89)
    geom_mu_text = f"mu = 10^[-290, 150] ({geom_mu.size})"
    prob = np.concatenate(
        [_logspace(-290, np.log10(0.5), 59), 1 - _logspace(-15, np.log10(0.5), 31)]
    )
    prob_text = f"mu = 10^[-290, -0.3], 1 - 10^[-15, -0.3] ({prob.size})"
    pois_mu = _logspace(-290, 300, 119)
    pois_text = f"mu = 10^[-290, 300] ({pois_mu.size})"
    gauss_pos = _logspace(-300, 150, 91)
    gauss_mu = np.concatenate([-gauss_pos[::-1], [0.0], gauss_pos])
    gauss_text = f"mu = 0, +-10^[-300, 150] ({gauss_mu.size})"

    cases = [
        _Case("Bernoulli()", Bernoulli(), real, real_text, prob, prob_text),
        _Case("Binomial(trials=5)", Binomial(trials=5), real, real_text, prob, prob_text),
        _Case("Poisson()", Poisson(), real, real_text, pois_mu, pois_text),
        _Case("Gaussian(2.0)", Gaussian(2.0), real, real_text, gauss_mu, gauss_text),
        _Case("Gamma(3.0)", Gamma(3.0), gamma_eta, gamma_text, gamma_mu, gamma_mu_text),
        _Case("Exponential()", Exponential(), gamma_eta, gamma_text, gamma_mu, gamma_mu_text),
        _Case("Geometric()", Geometric(), geom_eta, geom_text, geom_mu, geom_mu_text),
        _Case(
            "NegativeBinomial(2.5)",
            NegativeBinomial(2.5),
            geom_eta,
            geom_text,
            geom_mu,
            geom_mu_text,
        ),
    ]
    for k, minimal in [(4, True), (4, False)]:
        eta, eta_text, mu, mu_text = _categorical_grids(k, minimal)
        label = f"Categorical({k}, minimal={minimal})"
        cases.append(_Case(label, Categorical(k, minimal=minimal), eta, eta_text, mu, mu_text))
    return cases


def _errors(derived, closed, scale) -> tuple[float, float]:
    derived, closed, scale = (np.asarray(x, dtype=np.float64) for x in (derived, closed, scale))
    if not np.all(np.isfinite(closed)):
        # the grids are chosen where the closed forms are finite; anything else is a bad grid
        return float("inf"), float("inf")
    abs_err = np.where(np.isfinite(derived), np.abs(derived - closed), np.inf)
    rel_err = abs_err / np.maximum(scale, _TINY)
    return float(abs_err.max()), float(rel_err.max())


def _link_sensitivity(link: Callable, mu: jax.Array, vector: bool) -> jax.Array:
    """sigma = |d g / d mu| |mu|: how much eta moves for a relative change of 1 in mu."""
    if vector:
        jac = jax.vmap(jax.jacfwd(link))(mu)
        return jnp.einsum("nij,nj->ni", jnp.abs(jac), jnp.abs(mu))
    return jnp.abs(jax.vmap(jax.grad(link))(mu) * mu)


def _evaluate(family: ExponentialFamily, eta: jax.Array, mu: jax.Array) -> tuple:
    """Derived and closed-form values on the grids (one compiled function per family)."""
    closed = family.closed_forms()
    vector = family.natural_dim is not None
    closed_map = (lambda f: jax.vmap(f)) if vector else (lambda f: f)
    link_c = closed_map(closed.link)(mu)
    return (
        (family.mean(eta), closed_map(closed.mean)(eta)),
        (family.variance(eta), closed_map(closed.variance)(eta)),
        (family.link(mu), link_c, _link_sensitivity(closed.link, mu, vector)),
    )


def check_family(case: _Case) -> list[Row]:
    """The three rows (mean, variance, link) for one family."""
    family = case.family
    eta, mu = jnp.asarray(case.eta), jnp.asarray(case.mu)
    mean, variance, (link_d, link_c, sigma) = jax.jit(_evaluate)(family, eta, mu)
    rows = []
    for quantity, (derived, ref), scale, grid, n in [
        ("mean", mean, jnp.abs(mean[1]), case.eta_text, len(eta)),
        ("variance", variance, jnp.abs(variance[1]), case.eta_text, len(eta)),
        ("link", (link_d, link_c), jnp.maximum(jnp.abs(link_c), sigma), case.mu_text, len(mu)),
    ]:
        max_abs, max_rel = _errors(derived, ref, scale)
        rows.append(Row(case.label, quantity, grid, n, max_abs, max_rel))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = ("family", "quantity", "grid", "max abs err", "max rel err", "")
    body = [
        (
            r.family,
            r.quantity,
            r.grid,
            f"{r.max_abs:.2e}",
            f"{r.max_rel:.2e}",
            "ok" if r.ok else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_verify(argv: Sequence[str] | None = None) -> int:
    """Check every family's derived mean, variance and link; print the table; 0 if all agree.

    Runs in float64 (``jax.enable_x64`` inside this call only; global configuration is unchanged).
    ``argv`` is accepted for the command line and must be empty.

    **Returns** the exit code: 0 if every relative error is at most ``1e-10``, else 1.
    """
    if argv:
        raise ValueError(f"`argv`: `glmjax verify` takes no arguments, got {list(argv)!r}")
    with jax.enable_x64(True):
        rows = [row for case in _cases() for row in check_family(case)]
    print(format_table(rows))
    worst = max(rows, key=lambda r: r.max_rel)
    failed = [r for r in rows if not r.ok]
    print(
        f"\n{len(rows)} checks over {len(rows) // 3} families, relative tolerance {TOLERANCE:.0e}; "
        f"largest relative error {worst.max_rel:.2e} ({worst.family} {worst.quantity})."
    )
    if failed:
        print(f"{len(failed)} check(s) FAILED.", file=sys.stderr)
        return 1
    return 0
