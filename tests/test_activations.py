"""The seed's activation claims: sigmoid's slope vanishes beyond |x| = 5, and so do the gradients
reaching the first layers of a deep sigmoid network; ReLU keeps them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import glmjax as gj


def test_sigmoid_slope_below_0_0067_beyond_5():
    x = jnp.concatenate([jnp.linspace(5.0, 40.0, 701), -jnp.linspace(5.0, 40.0, 701)])
    slope = jax.vmap(jax.grad(jax.nn.sigmoid))(x)
    s = scipy.special.expit(np.asarray(x))
    np.testing.assert_allclose(slope, s * (1 - s), rtol=1e-10, atol=1e-300)
    assert np.all(slope < 0.0067)
    np.testing.assert_allclose(slope[0], np.exp(-5) / (1 + np.exp(-5)) ** 2, rtol=1e-13)
    assert jax.grad(jax.nn.sigmoid)(0.0) == 0.25


def test_layer_gradient_norms_match_a_hand_written_network(getkey):
    model = gj.MLP(4, 3, 5, 2, jax.nn.sigmoid, key=getkey())
    X = jax.random.normal(getkey(), (30, 4))
    y = jax.random.randint(getkey(), (30,), 0, 3)

    def loss(weights):
        h = X
        for W, layer in zip(weights[:-1], model.layers[:-1], strict=True):
            h = 1 / (1 + jnp.exp(-(h @ W.T + layer.bias)))
        logits = h @ weights[-1].T + model.layers[-1].bias
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(30), y])

    grads = jax.jit(jax.grad(loss))([layer.weight for layer in model.layers])
    expected = [np.linalg.norm(np.asarray(g)) for g in grads]
    np.testing.assert_allclose(gj.layer_gradient_norms(model, X, y), expected, rtol=1e-12)


def test_sigmoid_gradients_vanish_relu_gradients_do_not(tmp_path):
    result = gj.activation_gradients(key=jax.random.key(0), depth=6, width=32, epochs=1)
    assert result.names == ("sigmoid", "relu")
    assert result.init.shape == result.trained.shape == (2, 7)
    sigmoid, relu = np.asarray(result.init)
    # each sigmoid layer multiplies the gradient by at most 1/4 times a weight matrix of norm ~1,
    # so the norms fall from the output layer to the input layer, by orders of magnitude overall
    assert np.all(np.diff(sigmoid) > 0)
    assert sigmoid[0] < 1e-4 * sigmoid[-1]
    assert sigmoid[0] < 1e-2 * relu[0]
    # ReLU's first-layer gradient is within two orders of magnitude of its last layer's
    assert relu[0] > 1e-2 * relu[-1]
    # training does not rescue the sigmoid network's first layer
    trained_sigmoid, trained_relu = np.asarray(result.trained)
    assert trained_sigmoid[0] < 1e-2 * trained_relu[0]
    assert np.all(np.isfinite(result.test_accuracy))

    path = gj.plot_activation_gradients(result, tmp_path / "activations.png")
    content = path.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) > 20_000


def test_no_activations_raises(getkey):
    with pytest.raises(ValueError, match="`activations`"):
        gj.activation_gradients(key=getkey(), activations={})
