"""glmjax: exponential families, GLMs and softmax classifiers in JAX, derived by autodiff."""

from . import datasets as datasets
from . import links as links
from . import nn as nn
from . import solvers as solvers
from ._comparison import Anova as Anova
from ._comparison import TestResult as TestResult
from ._comparison import anova as anova
from ._comparison import lr_test as lr_test
from ._exponential_family import ClosedForms as ClosedForms
from ._exponential_family import ExponentialFamily as ExponentialFamily
from ._exponential_family import Support as Support
from ._exponential_family import make_family as make_family
from ._families import Bernoulli as Bernoulli
from ._families import Binomial as Binomial
from ._families import Categorical as Categorical
from ._families import Exponential as Exponential
from ._families import Gamma as Gamma
from ._families import Gaussian as Gaussian
from ._families import Geometric as Geometric
from ._families import InverseGaussian as InverseGaussian
from ._families import NegativeBinomial as NegativeBinomial
from ._families import Poisson as Poisson
from ._fit import add_intercept as add_intercept
from ._fit import fit_glm as fit_glm
from ._prediction import Prediction as Prediction
from ._result import GLMResult as GLMResult
from ._sharding import shard_rows as shard_rows
from ._solution import ConvergenceWarning as ConvergenceWarning
from ._solution import ResultCode as ResultCode
from ._streaming import fit_glm_streaming as fit_glm_streaming
from ._verify import VerifyReport as VerifyReport
from ._verify import verify_family as verify_family
from .links import Link as Link
from .nn import MLP as MLP
from .nn import TrainHistory as TrainHistory
from .nn import TrainResult as TrainResult
from .nn import accuracy as accuracy
from .nn import activation_gradients as activation_gradients
from .nn import cross_entropy as cross_entropy
from .nn import layer_gradient_norms as layer_gradient_norms
from .nn import plot_activation_gradients as plot_activation_gradients
from .nn import predict_proba as predict_proba
from .nn import train_classifier as train_classifier

__version__ = "0.2.0"

__all__ = [
    "Anova",
    "Bernoulli",
    "Binomial",
    "Categorical",
    "ClosedForms",
    "ConvergenceWarning",
    "Exponential",
    "ExponentialFamily",
    "GLMResult",
    "Gamma",
    "Gaussian",
    "Geometric",
    "InverseGaussian",
    "Link",
    "MLP",
    "NegativeBinomial",
    "Poisson",
    "Prediction",
    "ResultCode",
    "Support",
    "TestResult",
    "TrainHistory",
    "TrainResult",
    "VerifyReport",
    "accuracy",
    "activation_gradients",
    "add_intercept",
    "anova",
    "cross_entropy",
    "datasets",
    "fit_glm",
    "fit_glm_streaming",
    "layer_gradient_norms",
    "links",
    "lr_test",
    "make_family",
    "nn",
    "plot_activation_gradients",
    "predict_proba",
    "shard_rows",
    "solvers",
    "train_classifier",
    "verify_family",
]
