"""The ``glmjax`` command line: ``verify``, ``demo`` and ``bench``.

Each sub-command turns on float64 for its own process (the library itself never changes global JAX
configuration) and imports its implementation when run; the parser reads only the registry of
benchmarks (`glmjax._bench.BENCHMARKS`: names, descriptions and the modules each needs).
"""

import argparse
import sys
import textwrap

_WIDTH = 88  # the benchmark listing, which argparse prints as written


def _verify(args: argparse.Namespace) -> int:
    from ._verify import run_verify

    return run_verify(family=args.family)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(out=args.out, quiet=args.quiet)


def _bench(args: argparse.Namespace) -> int:
    from ._bench import BENCHMARKS, missing_extra, run_bench

    names = args.names or list(BENCHMARKS)
    message = missing_extra(names)
    if message is not None:  # checked before the first benchmark spends its minutes
        print(f"glmjax bench: error: {message}", file=sys.stderr)
        return 2
    return run_bench(names=names, quick=args.quick, out=args.out)


def _benchmark_name(name: str) -> str:
    """argparse's ``type`` for a benchmark name (``choices`` cannot be used with ``nargs="*"``:
    Python 3.11's argparse checks an empty list against them)."""
    from ._bench import BENCHMARKS, ELSEWHERE

    if name not in BENCHMARKS:
        choices = ", ".join(map(repr, BENCHMARKS))
        raise argparse.ArgumentTypeError(
            f"invalid choice: {name!r} (choose from {choices}; {ELSEWHERE})"
        )
    return name


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

    from ._bench import BENCHMARKS, ELSEWHERE

    indent = max(map(len, BENCHMARKS)) + 4
    listing = "\n".join(
        textwrap.fill(
            f"{name:<{indent - 4}}  {b.help}"
            + (f" (needs {', '.join(b.requires)})" if b.requires else ""),
            _WIDTH,
            initial_indent="  ",
            subsequent_indent=" " * indent,
        )
        for name, b in BENCHMARKS.items()
    )
    note = textwrap.fill(
        f'What they need comes with the bench extra: pip install "glmjax[bench]". '
        f"{ELSEWHERE[0].upper()}{ELSEWHERE[1:]}.",
        _WIDTH,
    )
    bench = sub.add_parser(
        "bench",
        help="Newton against first-order methods on digits and synthetic data (peers, roofline "
        "and scale: python -m benchmarks.run in a checkout)",
        description=textwrap.fill(
            "Run glmjax's benchmarks: write <name>.json and plots to the results folder, print a "
            "summary and the paths written.",
            _WIDTH,
        ),
        epilog=f"benchmarks:\n{listing}\n\n{note}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "names",
        nargs="*",
        type=_benchmark_name,
        metavar="NAME",
        help=f"benchmarks to run (default: all: {', '.join(BENCHMARKS)})",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, for CI (the summary, plots and file names state them)",
    )
    bench.add_argument(
        "--out",
        default=None,
        help="results folder (default: benchmarks/results; with --quick benchmarks/results/quick)",
    )
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
