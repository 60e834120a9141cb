"""The network side: an Equinox MLP classifier, its optax training loop, the seed's mini-batches
and its vanishing-gradient measurement."""

from ._batching import batch_indices as batch_indices
from ._batching import num_batches as num_batches
from ._evaluate import accuracy as accuracy
from ._evaluate import cross_entropy as cross_entropy
from ._evaluate import predict_proba as predict_proba
from ._gradients import ActivationGradients as ActivationGradients
from ._gradients import activation_gradients as activation_gradients
from ._gradients import layer_gradient_norms as layer_gradient_norms
from ._gradients import plot_activation_gradients as plot_activation_gradients
from ._mlp import MLP as MLP
from ._train import TrainHistory as TrainHistory
from ._train import TrainResult as TrainResult
from ._train import train_classifier as train_classifier
