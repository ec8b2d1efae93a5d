"""How many threads a kernel call runs on, from :func:`portable_softmax.get_num_threads`."""

from __future__ import annotations

from typing import Any

import numba

from ... import _config

__all__ = ["PARALLEL_BYTES", "parallel"]

PARALLEL_BYTES = 256 * 1024
"""Inputs smaller than this run on one thread: waking the pool costs more than they do."""


def parallel(nbytes: int, rows: int) -> bool:
    """Whether to run the parallel variant; if so, numba's thread count is set for it.

    Small inputs and single rows stay serial (rows are the unit of work).
    """
    if nbytes < PARALLEL_BYTES or rows < 2:
        return False
    config: Any = numba.config
    threads = min(_config.kernel_threads(), config.NUMBA_NUM_THREADS, rows)
    if threads < 2:
        return False
    if numba.get_num_threads() != threads:
        numba.set_num_threads(threads)
    return True
