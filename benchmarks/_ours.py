"""Our rows: ``portable_softmax`` on each of its paths, thread counts and edge settings.

Every variant is the same public call under its settings: the thread count
(``ps.set_num_threads``), the path (``ps.use_path``) and the edge switch
(``_config.without_edge_handling``), entered before each timing sample and restored after it,
outside the timed loop, as PyTorch's thread count is (``Impl.enter``/``leave``). Entering them
inside the timed function instead cost about 5 us per call on the shared 2-core machine
(contextlib's generator machinery), a third of an (8, 10) softmax: that would have decided
the small-input target and the edge cost of small cases. So no variant pays a wrapper.

With path ``auto``, NumPy arrays go to the compiled numba kernels when
``portable_softmax._backends.numba`` and numba are importable, else to the pure NumPy
kernels; the rows that only make sense with numba say "not available" (with the reason)
without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from typing import Any, cast

from ._impl_base import Call, _HostOrCupy

NUMBA_BACKEND = "portable_softmax._backends.numba"


@dataclass(frozen=True)
class Variant:
    """One row of ours: which path, how many threads, with or without edge handling."""

    name: str
    path: str
    one_thread: bool = False
    edges: bool = True
    needs_numba: bool = False
    into_out: bool = False
    """Each call writes into one preallocated output (``out=``)."""
    meaning: str = ""

    @property
    def base(self) -> str | None:
        """For a no-edges row, the row whose edge cost it measures."""
        return None if self.edges else self.name.removesuffix("-noedges")


VARIANTS: tuple[Variant, ...] = (
    Variant("ours", "auto", meaning="path auto (numba when installed), default threads"),
    Variant("ours-1t", "auto", one_thread=True, needs_numba=True, meaning="path auto, 1 thread"),
    Variant(
        "ours-out-1t",
        "auto",
        one_thread=True,
        needs_numba=True,
        into_out=True,
        meaning="path auto, 1 thread, into a preallocated output (out=)",
    ),
    Variant("ours-numpy", "numpy", meaning="path numpy: the pure NumPy blocked kernels"),
    Variant("ours-generic", "generic", meaning="path generic: the portable array-API code"),
    Variant(
        "ours-noedges",
        "auto",
        edges=False,
        needs_numba=True,
        meaning="ours with edge handling off (the numba fast path's edge cost)",
    ),
    Variant(
        "ours-numpy-noedges",
        "numpy",
        edges=False,
        meaning="ours-numpy with edge handling off (the NumPy fast path's edge cost)",
    ),
)
BY_NAME = {v.name: v for v in VARIANTS}
_DETECT = object()
"""``Ours(numba=...)`` default: find out whether numba can be used."""
FAMILY = tuple(v.name for v in VARIANTS if v.edges)
"""The rows of ours that the main table shows (the no-edges rows only feed the edge cost)."""


def numba_unavailable() -> str | None:
    """None when the numba backend and numba are importable, else why not."""
    if importlib.util.find_spec("numba") is None:
        return 'numba is not installed (pip install "portable-softmax[numba]")'
    if importlib.util.find_spec(NUMBA_BACKEND) is None:
        return f"this portable_softmax has no numba backend ({NUMBA_BACKEND} not found)"
    return None


def auto_fast_paths() -> list[str]:
    """The fast paths that path ``auto`` tries for a NumPy float32 array, in order (the
    registry's backends for NumPy arrays whose libraries are installed)."""
    import numpy as np

    from portable_softmax import _dispatch

    names = _dispatch.path_names(np.ones((2, 2), np.float32))
    return [f"portable_softmax._backends.{name}" for name in names if name != "generic"]


class Ours(_HostOrCupy):
    """``portable_softmax`` as users call it, under one :class:`Variant`'s settings.

    ``numba`` is why numba cannot be used (None: it can; default: :func:`numba_unavailable`
    decides); variants that need it are then "not available" with that reason.
    """

    def __init__(
        self, xp_name: str = "numpy", variant: str = "ours", *, numba: object = _DETECT
    ) -> None:
        import portable_softmax as ps

        self.variant = BY_NAME[variant]
        self.name = variant
        self.backend = xp_name
        self.device = "gpu" if xp_name == "cupy" else "cpu"
        self.numba = numba_unavailable() if numba is _DETECT else cast("str | None", numba)
        self.set_threads = 1 if self.variant.one_thread else ps.get_num_threads()
        self.into_out = self.variant.into_out
        self._outputs: dict[tuple[Any, ...], Any] = {}
        # NumPy's own kernels run on one thread whatever the setting
        compiled = numba is None and self.variant.path == "auto"
        if xp_name != "numpy":
            self.threads = None
        else:
            self.threads = self.set_threads if compiled else 1
        self._settings = contextlib.ExitStack()

    def enter(self) -> None:
        import portable_softmax as ps
        from portable_softmax._config import without_edge_handling

        stack = self._settings
        stack.callback(ps.set_num_threads, ps.get_num_threads())
        ps.set_num_threads(self.set_threads)
        stack.enter_context(ps.use_path(self.variant.path))
        if not self.variant.edges:
            stack.enter_context(without_edge_handling())

    def leave(self) -> None:
        self._settings.close()

    def function(self, op: str) -> Call | None:
        import portable_softmax as ps

        if self.unavailable(op) is not None:
            return None
        if self.into_out:
            return self._into_out(op)
        if op == "forward":
            return lambda x: ps.softmax(x, axis=-1)
        if op == "backward":
            return lambda g, y: ps.softmax_backward(g, y, axis=-1)

        def xent(logits: Any, labels: Any) -> tuple[Any, Any]:
            return ps.cross_entropy_with_grad(logits, labels, axis=-1, reduction="mean")

        return xent

    def _output(self, like: Any) -> Any:
        """One preallocated output per shape and dtype, made (and touched) outside the
        timings: the first call, the untimed correctness check, allocates it."""
        import numpy as np

        key = (like.shape, like.dtype.str)
        out = self._outputs.get(key)
        if out is None:
            out = self._outputs[key] = np.zeros_like(like)
        return out

    def _into_out(self, op: str) -> Call:
        import portable_softmax as ps

        if op == "forward":
            return lambda x: ps.softmax(x, axis=-1, out=self._output(x))
        if op == "backward":
            return lambda g, y: ps.softmax_backward(g, y, axis=-1, out=self._output(y))
        return lambda logits, labels: ps.cross_entropy_with_grad(
            logits, labels, axis=-1, reduction="mean", out=self._output(logits)
        )

    def served_by(self, op: str, arrays: tuple[Any, ...]) -> str | None:
        """The registry's choice for this call under this row's settings: the backend's
        name, with numba's thread decision (``parallel``/``serial``)."""
        from portable_softmax import _dispatch
        from portable_softmax._lib._describe import describe, describe_cross_entropy

        if op == "xent":
            call: Any = describe_cross_entropy(
                "cross_entropy_with_grad", arrays[0], arrays[1], axis=-1, reduction="mean",
                weight=None, ignore_index=None, label_smoothing=0.0, where=None, validate=None,
            )  # fmt: skip
        else:
            function, primary, vector = (
                ("softmax", arrays[0], None) if op == "forward"
                else ("softmax_backward", arrays[1], arrays[0])
            )  # fmt: skip
            call = describe(function, primary, vector, axis=-1, where=None, temperature=None)
        self.enter()
        try:
            backend = _dispatch.serving(call)
            if backend is None:
                return "generic"
            if backend.name != "numba":
                return backend.name
            from portable_softmax._backends.numba._threads import parallel

            x = call.x
            rows = x.size // x.shape[-1]
            return "numba, parallel" if parallel(x.nbytes, rows) else "numba, serial"
        finally:
            self.leave()

    def unavailable(self, op: str) -> str | None:
        import portable_softmax as ps

        if self.variant.needs_numba and self.numba is not None:
            return self.numba
        if not self.variant.edges and op == "backward":
            # softmax_backward takes y, a softmax output, and no fast path checks it
            return "no fast path has edge handling in the backward to switch off"
        if op == "xent" and not hasattr(ps, "cross_entropy_with_grad"):
            return "portable_softmax has no cross_entropy_with_grad yet"
        return None


def build_ours(xp_name: str) -> tuple[list[Ours], list[str]]:
    """Our rows for ``xp_name`` and notes (numba's absence); CuPy gets only ``ours``."""
    if xp_name != "numpy":
        return [Ours(xp_name)], []
    reason = numba_unavailable()
    notes = [] if reason is None else [f"numba rows not available: {reason}"]
    return [Ours(xp_name, v.name, numba=reason) for v in VARIANTS], notes
