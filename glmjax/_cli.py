"""The ``glmjax`` command line: ``verify``, ``demo`` and ``bench``.

Each sub-command turns on float64 for its own process (the library itself never changes global JAX
configuration) and imports its implementation lazily, so ``glmjax --help`` is instant.
"""

import argparse
import sys


def _verify(args: argparse.Namespace) -> int:
    from ._verify import run_verify

    return run_verify(family=args.family)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(out=args.out, quiet=args.quiet)


def _bench(args: argparse.Namespace) -> int:
    from ._bench import run_bench

    return run_bench(names=args.names, quick=args.quick, out=args.out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glmjax",
        description="Exponential families, GLMs and softmax classifiers in JAX, derived by "
        "autodiff.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"glmjax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    verify = sub.add_parser(
        "verify",
        help="check every family from its density and against closed forms, and every link",
    )
    verify.add_argument(
        "--family",
        default=None,
        metavar="PKG.MODULE:ATTR",
        help="check only this family (an ExponentialFamily, or a function returning one) from "
        "its density alone",
    )
    verify.set_defaults(run=_verify)

    demo = sub.add_parser(
        "demo", help="softmax regression by Newton and gradient descent, and an MLP, on digits"
    )
    demo.add_argument("--out", default=".", help="folder for the plot (default: current folder)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)

    bench = sub.add_parser(
        "bench",
        help="Newton against first-order methods on digits and synthetic data (peers, roofline "
        "and scale: python -m benchmarks.run in a checkout)",
    )
    bench.add_argument("names", nargs="*", help="benchmarks to run: solvers (the default)")
    bench.add_argument("--quick", action="store_true", help="small sizes, for CI")
    bench.add_argument("--out", default=None, help="results folder (default: benchmarks/results)")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
