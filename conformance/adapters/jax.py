"""JAX's ``jax.nn`` softmax family as an implementation (JAX arrays only).

Forward: ``jax.nn.softmax``, ``jax.nn.log_softmax``, ``jax.nn.logsumexp`` with ``where``.
Derivatives: ``jax.vjp`` and ``jax.jvp`` at a preimage of the output (``log(y)`` for
softmax, ``logp`` itself for log_softmax). No temperature, no cross-entropy, no layers.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

__conformance_name__ = "jax"
__conformance_conventions__ = {
    "nan_for_inf_rows": "NaN in slices holding +inf or no finite entry",
    "own_validation_errors": "its own exceptions and messages for bad input",
}


def __conformance_accepts__(backend: Any) -> str | None:
    if array_api_compat.is_jax_namespace(backend.xp):
        return None
    return "jax.nn takes JAX arrays only"


def softmax(x: Any, /, *, axis: Any = -1, where: Any = None) -> Any:
    """``jax.nn.softmax(x, axis=axis, where=where)``."""
    import jax

    return jax.nn.softmax(x, axis=axis, where=where)


def log_softmax(x: Any, /, *, axis: Any = -1, where: Any = None) -> Any:
    """``jax.nn.log_softmax(x, axis=axis, where=where)``."""
    import jax

    return jax.nn.log_softmax(x, axis=axis, where=where)


def logsumexp(x: Any, /, *, axis: Any = -1, where: Any = None, keepdims: bool = False) -> Any:
    """``jax.nn.logsumexp(x, axis=axis, where=where, keepdims=keepdims)``."""
    import jax

    return jax.nn.logsumexp(x, axis=axis, where=where, keepdims=keepdims)


def softmax_backward(grad: Any, y: Any, /, *, axis: Any = -1, where: Any = None) -> Any:
    """``jax.vjp`` of ``jax.nn.softmax`` at ``log(y)``."""
    import jax
    import jax.numpy as jnp

    _, vjp = jax.vjp(lambda z: jax.nn.softmax(z, axis=axis, where=where), jnp.log(y))
    return vjp(grad)[0]


def log_softmax_backward(grad: Any, logp: Any, /, *, axis: Any = -1, where: Any = None) -> Any:
    """``jax.vjp`` of ``jax.nn.log_softmax`` at ``logp``."""
    import jax

    _, vjp = jax.vjp(lambda z: jax.nn.log_softmax(z, axis=axis, where=where), logp)
    return vjp(grad)[0]


def softmax_jvp(tangent: Any, y: Any, /, *, axis: Any = -1, where: Any = None) -> Any:
    """``jax.jvp`` of ``jax.nn.softmax`` at ``log(y)``."""
    import jax
    import jax.numpy as jnp

    fn = lambda z: jax.nn.softmax(z, axis=axis, where=where)  # noqa: E731
    return jax.jvp(fn, (jnp.log(y),), (tangent,))[1]


def log_softmax_jvp(tangent: Any, logp: Any, /, *, axis: Any = -1, where: Any = None) -> Any:
    """``jax.jvp`` of ``jax.nn.log_softmax`` at ``logp``."""
    import jax

    fn = lambda z: jax.nn.log_softmax(z, axis=axis, where=where)  # noqa: E731
    return jax.jvp(fn, (logp,), (tangent,))[1]
