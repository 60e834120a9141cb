"""Convergence plots: relative suboptimality against iterations and against seconds.

Shared by ``glmjax demo`` and the benchmarks. A trace is the objective after each iteration (the
fit's ``history`` without its NaN tail) and the run time of the whole fit (compile time excluded);
since every iteration of a solver does the same work, iteration ``i`` is placed at
``i * run_time / n_iter`` seconds.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Trace:
    """One solver's convergence: objective per iteration (index 0 = start) and run seconds."""

    objective: Sequence[float]
    run_seconds: float

    @classmethod
    def from_history(cls, history, run_seconds: float) -> "Trace":
        h = np.asarray(history, dtype=float)
        return cls(objective=h[np.isfinite(h)].tolist(), run_seconds=float(run_seconds))


def relative_suboptimality(objective: Sequence[float], best: float) -> np.ndarray:
    """``(f_k - f*) / max(1, |f*|)``, floored at ``1e-16`` so it can be drawn on a log axis."""
    f = np.asarray(objective, dtype=float)
    return np.maximum((f - best) / max(1.0, abs(best)), 1e-16)


def plot_convergence(traces: Mapping[str, Trace], path: str, *, title: str) -> float:
    """Write a two-panel PNG (against iterations, against run seconds) titled ``title`` (say what
    is compared, on what) to ``path``; returns the best objective (the smallest value in any
    trace), against which suboptimality is measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = min(min(t.objective) for t in traces.values())
    fig, (by_iter, by_time) = plt.subplots(
        1, 2, figsize=(11, 4.6), sharey=True, constrained_layout=True
    )
    fig.suptitle(title)
    for name, trace in traces.items():
        sub = relative_suboptimality(trace.objective, best)
        iters = np.arange(len(sub))
        seconds = iters * trace.run_seconds / max(len(sub) - 1, 1)
        by_iter.semilogy(iters, sub, marker="o", markersize=3, label=name)
        by_time.semilogy(seconds, sub, marker="o", markersize=3, label=name)
    # linear up to 10 iterations (Newton's few), logarithmic beyond (first-order methods' thousands)
    by_iter.set_xscale("symlog", linthresh=10)
    by_iter.set(
        xlabel="iteration (linear up to 10, logarithmic beyond)",
        ylabel="objective minus its minimum (log scale),\nrelative: divided by max(1, |minimum|)",
        title="by iteration",
    )
    by_time.set(xlabel="run time, seconds (compilation excluded)", title="by run time")
    for ax in (by_iter, by_time):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return best
