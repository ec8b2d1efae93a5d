"""Every name this backend takes from the rest of the package, in one place.

The registry's dispatch (each block runs on its chunk type's path through it), the path
setting, the one-thread switch for blocks, the shared slices and sums, and the portable
cross-entropy preparation and "denominator" kernel. When these move, only this module
changes.
"""

from __future__ import annotations

from typing import Any

from ..._config import current_path, one_thread
from ..._dispatch import dispatch
from ..._generic.cross_entropy import Operands, operands
from ..._generic.cross_entropy_kernels import kernel_of
from ..._generic.reductions import accurate_sum
from ..._lib._call import Call, CrossEntropyCall, library_of
from ..._lib._quiet import quiet_floating_point
from ..._lib._slices import Slices, prepare

__all__ = [
    "Call",
    "CrossEntropyCall",
    "Operands",
    "Slices",
    "accurate_sum",
    "current_path",
    "denominator_kernel",
    "dispatch",
    "library_of",
    "one_thread",
    "operands",
    "prepare",
    "quiet_floating_point",
]


def denominator_kernel(config: Any) -> Any:
    """The portable per-slice kernel of ``d_n = sum_c w_c t_nc`` (0 for samples left out)."""
    return kernel_of(config, "denominator")
