"""The portable path: every function written once against the Python array API standard.

It is the reference and the fallback: it takes every call (and raises every documented error),
on every backend; the fast paths in ``portable_softmax._backends`` take the common cases.
"""

from .cross_entropy import cross_entropy, cross_entropy_backward
from .derivatives import log_softmax_backward, log_softmax_jvp, softmax_backward, softmax_jvp
from .forward import log_softmax, logsumexp, softmax

__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_jvp",
    "logsumexp",
    "softmax",
    "softmax_backward",
    "softmax_jvp",
]
