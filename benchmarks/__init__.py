"""glmjax's benchmarks, run from a checkout: ``python -m benchmarks.run [names...] [--quick]``.

- `benchmarks.run`: the driver (``main(argv)``), one ``<name>.json`` per benchmark, then
  ``README_table.md``.
- `benchmarks.peers`: glmjax against scikit-learn, statsmodels, glum, nemos and glmax on the same
  objective; `benchmarks.peer_worker` is the script each peer fit runs in (its own process).
- `benchmarks.roofline`: the ``X^T X`` rate, Hessian assembly rates, Newton's linear solve.
- `benchmarks.mlp`: `glmjax.train_classifier` against the same loop in PyTorch.
- `benchmarks.device`: the headline glmjax fits at full size in float64 and float32 on the default
  device (what ``benchmarks/gpu.sh`` runs on a GPU).
- `benchmarks.scale`: out-of-core, Hessian-free and many small fits.
- `benchmarks.table`: ``README_table.md`` from the JSON files of a results folder.

The problems, the ahead-of-time timing of glmjax's solver loop, the machine description and the
Newton-vs-first-order benchmark (``solvers``) are glmjax's own (`glmjax._bench`, which
``glmjax bench`` runs from an installed package).
"""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
