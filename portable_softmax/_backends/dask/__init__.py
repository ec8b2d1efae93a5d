"""The Dask backend: every call on ``dask.array`` arrays, lazily, and scaling.

Dask is a container in the registry: it serves every Dask array with something to compute,
whatever the path setting, and the setting picks the kernels its blocks run on. Chunks that
hold whole slices along the reduced axes run one task each, the described call on the block
through the registry (its chunk type's fastest path); chunks that split the reduced axes,
and ``axis=None``, go through a tree reduction of per-slice statistics and one elementwise
pass (on the portable path they are rechunked whole instead). Nothing is computed while the
graph is built.

Examples
--------
>>> import dask.array as da
>>> import portable_softmax as ps
>>> x = da.from_array([[1.0, 2.0, 3.0, 4.0]], chunks=(1, 2))  # the axis is split
>>> ps.softmax(x, axis=-1).compute().round(6)
array([[0.032059, 0.087144, 0.236883, 0.643914]])
"""

from __future__ import annotations

from ..._lib._call import FUNCTIONS
from ._cross_entropy import (
    cross_entropy as cross_entropy,
)
from ._cross_entropy import (
    cross_entropy_backward as cross_entropy_backward,
)
from ._cross_entropy import (
    cross_entropy_with_grad as cross_entropy_with_grad,
)
from ._derivatives import derivative as derivative
from ._forward import forward as forward
from ._forward import logsumexp as logsumexp

__all__ = [*FUNCTIONS]  # a kernel for every public function

softmax = log_softmax = forward
softmax_backward = softmax_jvp = log_softmax_backward = log_softmax_jvp = derivative
