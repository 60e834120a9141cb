"""``glmjax demo``: the seed's story on the shipped digits data.

Softmax regression (``Categorical(10)``, the minimal "rigorous" parametrisation) fitted by exact
Newton and by gradient descent, then an MLP with a ReLU hidden layer and a softmax output trained
with AdamW (cosine-decayed learning rate) on mini-batches of standardised pixels. Prints one
table row per method and writes ``demo_convergence.png`` (suboptimality against iterations and
seconds, Newton vs gradient descent).

Each fit is run twice with the same shapes: the first call's time minus the second's is the compile
time, the second call's time is the run time.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._families import Categorical
from ._fit import add_intercept, fit_glm
from ._plots import Trace, plot_convergence
from .datasets import load_digits
from .nn import MLP, accuracy, cross_entropy, train_classifier

# mean-NLL ridge: the digits are linearly separable, so without it the MLE does not exist
L2 = 1e-3
GD_ITERS = 3000
MLP_WIDTH, MLP_EPOCHS, MLP_BATCH = 256, 40, 64


def _timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def _fit_twice(X, y, family, **kwargs):
    def fit():
        return fit_glm(X, y, family, l2=L2, **kwargs)

    _, first = _timed(fit)
    result, run = _timed(fit)
    return result, run, max(first - run, 0.0)


def run_demo(out: str = ".", quiet: bool = False) -> int:
    """Run the demo, print its table, write the plot into ``out``; returns 0."""
    os.makedirs(out, exist_ok=True)
    data = load_digits()
    X_train, X_test = add_intercept(data.X_train), add_intercept(data.X_test)
    y_train, y_test = jnp.asarray(data.y_train), jnp.asarray(data.y_test)
    family = Categorical(10)
    print(
        f"digits: {X_train.shape[0]} train / {X_test.shape[0]} test images, "
        f"{X_train.shape[1] - 1} pixels + intercept, 10 classes; float64; ridge l2 = {L2:g}\n"
    )

    rows, traces = [], {}
    for name, legend, kwargs in [
        ("softmax regression, Newton", "Newton", dict(method="newton")),
        ("softmax regression, gradient descent", "gradient descent",
         dict(method="gd", max_iter=GD_ITERS)),
    ]:  # fmt: skip
        result, run, compile_ = _fit_twice(X_train, y_train, family, **kwargs)
        n_iter = int(result.n_iter)
        test_acc = float(jnp.mean(jnp.argmax(result.predict(X_test), axis=1) == y_test))
        train_loss = float(result.history[n_iter])
        rows.append((name, f"{n_iter} iter", run, compile_, train_loss, test_acc))
        traces[legend] = Trace.from_history(result.history, run)

    steps = MLP_EPOCHS * int(np.ceil(X_train.shape[0] / MLP_BATCH))
    optimizer = optax.adamw(optax.cosine_decay_schedule(1e-2, steps), weight_decay=0.1)
    model = MLP(64, 10, MLP_WIDTH, 1, key=jax.random.key(0))
    # pixels standardised with the training set's statistics (+0.1 keeps near-constant pixels small)
    centre, spread = data.X_train.mean(axis=0), data.X_train.std(axis=0) + 0.1
    X_tr, X_te = (jnp.asarray((x - centre) / spread) for x in (data.X_train, data.X_test))
    train = dict(optimizer=optimizer, batch_size=MLP_BATCH, key=jax.random.key(1))
    _, first_epoch = _timed(
        lambda: train_classifier(model, X_tr, y_train, epochs=1, progress=False, **train)[0]
    )
    (model, history), run = _timed(
        lambda: train_classifier(
            model, X_tr, y_train, epochs=MLP_EPOCHS, progress=not quiet, **train
        )
    )
    epoch = run / MLP_EPOCHS
    rows.append(
        (
            f"MLP 64-{MLP_WIDTH}-10 (ReLU), AdamW",
            f"{MLP_EPOCHS} epochs",
            run,
            max(first_epoch - epoch, 0.0),
            float(cross_entropy(model, X_tr, y_train)),
            float(accuracy(model, X_te, y_test)),
        )
    )

    header = ("method", "iterations", "run s", "compile s", "train loss", "test acc")
    widths = (38, 12, 8, 10, 11, 9)
    cells = enumerate(zip(header, widths, strict=True))
    line = "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in cells)
    print(line)
    print("-" * len(line))
    for name, iters, run, compile_, loss, acc in rows:
        print(
            f"{name:<{widths[0]}}  {iters:<{widths[1]}}  {run:>{widths[2]}.3f}  "
            f"{compile_:>{widths[3]}.3f}  {loss:>{widths[4]}.6f}  {acc:>{widths[5]}.2%}"
        )

    path = os.path.join(out, "demo_convergence.png")
    title = (
        f"Softmax regression on digits ({X_train.shape[0]} training images, ridge l2 = {L2:g}): "
        "Newton vs gradient descent"
    )
    best = plot_convergence(traces, path, title=title)
    newton, gd = traces["Newton"], traces["gradient descent"]
    gd_gap = (gd.objective[-1] - best) / max(1.0, abs(best))
    print(
        f"\nNewton reached the optimum f* = {best:.12f} in {len(newton.objective) - 1} iterations; "
        f"gradient descent after {len(gd.objective) - 1} iterations is {gd_gap:.1e} above it "
        f"(relative).\nThe MLP's mean epoch time was {epoch * 1e3:.1f} ms "
        f"({int(np.ceil(X_tr.shape[0] / MLP_BATCH))} batches of {MLP_BATCH}).\nwrote {path}"
    )
    return 0
