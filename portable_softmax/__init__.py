"""Softmax, log-softmax, logsumexp, their derivatives and softmax cross-entropy.

Written once against the Python array API standard (through ``array-api-compat``), so the
same functions accept NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict arrays and return
arrays of the same library, on the same device. ``../SPEC.md`` of the project is the contract;
the README tells it in short.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
