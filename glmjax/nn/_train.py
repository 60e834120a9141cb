r"""Training a classifier with optax on the softmax cross-entropy, one jit-compiled call per epoch.

The loss of a batch `B` of examples `(x_i, y_i)` with logits `z_i = model(x_i)` is the mean
cross-entropy of the softmax,

$$
L_B = \frac{1}{|B|} \sum_{i \in B} \Big[\log \sum_{c} e^{z_{ic}} - z_{i y_i}\Big],
$$

(`optax.softmax_cross_entropy_with_integer_labels`), and each batch makes one optimiser update
`params <- params + optimizer.update(grad L_B, state, params)`. An epoch's batches come from
`glmjax._batching.batch_indices` (the seed's rule: `ceil(n / batch_size)` batches, the last one
filled up at random from the whole data set). The whole epoch is one `lax.scan` inside one
`jax.jit`, compiled on the first epoch and reused for the rest; the data stay where they are (on
device, sharded or not) and are only indexed inside the compiled call.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray
from tqdm import tqdm

from .._misc import check_int, is_concrete
from ._batching import batch_indices


class TrainHistory(NamedTuple):
    """Per-epoch training curves, each of shape `(epochs,)`.

    - `loss`: the mean over the epoch's batches of the batch's mean cross-entropy, each measured
      just before that batch's update (the running training loss, as Keras and PyTorch loops
      report it).
    - `accuracy`: the same mean of the batches' fraction of correctly classified examples.
    """

    loss: Float[Array, " epochs"]
    accuracy: Float[Array, " epochs"]


def _check_X(model, X) -> Float[Array, "n d"]:
    """`X` as a floating `(n, d)` array that `model` maps row by row to a vector of logits."""
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"`X` must be a 2-D array (n, features), got shape {X.shape}")
    if X.shape[0] < 1:
        raise ValueError("`X` must have at least one row")
    if not jnp.issubdtype(X.dtype, jnp.inexact):
        X = X.astype(jnp.result_type(float))
    in_size = getattr(model, "in_size", None)
    if in_size is not None and X.shape[1] != in_size:
        raise ValueError(f"`X` has {X.shape[1]} features per row but the model takes {in_size}")
    if is_concrete(X) and not bool(jnp.all(jnp.isfinite(X))):
        raise ValueError("`X` contains NaN or infinite values")
    return X


def _num_classes(model, X) -> int:
    try:
        logits = eqx.filter_eval_shape(model, X[0])
    except (TypeError, ValueError) as error:
        # a model without an `in_size` to check against fails here on a wrong number of features
        raise ValueError(
            f"`model` cannot be applied to one row of `X` ({X.shape[1]} features): {error}"
        ) from error
    if logits.ndim != 1:
        raise ValueError(
            f"`model` must map one example to a vector of logits, got shape {logits.shape}"
        )
    return logits.shape[0]


def _check_y(y, n: int, num_classes: int) -> Int[Array, " n"]:
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"`y` must have shape ({n},) to match `X`, got {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`y` must hold integer class labels, got dtype {y.dtype}")
    if is_concrete(y):
        low, high = int(jnp.min(y)), int(jnp.max(y))
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"`y` must be class labels in 0..{num_classes - 1} (the model has {num_classes} "
                f"outputs), got values in {low}..{high}"
            )
    return y


def _check_data(model, X, y) -> tuple[Float[Array, "n d"], Int[Array, " n"]]:
    X = _check_X(model, X)
    return X, _check_y(y, X.shape[0], _num_classes(model, X))


def _fraction_correct(logits: Float[Array, "n k"], y: Int[Array, " n"]) -> Float[Array, ""]:
    # cast before averaging: jnp.mean of booleans is float32 even under x64
    return jnp.mean((jnp.argmax(logits, axis=-1) == y).astype(logits.dtype))


def _batch_loss(params, static, X, y) -> tuple[Float[Array, ""], Float[Array, ""]]:
    logits = jax.vmap(eqx.combine(params, static))(X)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, _fraction_correct(logits, y)


@eqx.filter_jit
def _train_epoch(model, opt_state, X, y, key, optimizer, batch_size):
    """One epoch: `ceil(n / batch_size)` optimiser updates in one `lax.scan`."""
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def step(carry, batch):
        params, opt_state = carry
        (loss, acc), grads = jax.value_and_grad(_batch_loss, has_aux=True)(
            params, static, X[batch], y[batch]
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (eqx.apply_updates(params, updates), opt_state), (loss, acc)

    batches = batch_indices(key, X.shape[0], batch_size)
    (params, opt_state), (losses, accs) = lax.scan(step, (params, opt_state), batches)
    return eqx.combine(params, static), opt_state, jnp.mean(losses), jnp.mean(accs)


def train_classifier(
    model: eqx.Module,
    X: Float[ArrayLike, "n d"],
    y: Int[ArrayLike, " n"],
    *,
    optimizer: optax.GradientTransformation,
    batch_size: int = 64,
    epochs: int = 10,
    key: PRNGKeyArray,
    progress: bool = True,
) -> tuple[eqx.Module, TrainHistory]:
    """Train a classifier on the softmax cross-entropy with mini-batches and an optax optimiser.

    **Arguments:**

    - `model`: an `equinox.Module` mapping one example `(d,)` to logits `(k,)`, e.g. `gj.MLP`; its
      floating-point arrays are trained, everything else is kept.
    - `X`: features `(n, d)` (a numpy or JAX array; a JAX array may be sharded over devices).
    - `y`: integer class labels `(n,)` in `0..k-1`.
    - `optimizer`: any `optax.GradientTransformation`, e.g. `optax.adam(1e-3)`.
    - `batch_size`: examples per batch; an epoch has `ceil(n / batch_size)` batches, the last one
      filled up with examples drawn at random from the whole data set.
    - `epochs`: passes over the data (0 returns the model unchanged).
    - `key`: PRNG key for the shuffling; epoch `e` uses `jax.random.fold_in(key, e)`, so the first
      epochs of a longer run are the same as those of a shorter one.
    - `progress`: show a tqdm progress bar over the epochs, with the running loss.

    **Returns:** `(trained_model, history)`, `history` a `TrainHistory` of per-epoch mean batch loss
    and accuracy.

    Each epoch is one call of a jit-compiled function (a `lax.scan` over the batches); it is
    compiled for the first epoch and reused for the others, and for later calls with the same
    optimizer object, model structure, data shapes and batch size.

    **Example:**

        >>> import jax, optax, glmjax as gj
        >>> X_train, y_train, X_test, y_test = gj.datasets.load_digits()
        >>> model = gj.MLP(64, 10, 128, 1, key=jax.random.key(0))
        >>> model, history = gj.train_classifier(
        ...     model, X_train, y_train, optimizer=optax.adam(1e-2), epochs=15,
        ...     key=jax.random.key(1), progress=False)
        >>> float(gj.accuracy(model, X_test, y_test)) > 0.95
        True
    """
    if not isinstance(model, eqx.Module):
        raise ValueError(f"`model` must be an equinox.Module, got {type(model).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(
            f"`optimizer` must be an optax.GradientTransformation, got {type(optimizer).__name__}"
        )
    check_int(batch_size, "batch_size", minimum=1)
    check_int(epochs, "epochs", minimum=0)
    X, y = _check_data(model, X, y)

    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    losses, accs = [], []
    with tqdm(range(epochs), desc="training", unit="epoch", disable=not progress) as bar:
        for epoch in bar:
            model, opt_state, loss, acc = _train_epoch(
                model, opt_state, X, y, jax.random.fold_in(key, epoch), optimizer, batch_size
            )
            losses.append(loss)
            accs.append(acc)
            if progress:
                bar.set_postfix(loss=f"{float(loss):.4f}", acc=f"{float(acc):.3f}")
    if epochs == 0:
        empty = jnp.zeros((0,), X.dtype)
        return model, TrainHistory(empty, empty)
    return model, TrainHistory(jnp.stack(losses), jnp.stack(accs))


@eqx.filter_jit
def _logits(model, X):
    return jax.vmap(model)(X)


def predict_proba(model: eqx.Module, X: Float[ArrayLike, "n d"]) -> Float[Array, "n k"]:
    """Class probabilities `softmax(model(x_i))` for each row of `X`, shape `(n, k)`."""
    return jax.nn.softmax(_logits(model, _check_X(model, X)), axis=-1)


def cross_entropy(
    model: eqx.Module, X: Float[ArrayLike, "n d"], y: Int[ArrayLike, " n"]
) -> Float[Array, ""]:
    r"""The mean softmax cross-entropy `(1/n) sum_i [logsumexp(z_i) - z_{i y_i}]` over the rows."""
    X, y = _check_data(model, X, y)
    return optax.softmax_cross_entropy_with_integer_labels(_logits(model, X), y).mean()


def accuracy(
    model: eqx.Module, X: Float[ArrayLike, "n d"], y: Int[ArrayLike, " n"]
) -> Float[Array, ""]:
    """The fraction of rows whose largest logit is at the true label."""
    X, y = _check_data(model, X, y)
    return _fraction_correct(_logits(model, X), y)
