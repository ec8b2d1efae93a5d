"""The public functions' signatures: keyword-only options, and the error for options given
by position (``softmax(x, 1)``), which names the keyword to use."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["extra_positional", "keyword_names", "keyword_options"]


def keyword_names(function: Callable[..., Any]) -> str:
    """The keyword-only options of ``function``, in its signature's order, for messages."""
    parameters = inspect.signature(function).parameters.values()
    return ", ".join(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def extra_positional(
    function: Callable[..., Any], extra: tuple[object, ...], name: str | None = None
) -> TypeError:
    """The error for options passed by position (``softmax(x, 1)``): they are keywords.
    The options are read off ``function``'s signature; ``name`` is the one users call it by
    (default: the function's own)."""
    name = name or function.__name__
    keywords = keyword_names(function)
    given = ", ".join(repr(value) for value in extra)
    first = keywords.split(",")[0].strip()
    if "axis" in keywords and (extra[0] is None or isinstance(extra[0], (int, tuple))):
        first = "axis"  # what an int in that place almost always means
    return TypeError(
        f"{name}() takes its options by keyword only, but got {len(extra)} positional "
        f"argument(s) too many ({given}); pass them by name, e.g. {name}(..., "
        f"{first}={extra[0]!r}) (options: {keywords})"
    )


Function = TypeVar("Function", bound=Callable[..., Any])


def keyword_options(function: Function) -> Function:
    """Leave the catch-alls (``*extra``, ``**unknown``, which exist only to answer
    ``softmax(x, 1)`` or ``SoftmaxLayer(dim=1)`` with a clear error) out of the public
    signature."""
    signature = inspect.signature(function)
    catch_all = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    kept = [p for p in signature.parameters.values() if p.kind not in catch_all]
    function.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    return function
