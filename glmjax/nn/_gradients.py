r"""The seed's activation claim, measured: sigmoid hidden layers make the gradient vanish.

Back-propagation through a hidden layer `h_l = sigma(W_l h_{l-1} + b_l)` multiplies the incoming
gradient by `diag(sigma'(z_l)) W_l`. The sigmoid's slope is at most `sigma'(0) = 1/4` and falls
below `0.0067` once `|z| > 5` (`sigma'(5) = e^-5 / (1 + e^-5)^2 = 0.00665`), so with weights of the
usual size (`+-1/sqrt(fan_in)`) every sigmoid layer shrinks the gradient several-fold and the
first layers of a deep network barely learn. ReLU's slope is exactly 1 on the active units and keeps
the gradient's size. `activation_gradients` measures the Frobenius norm `||dL/dW_l||` of the
gradient of the training cross-entropy with respect to each layer's weights, at initialisation and
after a short training on the shipped digits, for networks that differ only in the hidden
activation; `plot_activation_gradients` draws them on a log scale.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .. import datasets
from ._evaluate import accuracy, cross_entropy
from ._mlp import MLP
from ._train import train_classifier

_DEFAULT_ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}


class ActivationGradients(NamedTuple):
    """Per-layer gradient norms of networks that differ only in their hidden activation.

    - `names`: the activations, in the order of the rows below.
    - `init`: `(activations, depth + 1)`, `||dL/dW_l||_F` at initialisation, input layer first,
      `L` the mean cross-entropy over the digits training set.
    - `trained`: the same after training.
    - `test_accuracy`: `(activations,)`, the trained networks' accuracy on the digits test set.
    """

    names: tuple[str, ...]
    init: Float[Array, "activations layers"]
    trained: Float[Array, "activations layers"]
    test_accuracy: Float[Array, " activations"]


@eqx.filter_jit
def layer_gradient_norms(
    model: MLP, X: Float[Array, "n d"], y: Int[Array, " n"]
) -> Float[Array, " layers"]:
    """`||dL/dW_l||_F` for each linear layer `l` of `model` (input side first), `L` the mean
    softmax cross-entropy of `model` on `(X, y)`."""
    grads = eqx.filter_grad(cross_entropy)(model, X, y)
    return jnp.stack([jnp.linalg.norm(layer.weight) for layer in grads.layers])


def activation_gradients(
    *,
    key: PRNGKeyArray,
    depth: int = 8,
    width: int = 64,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    activations: Mapping[str, Callable[[Array], Array]] | None = None,
    progress: bool = False,
) -> ActivationGradients:
    """Train one deep MLP per activation on the digits and measure per-layer gradient norms.

    Every network starts from the same weights (Equinox's initialisation does not depend on the
    activation) and is trained with `optax.adam(learning_rate)` on the same batches, so the
    activation is the only difference.

    **Arguments:**

    - `key`: PRNG key for the initialisation and the batches.
    - `depth`, `width`: hidden layers and units per hidden layer.
    - `epochs`, `batch_size`, `learning_rate`: the short training (Adam).
    - `activations`: name -> activation; default `{"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}`.
    - `progress`: show the training progress bars.

    **Returns:** an `ActivationGradients`.
    """
    activations = _DEFAULT_ACTIVATIONS if activations is None else dict(activations)
    if not activations:
        raise ValueError("`activations` must name at least one activation")
    init_key, train_key = jax.random.split(key)
    X_train, y_train, X_test, y_test = (
        jnp.asarray(a) for a in datasets.load_digits(dtype=np.dtype(jnp.result_type(float)))
    )
    init, trained, test_accuracy = [], [], []
    for activation in activations.values():
        model = MLP(X_train.shape[1], 10, width, depth, activation, key=init_key)
        init.append(layer_gradient_norms(model, X_train, y_train))
        model, _ = train_classifier(
            model,
            X_train,
            y_train,
            optimizer=optax.adam(learning_rate),
            batch_size=batch_size,
            epochs=epochs,
            key=train_key,
            progress=progress,
        )
        trained.append(layer_gradient_norms(model, X_train, y_train))
        test_accuracy.append(accuracy(model, X_test, y_test))
    return ActivationGradients(
        tuple(activations), jnp.stack(init), jnp.stack(trained), jnp.stack(test_accuracy)
    )


def plot_activation_gradients(result: ActivationGradients, path: str | Path) -> Path:
    """Write a PNG of three panels: the slopes of sigmoid and ReLU by `jax.grad` (with
    `sigmoid'(5)` marked), and `result`'s per-layer gradient norms at initialisation and after
    training, on a log scale. Returns the path written.

    Uses Matplotlib's object interface with the Agg canvas, so it changes no global state.
    """
    from matplotlib.figure import Figure

    x = jnp.linspace(-10.0, 10.0, 801)
    sigmoid_at_5 = float(jax.grad(jax.nn.sigmoid)(5.0))
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    slope_ax, init_ax, trained_ax = fig.subplots(1, 3)
    for name, activation in _DEFAULT_ACTIVATIONS.items():
        slope_ax.plot(x, jax.vmap(jax.grad(activation))(x), label=f"{name}'")
    slope_ax.axvspan(-10, -5, color="grey", alpha=0.2)
    slope_ax.axvspan(5, 10, color="grey", alpha=0.2, label="|x| > 5")
    slope_ax.annotate(
        f"sigmoid'(5) = {sigmoid_at_5:.5f}",
        xy=(5, sigmoid_at_5),
        xytext=(1.0, 0.5),
        arrowprops={"arrowstyle": "->"},
    )
    slope_ax.set(title="slopes by jax.grad", xlabel="x")
    slope_ax.legend()

    layers = np.arange(1, result.init.shape[1] + 1)
    trained_labels = [
        f"{name} (test accuracy {float(acc):.3f})"
        for name, acc in zip(result.names, result.test_accuracy, strict=True)
    ]
    panels = (
        (init_ax, result.init, "at initialisation", result.names),
        (trained_ax, result.trained, "after training", trained_labels),
    )
    for ax, norms, when, labels in panels:
        for row, label in zip(norms, labels, strict=True):
            ax.semilogy(layers, np.asarray(row), "o-", label=label)
        ax.set(
            title=f"per-layer gradient norm {when}",
            xlabel="layer (1 = input side)",
            ylabel="||dL/dW||",
            xticks=layers,
        )
        ax.legend()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
