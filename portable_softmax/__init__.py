"""Softmax, log-softmax, logsumexp, their derivatives and softmax cross-entropy.

Written once against the Python array API standard (through ``array-api-compat``), so the
same functions accept NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays and return
arrays of the same library, on the same device, with the same edge semantics everywhere.

Examples
--------
>>> import numpy as np
>>> import portable_softmax as ps
>>> ps.softmax(np.array([[1.0, 2.0, 3.0]]), axis=1).round(8)
array([[0.09003057, 0.24472847, 0.66524096]])
"""

from __future__ import annotations

from ._config import get_num_threads, set_num_threads, use_path
from ._cross_entropy import cross_entropy, cross_entropy_backward, cross_entropy_with_grad
from ._derivatives import log_softmax_backward, log_softmax_jvp, softmax_backward, softmax_jvp
from ._forward import log_softmax, logsumexp, softmax
from ._layers import LogSoftmaxLayer, SoftmaxCrossEntropyLayer, SoftmaxLayer

__version__ = "0.1.0"

__all__ = [
    "LogSoftmaxLayer",
    "SoftmaxCrossEntropyLayer",
    "SoftmaxLayer",
    "__version__",
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_with_grad",
    "get_num_threads",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_jvp",
    "logsumexp",
    "set_num_threads",
    "softmax",
    "softmax_backward",
    "softmax_jvp",
    "use_path",
]
