r"""A classifier's probabilities, cross-entropy and accuracy: a network or a fitted GLM.

A classifier here is either a network (an `equinox.Module` mapping one example `x` to logits
`z = model(x)`, probabilities `softmax(z)`) or a `GLMResult` whose response is a class label:
softmax regression (`Categorical(k)`, the probabilities of all `k` classes from `fit.predict`)
or a binary family (support `{0, 1}`, e.g. `Bernoulli()` with any link: `fit.predict` gives
`mu = P(y = 1)`, the two columns are `(1 - mu, mu)`). For `n` rows with labels `y_i`,

$$
\mathrm{cross\ entropy} = -\frac{1}{n} \sum_i \log p_{i y_i}, \qquad
\mathrm{accuracy} = \frac{1}{n} \sum_i [\arg\max_c p_{ic} = y_i].
$$

A network's logits are computed by one jit-compiled call, `_EVAL_BATCH` rows at a time (a
`lax.map` of `jax.vmap`), so a large evaluation set never holds more than that many rows'
activations; the cross-entropy is computed from the logits (`logsumexp(z_i) - z_{i y_i}`). A GLM's
probabilities are `fit.predict`'s, unchanged (eager, no compilation). The input checks here are
the ones `train_classifier` makes on its data.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jaxtyping import Array, ArrayLike, Float, Int

from .._families import Categorical
from .._misc import is_concrete
from .._result import GLMResult

# rows per vmapped chunk when evaluating a network: with 256 hidden units in float64 a chunk's
# activations are 16 MB
_EVAL_BATCH = 8192


def _is_binary(family) -> bool:
    support = family.support
    return (
        family.natural_dim is None
        and support.discrete
        and (float(support.lower), float(support.upper), float(support.step)) == (0.0, 1.0, 1.0)
    )


def _check_glm(fit: GLMResult) -> int:
    """The number of classes of a GLM fit used as a classifier."""
    family = fit.family
    if isinstance(family, Categorical):
        k, coef_ndim = family.num_classes, 2
    elif _is_binary(family):
        k, coef_ndim = 2, 1
    else:
        raise ValueError(
            f"`model` is a GLM fit of the {family.name} family, which is not a classifier: "
            "class probabilities need a Categorical (softmax regression) or a binary family "
            "(Bernoulli)"
        )
    if fit.coef.ndim != coef_ndim:
        raise ValueError(
            f"`model` is a batch of GLM fits (coef of shape {fit.coef.shape}); index one first"
        )
    return k


def _in_size(model) -> int | None:
    if isinstance(model, GLMResult):
        _check_glm(model)  # a batch of fits or a non-classifier family before any shape message
        return model.coef.shape[0]
    return getattr(model, "in_size", None)


def check_X(model, X, name: str = "X") -> Float[Array, "n d"]:
    """`X` as a floating `(n, d)` array with the number of features `model` takes."""
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (n, features), got shape {X.shape}")
    if X.shape[0] < 1:
        raise ValueError(f"`{name}` must have at least one row")
    if not jnp.issubdtype(X.dtype, jnp.inexact):
        X = X.astype(jnp.result_type(float))
    in_size = _in_size(model)
    if in_size is not None and X.shape[1] != in_size:
        raise ValueError(
            f"`{name}` has {X.shape[1]} features per row but the model takes {in_size}"
        )
    if is_concrete(X) and not bool(jnp.all(jnp.isfinite(X))):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return X


def num_classes(model, X, name: str = "X") -> int:
    """The number of classes `model` tells apart (its number of logits)."""
    if isinstance(model, GLMResult):
        return _check_glm(model)
    try:
        logits = eqx.filter_eval_shape(model, X[0])
    except (TypeError, ValueError) as error:
        # a model without an `in_size` to check against fails here on a wrong number of features
        raise ValueError(
            f"`model` cannot be applied to one row of `{name}` ({X.shape[1]} features): {error}"
        ) from error
    if logits.ndim != 1:
        raise ValueError(
            f"`model` must map one example to a vector of logits, got shape {logits.shape}"
        )
    return logits.shape[0]


def check_y(y, n: int, k: int, name: str = "y", x_name: str = "X") -> Int[Array, " n"]:
    """`y` as integer labels `(n,)` in `0..k-1`."""
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},) to match `{x_name}`, got {y.shape}")
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"`{name}` must hold integer class labels, got dtype {y.dtype}")
    if is_concrete(y):
        low, high = int(jnp.min(y)), int(jnp.max(y))
        if low < 0 or high >= k:
            raise ValueError(
                f"`{name}` must be class labels in 0..{k - 1} (the model has {k} classes), got "
                f"values in {low}..{high}"
            )
    return y


def check_data(model, X, y, x_name: str = "X", y_name: str = "y"):
    """`(X, y)` checked against `model` and each other (`check_X`, `check_y`)."""
    X = check_X(model, X, x_name)
    k = num_classes(model, X, x_name)
    return X, check_y(y, X.shape[0], k, y_name, x_name)


def fraction_correct(scores: Float[Array, "n k"], y: Int[Array, " n"]) -> Float[Array, ""]:
    """The fraction of rows whose largest score (logit or probability) is at the label."""
    # cast before averaging: jnp.mean of booleans is float32 even under x64
    return jnp.mean((jnp.argmax(scores, axis=-1) == y).astype(scores.dtype))


def _network_logits(model, X: Float[Array, "n d"]) -> Float[Array, "n k"]:
    return lax.map(model, X, batch_size=_EVAL_BATCH)


_jit_logits = eqx.filter_jit(_network_logits)


@eqx.filter_jit
def network_loss_and_accuracy(model, X, y) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """The mean cross-entropy and the accuracy of a network on checked data, one compiled call
    (also `train_classifier`'s validation)."""
    logits = _network_logits(model, X)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, fraction_correct(logits, y)


def _glm_proba(fit: GLMResult, X: Float[Array, "n d"]) -> Float[Array, "n k"]:
    mean = fit.predict(X)
    return mean if mean.ndim == 2 else jnp.stack([1 - mean, mean], axis=-1)


def predict_proba(model: eqx.Module, X: Float[ArrayLike, "n d"]) -> Float[Array, "n k"]:
    """Class probabilities for each row of `X`, shape `(n, k)`.

    **Arguments:**

    - `model`: a network mapping one example to logits (`gj.MLP`): `softmax(model(x_i))`; or a
      `GLMResult` of a classifier family: softmax regression (`Categorical(k)`: `fit.predict(X)`,
      all `k` columns) or a binary one (`Bernoulli()`, any link: columns `1 - fit.predict(X)`
      and `fit.predict(X)`). Another family raises a `ValueError`.
    - `X`: features `(n, d)`; for a GLM fit, the design matrix as the fit had it (with its
      intercept column; there is no offset: use `fit.predict` for one).
    """
    X = check_X(model, X)
    if isinstance(model, GLMResult):
        return _glm_proba(model, X)
    return jax.nn.softmax(_jit_logits(model, X), axis=-1)


def _glm_loss_and_accuracy(fit: GLMResult, X, y) -> tuple[Float[Array, ""], Float[Array, ""]]:
    proba = _glm_proba(fit, X)
    loss = -jnp.mean(jnp.log(jnp.take_along_axis(proba, y[:, None], axis=1)))
    return loss, fraction_correct(proba, y)


def _loss_and_accuracy(model, X, y) -> tuple[Float[Array, ""], Float[Array, ""]]:
    X, y = check_data(model, X, y)
    if isinstance(model, GLMResult):
        return _glm_loss_and_accuracy(model, X, y)
    return network_loss_and_accuracy(model, X, y)


def cross_entropy(
    model: eqx.Module, X: Float[ArrayLike, "n d"], y: Int[ArrayLike, " n"]
) -> Float[Array, ""]:
    r"""The mean cross-entropy `-(1/n) sum_i log p_{i y_i}` over the rows: for a network
    `(1/n) sum_i [logsumexp(z_i) - z_{i y_i}]` from its logits; `model` may also be a classifier
    `GLMResult` (as in `predict_proba`): on the rows of an unweighted fit, `-fit.loglik / n`."""
    return _loss_and_accuracy(model, X, y)[0]


def accuracy(
    model: eqx.Module, X: Float[ArrayLike, "n d"], y: Int[ArrayLike, " n"]
) -> Float[Array, ""]:
    """The fraction of rows whose most probable class is the label `y_i`.

    `model` is a network (its largest logit) or a classifier `GLMResult` (its largest
    probability, as `predict_proba`; for a binary fit, `fit.predict(X) > 0.5`).
    """
    return _loss_and_accuracy(model, X, y)[1]
