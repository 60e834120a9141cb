"""``mlp``: `glmjax.train_classifier` seconds per epoch on digits against the same loop in PyTorch.

An MLP 64-128-10 (ReLU), adam(1e-3), batches of 64, float64; glmjax's first epoch (with compile)
is reported apart. PyTorch (if installed) runs the same loop — shuffle, ``ceil(n / batch)``
batches, the last one filled at random — with 1 and 2 threads; the faster counts.
"""

import os
import time
from pathlib import Path

import jax
import numpy as np
import optax

WIDTH, BATCH, LR = 128, 64, 1e-3


def _glmjax_seconds(X, y, epochs: int) -> dict:
    from glmjax.nn import MLP, train_classifier

    model = MLP(X.shape[1], 10, WIDTH, 1, key=jax.random.key(0))
    kw = dict(optimizer=optax.adam(LR), batch_size=BATCH, key=jax.random.key(1), progress=False)
    t0 = time.perf_counter()
    jax.block_until_ready(train_classifier(model, X, y, epochs=1, **kw)[0])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(train_classifier(model, X, y, epochs=epochs, **kw)[0])
    return {
        "first_epoch_seconds_with_compile": first,
        "seconds_per_epoch": (time.perf_counter() - t0) / epochs,
    }


def _torch_epoch_seconds(torch, X, y, epochs: int) -> float:
    """The same loop in PyTorch: shuffle, ceil(n/batch) batches, the last one filled at random."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], WIDTH), torch.nn.ReLU(), torch.nn.Linear(WIDTH, 10)
    ).double()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    n = len(y)
    n_batches = -(-n // BATCH)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(n, generator=gen)
        fill = torch.randint(0, n, (n_batches * BATCH - n,), generator=gen)
        for b in torch.cat([order, fill]).view(n_batches, BATCH):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[b]), yt[b]).backward()
            opt.step()

    epoch()
    t0 = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - t0) / epochs


def _torch(X, y, epochs: int) -> dict | str:
    try:
        import torch
    except ImportError:
        return "skipped: PyTorch is not installed (pip install torch, CPU)"
    runs = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        runs[threads] = _torch_epoch_seconds(torch, X, y, epochs)
    torch.set_num_threads(os.cpu_count() or 1)
    best = min(runs, key=runs.get)
    return {
        "version": torch.__version__,
        "seconds_per_epoch_by_threads": runs,
        "best_threads": best,
        "seconds_per_epoch": runs[best],
    }


def bench_mlp(quick: bool, out: Path) -> dict:
    from glmjax.datasets import load_digits

    data = load_digits()
    epochs = 3 if quick else 20
    X, y = data.X_train, data.y_train
    result = {
        "setup": f"digits n={len(y)}, MLP 64-{WIDTH}-10 ReLU, adam({LR}), batch {BATCH}, "
        f"float64, {epochs} epochs",
        "glmjax": _glmjax_seconds(X, y, epochs),
        "torch": _torch(X, y, epochs),
    }
    if isinstance(result["torch"], dict):
        result["torch_version"] = result["torch"]["version"]
        ratio = result["glmjax"]["seconds_per_epoch"] / result["torch"]["seconds_per_epoch"]
        result["ratio_glmjax_over_torch"] = ratio
    return result
