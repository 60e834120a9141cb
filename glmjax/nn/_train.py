r"""Training a classifier with optax on the softmax cross-entropy, one jit-compiled call per epoch.

The loss of a batch `B` of examples `(x_i, y_i)` with logits `z_i = model(x_i)` is the mean
cross-entropy of the softmax,

$$
L_B = \frac{1}{|B|} \sum_{i \in B} \Big[\log \sum_{c} e^{z_{ic}} - z_{i y_i}\Big],
$$

(`optax.softmax_cross_entropy_with_integer_labels`), and each batch makes one optimiser update
`params <- params + optimizer.update(grad L_B, state, params)`. An epoch's batches come from
`glmjax.nn.batch_indices` (the seed's rule: `ceil(n / batch_size)` batches, the last one filled
up at random from the whole data set), shuffled with `jax.random.fold_in(key, e)` for epoch `e`
counted from the start of training, so a run continued from its returned optimiser state (with
`initial_epoch`) is the same run as one that never stopped. The whole epoch is one `lax.scan`
inside one `jax.jit`, compiled on the first epoch and reused for the rest; the data stay where
they are (on device, sharded or not) and are only indexed inside the compiled call. A validation
set is evaluated after each epoch by a second compiled call (`glmjax.nn._evaluate`), which reads
the model and changes nothing.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray
from tqdm import tqdm

from .._misc import check_int
from ._batching import batch_indices
from ._evaluate import (
    check_X,
    check_y,
    fraction_correct,
    network_loss_and_accuracy,
    num_classes,
)


class TrainHistory(NamedTuple):
    """Per-epoch training curves, each of shape `(epochs,)`.

    - `loss`: the mean over the epoch's batches of the batch's mean cross-entropy, each measured
      just before that batch's update (the running training loss, as Keras and PyTorch loops
      report it).
    - `accuracy`: the same mean of the batches' fraction of correctly classified examples.
    - `val_loss`, `val_accuracy`: the mean cross-entropy and the accuracy on the `validation`
      set of the model at the end of each epoch (as `gj.cross_entropy` and `gj.accuracy` give
      them); `None` when training had no `validation`.
    """

    loss: Float[Array, " epochs"]
    accuracy: Float[Array, " epochs"]
    val_loss: Float[Array, " epochs"] | None = None
    val_accuracy: Float[Array, " epochs"] | None = None


class TrainResult(eqx.Module):
    """What `train_classifier` returns (a pytree).

    - `model`: the trained model.
    - `history`: a `TrainHistory` of this call's epochs.
    - `opt_state`: the optimiser's state after the last update; pass it back as `opt_state=`
      (with the same optimizer) to continue training, or save it with
      `eqx.tree_serialise_leaves`.
    - `epochs_done`: the epochs trained in all, `initial_epoch + epochs`: the `initial_epoch` of
      a call that continues this one.

    It unpacks as `model, history = train_classifier(...)` and indexes as `(model, history)`,
    the return of glmjax 0.2.
    """

    model: eqx.Module
    history: TrainHistory
    opt_state: optax.OptState
    epochs_done: int = eqx.field(static=True)

    def __iter__(self):
        return iter((self.model, self.history))

    def __getitem__(self, index):
        return (self.model, self.history)[index]

    def __len__(self) -> int:
        return 2


def _batch_loss(params, static, X, y) -> tuple[Float[Array, ""], Float[Array, ""]]:
    logits = jax.vmap(eqx.combine(params, static))(X)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, fraction_correct(logits, y)


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


def _check_validation(
    model, validation, X: Float[Array, "n d"], k: int
) -> tuple[Float[Array, "m d"], Int[Array, " m"]]:
    if not isinstance(validation, tuple | list) or len(validation) != 2:
        what = (
            f"{len(validation)} items"
            if isinstance(validation, tuple | list)
            else type(validation).__name__
        )
        raise ValueError(f"`validation` must be a pair (X_val, y_val), got {what}")
    X_val = check_X(model, validation[0], "validation[0]")
    if X_val.shape[1] != X.shape[1]:
        raise ValueError(
            f"`validation[0]` has {X_val.shape[1]} features per row, `X` has {X.shape[1]}"
        )
    y_val = check_y(validation[1], X_val.shape[0], k, "validation[1]", "validation[0]")
    # evaluated in the training data's precision
    return X_val.astype(X.dtype), y_val


def _check_opt_state(opt_state, expected) -> None:
    if jax.tree.structure(opt_state) != jax.tree.structure(expected):
        raise ValueError(
            "`opt_state` must be a state of `optimizer` for this model's parameters, with the "
            "structure of `optimizer.init(params)`: is it another optimizer's, or a model's of "
            "other sizes?"
        )
    for got, want in zip(jax.tree.leaves(opt_state), jax.tree.leaves(expected), strict=True):
        if isinstance(want, jax.ShapeDtypeStruct) and (
            jnp.shape(got) != want.shape or jnp.result_type(got) != want.dtype
        ):
            raise ValueError(
                f"`opt_state` has a leaf of shape {jnp.shape(got)} and dtype "
                f"{jnp.result_type(got)} where `optimizer.init(params)` has {want.shape} "
                f"{want.dtype}"
            )


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
    validation: tuple[Float[ArrayLike, "m d"], Int[ArrayLike, " m"]] | None = None,
    opt_state: optax.OptState | None = None,
    initial_epoch: int = 0,
) -> TrainResult:
    """Train a classifier on the softmax cross-entropy with mini-batches and an optax optimiser.

    **Arguments:**

    - `model`: an `equinox.Module` mapping one example `(d,)` to logits `(k,)`, e.g. `gj.MLP`; its
      floating-point arrays are trained, everything else is kept.
    - `X`: features `(n, d)` (a numpy or JAX array; a JAX array may be sharded over devices).
    - `y`: integer class labels `(n,)` in `0..k-1`.
    - `optimizer`: any `optax.GradientTransformation`, e.g. `optax.adam(1e-3)`.
    - `batch_size`: examples per batch; an epoch has `ceil(n / batch_size)` batches, the last one
      filled up with examples drawn at random from the whole data set.
    - `epochs`: passes over the data in this call (0 returns the model unchanged).
    - `key`: PRNG key for the shuffling; epoch `e`, counted from the start of training (this
      call's first is `initial_epoch`), uses `jax.random.fold_in(key, e)`, so the first epochs of
      a longer run are the same as those of a shorter one.
    - `progress`: show a tqdm progress bar over the epochs, with the running loss and accuracy
      (and the validation loss and accuracy).
    - `validation`: `(X_val, y_val)`, rows of the same `d` features and their labels; after each
      epoch the model's mean cross-entropy and accuracy on them go into the history
      (`val_loss`, `val_accuracy`). They are computed by one more compiled call per epoch,
      8192 rows at a time, in the training data's precision, and do not change the training.
    - `opt_state`: continue from this optimiser state (a previous result's `opt_state`, for the
      same `optimizer` and a model of the same structure) instead of `optimizer.init`.
    - `initial_epoch`: the index of this call's first epoch in the key schedule (Keras's name):
      a previous result's `epochs_done` to continue it.

    **Returns:** a `TrainResult` with `model` (trained), `history` (a `TrainHistory` of per-epoch
    mean batch loss and accuracy, and validation loss and accuracy), `opt_state` and
    `epochs_done`; it unpacks as `model, history = train_classifier(...)`.

    Each epoch is one call of a jit-compiled function (a `lax.scan` over the batches); it is
    compiled for the first epoch and reused for the others, and for later calls with the same
    optimizer object, model structure, data shapes and batch size.

    Continuing is exact: 2 epochs, then 2 more with `opt_state=first.opt_state,
    initial_epoch=first.epochs_done` and the same `key` give the model of 4 epochs in one call.

    **Saving and loading:** the model and the optimiser state are pytrees of arrays. Equinox
    writes their leaves (`eqx.tree_serialise_leaves`) and reads them back into a skeleton of the
    same structure (`eqx.tree_deserialise_leaves`): the untrained model built with the same
    arguments (any key), and `optimizer.init` of its parameters for the state:

        eqx.tree_serialise_leaves("model.eqx", result.model)
        eqx.tree_serialise_leaves("opt_state.eqx", result.opt_state)
        skeleton = gj.MLP(64, 10, 128, 1, key=jax.random.key(0))
        model = eqx.tree_deserialise_leaves("model.eqx", skeleton)
        opt_state = eqx.tree_deserialise_leaves(
            "opt_state.eqx", optimizer.init(eqx.filter(skeleton, eqx.is_inexact_array)))

    **Example:**

        >>> import jax, optax, glmjax as gj
        >>> X_train, y_train, X_test, y_test = gj.datasets.load_digits()
        >>> model = gj.MLP(64, 10, 128, 1, key=jax.random.key(0))
        >>> model, history = gj.train_classifier(
        ...     model, X_train, y_train, optimizer=optax.adam(1e-2), epochs=15,
        ...     key=jax.random.key(1), progress=False, validation=(X_test, y_test))
        >>> float(history.val_accuracy[-1]) > 0.95
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
    check_int(initial_epoch, "initial_epoch", minimum=0)
    X = check_X(model, X)
    k = num_classes(model, X)
    y = check_y(y, X.shape[0], k)
    if validation is not None:
        X_val, y_val = _check_validation(model, validation, X, k)
    params = eqx.filter(model, eqx.is_inexact_array)
    if opt_state is None:
        opt_state = optimizer.init(params)
    else:
        _check_opt_state(opt_state, eqx.filter_eval_shape(optimizer.init, params))

    curves = []
    with tqdm(range(epochs), desc="training", unit="epoch", disable=not progress) as bar:
        for epoch in bar:
            epoch_key = jax.random.fold_in(key, initial_epoch + epoch)
            model, opt_state, *values = _train_epoch(
                model, opt_state, X, y, epoch_key, optimizer, batch_size
            )
            if validation is not None:
                values += network_loss_and_accuracy(model, X_val, y_val)
            curves.append(values)
            if progress:
                names = ("loss", "acc", "val_loss", "val_acc")[: len(values)]
                bar.set_postfix({n: f"{float(v):.4f}" for n, v in zip(names, values, strict=True)})
    columns = len(TrainHistory._fields) if validation is not None else 2
    if epochs == 0:
        history = TrainHistory(*(jnp.zeros((0,), X.dtype) for _ in range(columns)))
    else:
        history = TrainHistory(*(jnp.stack(column) for column in zip(*curves, strict=True)))
    return TrainResult(model, history, opt_state, initial_epoch + epochs)
