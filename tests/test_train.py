"""train_classifier's validation set and continuation, the evaluation helpers on GLM fits, and
saving/loading with Equinox. One optimizer object, one model structure and one set of data shapes
throughout, so the whole file compiles one training epoch and one evaluation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import glmjax as gj
from glmjax.nn import _evaluate

OPTIMIZER = optax.adam(1e-2)
N, N_VAL, D, K, BATCH = 60, 25, 4, 3, 16


def _data(seed, n):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    return jnp.asarray(X), jnp.asarray(np.argmax(X[:, :K] + 0.5 * rng.normal(size=(n, K)), 1))


X, Y = _data(0, N)
X_VAL, Y_VAL = _data(1, N_VAL)


def _model(seed=0):
    return gj.MLP(D, K, 5, 1, key=jax.random.key(seed))


def _train(model, epochs, **kwargs):
    kwargs = {"progress": False, "key": jax.random.key(7)} | kwargs
    return gj.train_classifier(
        model, X, Y, optimizer=OPTIMIZER, batch_size=BATCH, epochs=epochs, **kwargs
    )


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)


def test_validation_is_reported_and_changes_nothing(capsys):
    plain = _train(_model(), 3)
    assert plain.history.val_loss is None and plain.history.val_accuracy is None
    watched = _train(_model(), 3, validation=(X_VAL, np.asarray(Y_VAL)), progress=True)
    _assert_trees_equal(watched.model, plain.model)
    _assert_trees_equal(watched.opt_state, plain.opt_state)
    np.testing.assert_array_equal(watched.history.loss, plain.history.loss)
    np.testing.assert_array_equal(watched.history.accuracy, plain.history.accuracy)
    # each epoch's entry is the end-of-epoch model's, as the evaluation helpers give it
    first = _train(_model(), 1).model
    for epoch, model in ((0, first), (2, plain.model)):
        assert watched.history.val_loss[epoch] == gj.cross_entropy(model, X_VAL, Y_VAL)
        assert watched.history.val_accuracy[epoch] == gj.accuracy(model, X_VAL, Y_VAL)
    assert watched.history.val_loss.shape == watched.history.val_accuracy.shape == (3,)
    bar = capsys.readouterr().err
    assert "3/3" in bar and "val_loss=" in bar and "val_acc=" in bar
    empty = _train(_model(), 0, validation=(X_VAL, Y_VAL)).history
    assert empty.val_loss.shape == empty.val_accuracy.shape == (0,)


def test_continuing_from_the_optimiser_state_is_one_longer_run():
    validation = (X_VAL, Y_VAL)
    whole = _train(_model(), 4, validation=validation)
    first = _train(_model(), 2, validation=validation)
    assert first.epochs_done == 2
    rest = _train(
        first.model,
        2,
        validation=validation,
        opt_state=first.opt_state,
        initial_epoch=first.epochs_done,
    )
    assert rest.epochs_done == whole.epochs_done == 4
    _assert_trees_equal(rest.model, whole.model)
    _assert_trees_equal(rest.opt_state, whole.opt_state)
    for field in gj.TrainHistory._fields:
        joined = jnp.concatenate([getattr(first.history, field), getattr(rest.history, field)])
        np.testing.assert_array_equal(joined, getattr(whole.history, field))
    # without the epoch offset the shuffles repeat those of epochs 0 and 1: another run
    repeated = _train(first.model, 2, opt_state=first.opt_state)
    assert not np.array_equal(repeated.history.loss, rest.history.loss)
    # the result still unpacks and indexes as (model, history)
    model, history = whole
    assert model is whole.model is whole[0] and history is whole.history is whole[1]


class _NoInSize(eqx.Module):
    """A network without an `in_size` attribute: only the data can be checked against each other."""

    inner: gj.MLP

    def __call__(self, x):
        return self.inner(x)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"validation": X_VAL}, "`validation` must be a pair"),
        ({"validation": (X_VAL, Y_VAL, Y_VAL)}, "`validation` must be a pair"),
        ({"validation": (X_VAL[0], Y_VAL)}, "`validation\\[0\\]` must be a 2-D"),
        ({"validation": (X_VAL[:, :3], Y_VAL)}, "`validation\\[0\\]` has 3 features"),
        ({"validation": (X_VAL.at[0, 0].set(jnp.nan), Y_VAL)}, "`validation\\[0\\]` contains"),
        ({"validation": (X_VAL, Y_VAL[1:])}, "`validation\\[1\\]` must have shape"),
        ({"validation": (X_VAL, Y_VAL + 0.0)}, "`validation\\[1\\]` must hold integer"),
        ({"validation": (X_VAL, Y_VAL + K)}, "`validation\\[1\\]` must be class labels"),
        ({"opt_state": optax.sgd(0.1).init(0.0)}, "`opt_state` must be a state of"),
        ({"opt_state": OPTIMIZER.init(eqx.filter(gj.MLP(D, K, 6, 1, key=jax.random.key(0)),
                                                 eqx.is_inexact_array))},
         "`opt_state` must be a state of"),
        ({"opt_state": jax.tree.map(lambda a: a.astype(jnp.float32) if a.ndim else a,
                                    OPTIMIZER.init(eqx.filter(_model(), eqx.is_inexact_array)))},
         "`opt_state` has a leaf of shape \\(5, 4\\) and dtype float32"),
        ({"initial_epoch": -1}, "`initial_epoch`"),
    ],
)  # fmt: skip
def test_bad_validation_and_state_raise_before_compiling(change, name):
    with pytest.raises(ValueError, match=name):
        _train(_model(), 1, **change)


def test_validation_features_checked_against_X_for_a_model_without_in_size():
    with pytest.raises(ValueError, match="`validation\\[0\\]` has 5 features per row, `X` has 4"):
        _train(_NoInSize(_model()), 1, validation=(jnp.zeros((3, 5)), jnp.zeros(3, int)))


def test_large_evaluation_sets_are_evaluated_in_chunks():
    n = _evaluate._EVAL_BATCH + 1000  # one full chunk and a remainder
    X_big, y_big = _data(2, n)
    model = _model()
    logits = jax.vmap(model)(X_big)
    np.testing.assert_allclose(
        gj.predict_proba(model, X_big), jax.nn.softmax(logits, axis=1), rtol=1e-12
    )
    assert gj.accuracy(model, X_big, y_big) == np.mean(
        np.asarray(logits).argmax(1) == np.asarray(y_big)
    )


@pytest.fixture(scope="module")
def glm_fits():
    """A softmax regression and a logistic regression on the same design (with intercept)."""
    Xd = gj.add_intercept(X)
    y_binary = (X[:, 0] + jnp.asarray(np.random.default_rng(3).normal(size=N)) > 0).astype(int)
    softmax = gj.fit_glm(Xd, Y, gj.Categorical(K))
    # no covariance: it is most of a logistic fit's compilation, and only the softmax fit is saved
    logistic = gj.fit_glm(Xd, y_binary, gj.Bernoulli(), covariance=False)
    return Xd, softmax, logistic, y_binary


def test_glm_fits_as_classifiers(glm_fits):
    Xd, softmax, logistic, y_binary = glm_fits
    proba = gj.predict_proba(softmax, Xd)
    assert proba.shape == (N, K)
    np.testing.assert_array_equal(proba, softmax.predict(Xd))
    mu = logistic.predict(Xd)
    np.testing.assert_array_equal(gj.predict_proba(logistic, Xd), jnp.stack([1 - mu, mu], 1))
    assert gj.accuracy(softmax, Xd, Y) == np.mean(
        np.asarray(softmax.predict(Xd)).argmax(1) == np.asarray(Y)
    )
    assert gj.accuracy(logistic, Xd, y_binary) == np.mean(
        np.asarray(mu > 0.5) == np.asarray(y_binary)
    )
    # the mean cross-entropy on an unweighted fit's own rows is its log-likelihood per row
    np.testing.assert_allclose(gj.cross_entropy(softmax, Xd, Y), -softmax.loglik / N, rtol=1e-12)
    np.testing.assert_allclose(
        gj.cross_entropy(logistic, Xd, y_binary), -logistic.loglik / N, rtol=1e-12
    )


def test_glm_fits_that_are_not_classifiers_raise(glm_fits):
    Xd, softmax, logistic, _ = glm_fits
    # the shapes of a fit are enough to know its family: no need to run it
    poisson = eqx.filter_eval_shape(gj.fit_glm, Xd, jnp.ones(N), gj.Poisson())
    with pytest.raises(ValueError, match="Poisson family, which is not a classifier"):
        gj.predict_proba(poisson, Xd)
    with pytest.raises(ValueError, match="Poisson family, which is not a classifier"):
        gj.accuracy(poisson, Xd, Y)
    batch = jax.tree.map(lambda a: jnp.stack([a, a]), logistic)
    with pytest.raises(ValueError, match="a batch of GLM fits"):
        gj.predict_proba(batch, Xd)
    with pytest.raises(ValueError, match="`X` has 4 features per row but the model takes 5"):
        gj.predict_proba(softmax, X)
    with pytest.raises(ValueError, match="`y` must be class labels in 0..1"):
        gj.accuracy(logistic, Xd, Y)


def test_save_and_load_a_model_its_optimiser_state_and_a_glm_fit(tmp_path, glm_fits):
    trained = _train(_model(), 2)
    eqx.tree_serialise_leaves(tmp_path / "model.eqx", trained.model)
    eqx.tree_serialise_leaves(tmp_path / "opt_state.eqx", trained.opt_state)
    skeleton = _model(seed=99)  # same arguments, any key
    model = eqx.tree_deserialise_leaves(tmp_path / "model.eqx", skeleton)
    opt_state = eqx.tree_deserialise_leaves(
        tmp_path / "opt_state.eqx", OPTIMIZER.init(eqx.filter(skeleton, eqx.is_inexact_array))
    )
    np.testing.assert_array_equal(
        gj.predict_proba(model, X_VAL), gj.predict_proba(trained.model, X_VAL)
    )
    # training goes on from the loaded state as from the one in memory
    _assert_trees_equal(
        _train(model, 1, opt_state=opt_state, initial_epoch=2).model,
        _train(trained.model, 1, opt_state=trained.opt_state, initial_epoch=2).model,
    )

    Xd, softmax, _, _ = glm_fits
    eqx.tree_serialise_leaves(tmp_path / "fit.eqx", softmax)
    # a skeleton of the same shapes, by tracing the same call without running it
    like = eqx.filter_eval_shape(gj.fit_glm, Xd, Y, gj.Categorical(K))
    fit = eqx.tree_deserialise_leaves(tmp_path / "fit.eqx", like)
    np.testing.assert_array_equal(fit.coef, softmax.coef)
    np.testing.assert_array_equal(fit.stderr, softmax.stderr)
    np.testing.assert_array_equal(fit.predict(Xd), softmax.predict(Xd))
    assert str(fit.summary()) == str(softmax.summary())
