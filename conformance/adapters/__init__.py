"""Adapters that present peer libraries with the portable-softmax signatures.

Point the suite at one with ``--impl conformance.adapters.scipy`` (or ``.torch``, ``.jax``).
Each adapter maps our keyword options onto the peer's own call and nothing more: it never
fixes the peer's results. A function or option it has no mapping for is left out of the
signature (the suite reports "not provided"), and the conventions the peer documents that
differ from ours are declared in ``__conformance_conventions__``.
"""
