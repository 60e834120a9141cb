"""``python -m benchmarks.run [names...] [--quick] [--out DIR]``: run glmjax's benchmarks.

Each benchmark writes ``<name>.json`` (the scale ones ``scale_<name>.json``) to the results folder
with every number, the machine (`glmjax._bench.machine_info`: CPU, library versions, BLAS kernels
and thread counts, environment) and its wall seconds; then ``README_table.md`` is regenerated from
all the JSON files there (`benchmarks.table`). Without names: solvers, peers, profile, roofline,
mlp; the others run only when named. ``--quick`` uses small problems (their descriptions state the
sizes) and writes to ``benchmarks/results/quick`` unless ``--out`` says otherwise. Exit status 0; 1
when a second-order method missed its target (solvers) or a glmjax or peer fit did not reach the
common objective (peers); 2 for an unknown name. Run with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` unset (see ``benchmarks/README.md``).
"""

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

from . import RESULTS


class Benchmark(NamedTuple):
    target: str  # "module:function", called as function(quick=..., out=...) -> dict
    stem: str  # the JSON file's name
    help: str
    check: str | None = None  # "module:function" of the record -> bool (False: exit status 1)


BENCHMARKS = {
    "solvers": Benchmark(
        "glmjax._bench:run_bench",
        "solvers",
        "newton, irls, gd, lbfgs, adam to suboptimality 1e-10 (what `glmjax bench` runs)",
    ),
    "peers": Benchmark(
        "benchmarks.peers:bench_peers",
        "peers",
        "glmjax vs scikit-learn, statsmodels, glum, nemos, glmax on the same objective",
        "benchmarks.peers:all_agree",
    ),
    "roofline": Benchmark(
        "benchmarks.roofline:bench_roofline",
        "roofline",
        "X^T X rate; each workload's Hessian assembly GFLOP/s; Cholesky/eigh/solve seconds",
    ),
    "profile": Benchmark(
        "benchmarks.profile:bench_profile",
        "profile",
        "fit_glm's pieces (validate, start, solve, infer) and one evaluation's cost, per method",
    ),
    "mlp": Benchmark(
        "benchmarks.mlp:bench_mlp",
        "mlp",
        "train_classifier seconds per epoch on digits vs the same loop in PyTorch",
    ),
    "device": Benchmark(
        "benchmarks.device:bench_device",
        "device",
        "headline fits at full size, float64 and float32, on the default device (gpu.sh)",
    ),
    "streaming": Benchmark(
        "benchmarks.scale:run_streaming",
        "scale_streaming",
        "fit_glm_streaming on 20M x 20 rows on disk (writes 3.4 GB under /tmp)",
    ),
    "newton_cg": Benchmark(
        "benchmarks.scale:run_newton_cg",
        "scale_newton_cg",
        "Newton-CG vs L-BFGS on a softmax with 99,000 coefficients",
    ),
    "many_poisson": Benchmark(
        "benchmarks.scale:run_many_poisson",
        "scale_many_poisson",
        "10,000 Poisson fits by one vmapped fit_glm vs a statsmodels loop",
    ),
    "many_negbin": Benchmark(
        "benchmarks.scale:run_many_negbin",
        "scale_many_negbin",
        "10,000 negative binomial GLMs (theta per gene, 2,000 cells) vs statsmodels, glmGamPoi",
    ),
}
DEFAULT = ["solvers", "peers", "profile", "roofline", "mlp"]


def _load(target: str):
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def run_one(name: str, quick: bool, out: Path) -> int:
    """Run one benchmark and write its JSON record to ``out``; returns its exit status."""
    bench = BENCHMARKS[name]
    if name == "solvers":  # glmjax's own: it writes solvers.json and the plots itself
        return _load(bench.target)(["solvers"], quick=quick, out=str(out))
    from glmjax._bench import _jsonable, machine_info

    t0 = time.perf_counter()
    result = _load(bench.target)(quick=quick, out=out)
    record = {
        "benchmark": name,
        "quick": quick,
        "machine": machine_info(),
        "wall_seconds": time.perf_counter() - t0,
        **result,
    }
    (out / f"{bench.stem}.json").write_text(json.dumps(record, indent=1, default=_jsonable))
    (out / f"{bench.stem}.partial.json").unlink(missing_ok=True)
    return 0 if bench.check is None or _load(bench.check)(record) else 1


def _parser() -> argparse.ArgumentParser:
    def listing(default: bool) -> str:
        return "\n".join(
            f"  {name:<13}{b.help}"
            for name, b in BENCHMARKS.items()
            if (name in DEFAULT) == default
        )

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Run glmjax's benchmarks; write <name>.json and README_table.md.",
        epilog=f"benchmarks (the default):\n{listing(True)}\n\nrun only when named:\n"
        f"{listing(False)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: {' '.join(DEFAULT)})"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (CI, smoke tests)")
    parser.add_argument(
        "--out",
        default=None,
        help="results folder (default: benchmarks/results, with --quick benchmarks/results/quick)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(  # exits with status 2
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    import jax

    jax.config.update("jax_enable_x64", True)
    out = Path(args.out) if args.out else (RESULTS / "quick" if args.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(args.names or DEFAULT))
    status = 0
    for name in names:
        status |= run_one(name, args.quick, out)
    from .table import write_table

    write_table(out)
    print(f"results of {', '.join(names)} and README_table.md in {out.resolve()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
