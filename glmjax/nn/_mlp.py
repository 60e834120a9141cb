r"""A multi-layer perceptron classifier: hidden layers with an activation, then logits.

For one example `x` and `depth = D` hidden layers,

$$
h_0 = x, \qquad h_l = \sigma(W_l h_{l-1} + b_l)\ (l = 1..D), \qquad
\mathrm{logits} = W_{D+1} h_D + b_{D+1},
$$

and `softmax(logits)` gives the class probabilities. With `depth=0` the network is one linear
layer: softmax regression, the GLM with `Categorical(k, minimal=False)` (seed point 8). The layers
and their initialisation are Equinox's (`eqx.nn.MLP`: uniform on `+-1/sqrt(fan_in)`, as in PyTorch).
"""

from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from .._misc import check_int


class MLP(eqx.Module):
    """A classifier network: `depth` hidden layers of `width_size` units, `out_size` logits out.

    **Arguments:**

    - `in_size`: number of input features.
    - `out_size`: number of classes (logits), at least 2.
    - `width_size`: units per hidden layer.
    - `depth`: number of hidden layers; `0` gives a linear model (softmax regression).
    - `activation`: the hidden layers' activation (default ReLU); the output layer has none.
    - `key`: PRNG key for the initialisation (keyword only).
    - `dtype`: the parameters' dtype (default: JAX's default float, float64 under x64).

    `__call__` takes one example `(in_size,)` and returns its logits `(out_size,)`; batch with
    `jax.vmap(model)(X)`.

    **Example:**

        >>> import jax, glmjax as gj
        >>> model = gj.MLP(64, 10, 128, 1, key=jax.random.key(0))
        >>> jax.vmap(model)(jax.numpy.zeros((5, 64))).shape
        (5, 10)
    """

    mlp: eqx.nn.MLP

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width_size: int,
        depth: int,
        activation: Callable[[Array], Array] = jax.nn.relu,
        *,
        key: PRNGKeyArray,
        dtype=None,
    ):
        check_int(in_size, "in_size", minimum=1)
        check_int(out_size, "out_size", minimum=2)
        check_int(width_size, "width_size", minimum=1)
        check_int(depth, "depth", minimum=0)
        if not callable(activation):
            raise ValueError(f"`activation` must be callable, got {activation!r}")
        self.mlp = eqx.nn.MLP(
            in_size, out_size, width_size, depth, activation, dtype=dtype, key=key
        )

    @property
    def in_size(self) -> int:
        return self.mlp.in_size

    @property
    def out_size(self) -> int:
        return self.mlp.out_size

    @property
    def depth(self) -> int:
        return self.mlp.depth

    @property
    def layers(self) -> tuple[eqx.nn.Linear, ...]:
        """The `depth + 1` linear layers, input side first."""
        return self.mlp.layers

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        """The logits of one example."""
        return self.mlp(x)
