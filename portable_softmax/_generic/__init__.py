"""The portable path: every function written once against the Python array API standard.

It is the reference and the fallback: it takes every described call, on every library; the
fast paths in ``portable_softmax._backends`` take the common cases. Each function takes the
call that ``portable_softmax._lib._describe`` built (the arguments were validated there).
"""

from .._lib._call import FUNCTIONS
from .cross_entropy import (
    cross_entropy as cross_entropy,
)
from .cross_entropy import (
    cross_entropy_backward as cross_entropy_backward,
)
from .cross_entropy import (
    cross_entropy_with_grad as cross_entropy_with_grad,
)
from .derivatives import (
    log_softmax_backward as log_softmax_backward,
)
from .derivatives import (
    log_softmax_jvp as log_softmax_jvp,
)
from .derivatives import (
    softmax_backward as softmax_backward,
)
from .derivatives import (
    softmax_jvp as softmax_jvp,
)
from .forward import log_softmax as log_softmax
from .forward import logsumexp as logsumexp
from .forward import softmax as softmax

__all__ = [*FUNCTIONS]  # a kernel for every public function
