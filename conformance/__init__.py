"""The portable-softmax conformance suite.

A package so that test modules can import the shared framework as
``conformance._framework`` and so that the bundled peer adapters are importable as
``--impl conformance.adapters.scipy`` (and ``.torch``, ``.jax``).
"""
