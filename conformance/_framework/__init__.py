"""Shared machinery of the conformance suite; test modules import from here.

>>> from conformance._framework import require, assert_array_like  # doctest: +SKIP
"""

from __future__ import annotations

from .assertions import assert_array_like, assert_close, assert_same_specials, assert_within_bound
from .backends import DTYPE_NAMES, Backend, dtype_name
from .errors import record_error
from .provided import (
    CONVENTIONS,
    convention_difference,
    declares_convention,
    impl_name,
    not_provided,
    require,
)

__all__ = [
    "CONVENTIONS",
    "DTYPE_NAMES",
    "Backend",
    "assert_array_like",
    "assert_close",
    "assert_same_specials",
    "assert_within_bound",
    "convention_difference",
    "declares_convention",
    "dtype_name",
    "impl_name",
    "not_provided",
    "record_error",
    "require",
]
