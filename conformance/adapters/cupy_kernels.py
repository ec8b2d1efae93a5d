"""portable_softmax with the CuPy kernels first: the suite on the kernels, dispatcher or not.

``pytest conformance --backend cupy --impl conformance.adapters.cupy_kernels`` calls
``portable_softmax._backends.cupy.<name>`` with the opt-in switched on, and
``portable_softmax.<name>`` wherever a kernel answers ``NotImplemented`` (masks, other
axes, bad arguments...): exactly what the dispatcher does, so the whole suite grades the
kernels and the calls they leave to the generic path together. CuPy arrays only.

With ``PORTABLE_SOFTMAX_KERNEL_COUNTS=FILE`` set, how many calls each kernel served and how
many it left to the generic path are written to FILE (JSON) at exit, so that a run shows the
kernels were exercised, not only the fallback.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import os
from collections.abc import Callable
from typing import Any

import array_api_compat

import portable_softmax
import portable_softmax._backends.cupy as _kernels
from portable_softmax._backends.cupy._accept import ENV_KERNELS

__conformance_name__ = "portable_softmax[cupy kernels]"

_COUNTS: collections.Counter[str] = collections.Counter()


def __conformance_accepts__(backend: Any) -> str | None:
    if array_api_compat.is_cupy_namespace(backend.xp):
        return None
    return "the CuPy kernels take CuPy arrays only"


def _write_counts() -> None:
    path = os.environ.get("PORTABLE_SOFTMAX_KERNEL_COUNTS")
    if path and _COUNTS:
        with open(path, "w") as handle:
            json.dump(dict(sorted(_COUNTS.items())), handle, indent=1)


atexit.register(_write_counts)


def _kernel_first(name: str) -> Callable[..., Any]:
    kernel = getattr(_kernels, name)
    generic = getattr(portable_softmax, name)

    @functools.wraps(generic)
    def call(*args: Any, **kwargs: Any) -> Any:
        os.environ[ENV_KERNELS] = "1"  # the opt-in, for every call graded here
        result = kernel(*args, **kwargs)
        if result is NotImplemented:
            _COUNTS[f"{name} generic"] += 1
            return generic(*args, **kwargs)
        _COUNTS[f"{name} kernel"] += 1
        return result

    return call


softmax = _kernel_first("softmax")
log_softmax = _kernel_first("log_softmax")
logsumexp = _kernel_first("logsumexp")
softmax_backward = _kernel_first("softmax_backward")
softmax_jvp = _kernel_first("softmax_jvp")
log_softmax_backward = _kernel_first("log_softmax_backward")
log_softmax_jvp = _kernel_first("log_softmax_jvp")
cross_entropy = _kernel_first("cross_entropy")
cross_entropy_backward = _kernel_first("cross_entropy_backward")
