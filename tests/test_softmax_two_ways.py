"""The seed's point 8: the softmax activation of a network with no hidden layer, trained by
back-propagation on the cross-entropy, and softmax regression fitted by Newton's method as a GLM,
are one function optimised two ways: they reach the same optimum."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import glmjax as gj

L2 = 0.05


def _data(n=240, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X @ rng.normal(size=(d, k)) + rng.normal(size=k)
    y = np.array([rng.choice(k, p=p) for p in np.asarray(jax.nn.softmax(logits, axis=1))])
    return jnp.asarray(X), jnp.asarray(y)


def test_mlp_without_hidden_layer_reaches_the_softmax_regression_optimum(getkey):
    X, y = _data()
    n, d = X.shape
    k = 3
    glm = gj.fit_glm(gj.add_intercept(X), y, gj.Categorical(k, minimal=False), l2=L2)
    assert bool(glm.converged)

    # full batch (one batch of all n examples per epoch) gradient descent on
    # mean cross-entropy + L2/2 ||params||^2: weight decay adds exactly the ridge's gradient
    model = gj.MLP(d, k, 1, 0, key=getkey())
    optimizer = optax.chain(optax.add_decayed_weights(L2), optax.sgd(1.0))
    model, history = gj.train_classifier(
        model, X, y, optimizer=optimizer, batch_size=n, epochs=1500, key=getkey(), progress=False
    )
    (layer,) = model.layers
    coef_mlp = jnp.concatenate([layer.bias[None, :], layer.weight.T], axis=0)

    np.testing.assert_allclose(coef_mlp, glm.coef, rtol=0, atol=1e-7)
    np.testing.assert_allclose(
        gj.predict_proba(model, X), glm.predict(gj.add_intercept(X)), atol=1e-8
    )
    ridge = 0.5 * L2 * jnp.sum(coef_mlp**2)
    objective_mlp = gj.cross_entropy(model, X, y) + ridge
    assert abs(float(objective_mlp) - float(glm.history[glm.n_iter])) < 1e-12
    # the network's loss only decreased towards it: gradient descent, not a copy of the GLM
    assert float(history.loss[0]) > float(history.loss[-1]) + 0.1
