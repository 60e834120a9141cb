"""glmjax: exponential families, GLMs and softmax classifiers in JAX, derived by autodiff."""

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

__version__ = "0.1.0"
