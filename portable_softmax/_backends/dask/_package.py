"""Every name this backend takes from the rest of the package, in one place.

The validation (``prepare``, ``normalize_axis``, the cross-entropy ``setup``), the shared
helpers (``Slices``, ``accurate_sum``, ``quiet_floating_point``, ``one_thread`` for the
blocks) and the generic cross-entropy "denominator" kernel; the public functions themselves
are looked up by name at run time (``public``). When these move, only this module changes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._config import one_thread
from ..._generic.reductions import accurate_sum
from ..._lib._arguments import normalize_axis
from ..._lib._quiet import quiet_floating_point
from ..._lib._slices import Slices, prepare

__all__ = [
    "Slices",
    "accurate_sum",
    "cross_entropy_setup",
    "denominator_kernel",
    "normalize_axis",
    "one_thread",
    "prepare",
    "public",
    "quiet_floating_point",
]


def public() -> ModuleType:
    """The package, for its public functions (imported at call time: no import cycle)."""
    import portable_softmax

    return portable_softmax


def cross_entropy_setup(*args: Any, **kwargs: Any) -> Any:
    """The generic cross-entropy validation (identical errors): ``(call, options, grad)``."""
    from ..._generic.cross_entropy import _setup

    return _setup(*args, **kwargs)


def denominator_kernel(config: Any) -> Any:
    """The generic per-slice kernel of ``d_n = sum_c w_c t_nc`` (0 for samples left out)."""
    from ..._generic.cross_entropy_kernels import kernel_of

    return kernel_of(config, "denominator")
