"""The portable path: every function written once against the Python array API standard.

It is the reference and the fallback: it takes every described call, on every library; the
fast paths in ``portable_softmax._backends`` take the common cases. Each function takes the
call that ``portable_softmax._lib._describe`` built (the arguments were validated there).
"""

from .cross_entropy import cross_entropy, cross_entropy_backward, cross_entropy_with_grad
from .derivatives import log_softmax_backward, log_softmax_jvp, softmax_backward, softmax_jvp
from .forward import log_softmax, logsumexp, softmax

__all__ = [
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_with_grad",
    "log_softmax",
    "log_softmax_backward",
    "log_softmax_jvp",
    "logsumexp",
    "softmax",
    "softmax_backward",
    "softmax_jvp",
]
