"""portable_softmax on the path setting ``cupy``: the suite grades the CuPy kernels.

``pytest conformance --backend cupy --impl conformance.adapters.cupy_kernels`` calls
``portable_softmax.<name>`` inside ``portable_softmax.use_path("cupy")``: the registry sends
every call the kernels take to them (``portable_softmax._dispatch.CUPY``), the rest (masks,
other axes, bad arguments...) to the generic path, exactly as a user's calls under that
setting. So the whole suite grades the kernels and the calls they leave to the generic path
together. CuPy arrays only.

With ``PORTABLE_SOFTMAX_KERNEL_COUNTS=FILE`` set, how many calls each kernel served and how
many went elsewhere (the generic path, or an error raised before dispatch) are written to
FILE (JSON) at exit, so that a run shows the kernels were exercised, not only the generic
path. The kernel calls are counted where the dispatcher calls the backend's functions.
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
from portable_softmax import _dispatch

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


def _counted(module: Any, name: str) -> None:
    """The backend's ``name`` counting its calls (the dispatcher looks it up at each call)."""
    kernel = getattr(module, name)
    if getattr(kernel, "__wrapped__", None) is not None:
        return

    @functools.wraps(kernel)
    def served(call: Any) -> Any:
        _COUNTS[f"{name} kernel"] += 1
        return kernel(call)

    setattr(module, name, served)


_BACKEND = _dispatch.CUPY.load()
assert _BACKEND is not None, "the CuPy backend needs no optional library"
for _name in _dispatch.CUPY.takes:
    _counted(_BACKEND, _name)


def _on_the_kernels(name: str) -> Callable[..., Any]:
    public = getattr(portable_softmax, name)

    @functools.wraps(public)
    def call(*args: Any, **kwargs: Any) -> Any:
        served = _COUNTS[f"{name} kernel"]
        try:
            with portable_softmax.use_path("cupy"):
                return public(*args, **kwargs)
        finally:
            if _COUNTS[f"{name} kernel"] == served:
                _COUNTS[f"{name} generic"] += 1

    return call


softmax = _on_the_kernels("softmax")
log_softmax = _on_the_kernels("log_softmax")
logsumexp = _on_the_kernels("logsumexp")
softmax_backward = _on_the_kernels("softmax_backward")
softmax_jvp = _on_the_kernels("softmax_jvp")
log_softmax_backward = _on_the_kernels("log_softmax_backward")
log_softmax_jvp = _on_the_kernels("log_softmax_jvp")
cross_entropy = _on_the_kernels("cross_entropy")
cross_entropy_backward = _on_the_kernels("cross_entropy_backward")
cross_entropy_with_grad = _on_the_kernels("cross_entropy_with_grad")
