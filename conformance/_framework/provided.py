"""What an implementation under test provides, and which conventions it follows.

An implementation is any object (usually a module) exposing some of the SPEC section 1
names. Adapters may also declare, as plain attributes:

``__conformance_name__``
    short id for test ids and the report (default: the ``--impl`` spec);
``__conformance_accepts__(backend) -> str | None``
    None when it takes that backend's arrays, else the reason (reported "not provided");
``__conformance_conventions__``
    ``{key: description}`` of documented conventions that differ from ours (see
    :data:`CONVENTIONS`); a check that fails only because of one is reported
    "different convention", not "fail".

Options are found from the function's signature: a keyword the signature lacks (and no
``**kwargs``) is "not provided". An adapter can also call :func:`not_provided` at call time
for option values it cannot map (say, a tuple axis for ``torch.softmax``).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

NOT_PROVIDED = "not provided"
DIFFERENT_CONVENTION = "different convention"

CONVENTIONS: dict[str, str] = {
    "nan_for_inf_rows": "NaN (not our limits) in slices holding +inf or no finite entry",
    "error_on_empty_axis": "an error (not an empty result) for a zero-length reduction axis",
    "accepts_lists": "lists and Python scalars are accepted (we raise TypeError)",
    "no_integer_promotion": "integer and bool inputs are rejected (we promote them)",
    "soft_target_mean_over_n": "mean over the batch size N for probability targets "
    "(we divide by the summed weights of the targets)",
    "nan_for_zero_denominator": "NaN (we give 0) for a mean whose denominator is 0 "
    "(all samples ignored, empty batch, zero weights)",
    "nan_gradient_at_neg_inf": "NaN gradients at -inf logits (we give the true VJP)",
    "own_validation_errors": "its own exception types for bad input (not our TypeError/ValueError "
    "naming the argument)",
}


def impl_name(impl: Any) -> str:
    """Short name of an implementation for messages."""
    return str(getattr(impl, "__conformance_name__", getattr(impl, "__name__", repr(impl))))


def not_provided(what: str) -> NoReturn:
    """Skip the running check as "not provided" (the report shows it so, never as a pass)."""
    __tracebackhide__ = True
    pytest.skip(f"{NOT_PROVIDED}: {what}")


def accepts_keyword(fn: Callable[..., Any], option: str) -> bool:
    """Whether ``fn`` takes the keyword ``option`` (by its signature; unknown: assume yes)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature: assume it is there
        return True
    if option in params:
        return params[option].kind is not inspect.Parameter.POSITIONAL_ONLY
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def require(impl: Any, name: str, *options: str) -> Any:
    """Return ``impl.<name>``, or skip as "not provided" if it or an option is missing.

    Parameters
    ----------
    impl : object
        The implementation under test (the ``impl`` fixture).
    name : str
        A SPEC section 1 name, e.g. ``"softmax"`` or ``"SoftmaxLayer"``.
    *options : str
        Keyword options the check uses (``"where"``, ``"temperature"``, ...). For a class
        they are looked up in ``__init__``.

    Returns
    -------
    object
        The function or class.
    """
    __tracebackhide__ = True
    fn = getattr(impl, name, None)
    if fn is None:
        not_provided(f"{impl_name(impl)} has no {name}")
    target = fn.__init__ if inspect.isclass(fn) else fn
    missing = [opt for opt in options if not accepts_keyword(target, opt)]
    if missing:
        not_provided(f"{impl_name(impl)}.{name} has no option {', '.join(missing)}")
    return fn


def declares_convention(impl: Any, key: str) -> bool:
    """Whether ``impl`` declares it follows the documented convention ``key``."""
    if key not in CONVENTIONS:
        raise KeyError(f"unknown convention {key!r}; known: {sorted(CONVENTIONS)}")
    return key in getattr(impl, "__conformance_conventions__", {})


def convention_reason(impl: Any, key: str) -> str:
    """The skip reason the report reads as "different convention"."""
    declared = getattr(impl, "__conformance_conventions__", {}).get(key, CONVENTIONS[key])
    return f"{DIFFERENT_CONVENTION}: {impl_name(impl)} gives {declared} [{key}]"


@contextlib.contextmanager
def convention_difference(impl: Any, key: str) -> Iterator[None]:
    """Context for the assertions a documented peer convention ``key`` would break.

    If the block fails (AssertionError or one of the exceptions a peer raises instead of
    our result) and ``impl`` declares ``key``, the check is reported as
    "different convention"; otherwise the failure stands. Keep only the assertions that
    the convention affects inside the block.
    """
    __tracebackhide__ = True
    try:
        yield
    except Exception as exc:
        if declares_convention(impl, key):
            pytest.skip(f"{convention_reason(impl, key)} ({type(exc).__name__})")
        raise


def accepts_backend(impl: Any, backend: Any) -> str | None:
    """None if ``impl`` takes ``backend``'s arrays, else the reason it does not."""
    check = getattr(impl, "__conformance_accepts__", None)
    if check is None:
        return None
    result = check(backend)
    return None if result is None else str(result)


CROSS_ENTROPY_FUNCTIONS = (
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_with_grad:loss",
    "cross_entropy_with_grad:grad",
)
"""The cross-entropy functions the contract checks take, with the two outputs of
``cross_entropy_with_grad`` as functions of their own: each has the contract of the call it
stands for (``cross_entropy``, ``cross_entropy_backward``)."""


def cross_entropy_function(impl: Any, name: str, *options: str) -> Any:
    """``impl.<name>`` for a name of :data:`CROSS_ENTROPY_FUNCTIONS` (``require`` rules)."""
    __tracebackhide__ = True
    base, _, part = name.partition(":")
    f = require(impl, base, *options)
    if not part:
        return f
    index = 0 if part == "loss" else 1

    def one_output(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)[index]

    one_output.__name__ = name
    return one_output


def gives_gradient(name: str) -> bool:
    """Whether the function of :data:`CROSS_ENTROPY_FUNCTIONS` named ``name`` gives the
    gradient (else the loss)."""
    return name == "cross_entropy_backward" or name.endswith(":grad")
