"""glmjax: exponential families, GLMs and softmax classifiers in JAX, derived by autodiff."""

from . import datasets as datasets
from ._activations import ActivationGradients as ActivationGradients
from ._activations import activation_gradients as activation_gradients
from ._activations import layer_gradient_norms as layer_gradient_norms
from ._activations import plot_activation_gradients as plot_activation_gradients
from ._families import Bernoulli as Bernoulli
from ._families import Binomial as Binomial
from ._families import Categorical as Categorical
from ._families import Exponential as Exponential
from ._families import Gamma as Gamma
from ._families import Gaussian as Gaussian
from ._families import Geometric as Geometric
from ._families import NegativeBinomial as NegativeBinomial
from ._families import Poisson as Poisson
from ._family import ClosedForms as ClosedForms
from ._family import ExponentialFamily as ExponentialFamily
from ._fit import ConvergenceWarning as ConvergenceWarning
from ._fit import add_intercept as add_intercept
from ._fit import fit_glm as fit_glm
from ._mlp import MLP as MLP
from ._result import GLMResult as GLMResult
from ._sharding import shard_rows as shard_rows
from ._solvers import ResultCode as ResultCode
from ._streaming import StreamingResult as StreamingResult
from ._streaming import fit_glm_streaming as fit_glm_streaming
from ._train import TrainHistory as TrainHistory
from ._train import accuracy as accuracy
from ._train import cross_entropy as cross_entropy
from ._train import predict_proba as predict_proba
from ._train import train_classifier as train_classifier

__version__ = "0.1.0"
