"""Which backends and implementations a run uses.

The rules, shared with nox and CI: ``--backend NAME`` (repeatable) or the environment
variable ``PORTABLE_SOFTMAX_BACKENDS=a,b`` select registered backends, ``--xp SPEC`` adds any
other namespace, ``--impl SPEC`` (repeatable) picks the implementations under test. Each
backend runs once per portable_softmax path its arrays have (``numpy-numba``,
``numpy-numpy``, ``numpy-generic``; ``torch-generic``), or on those that ``--path`` (or
``PORTABLE_SOFTMAX_PATH``) names. A backend
that was asked for and cannot run is a usage error, so that a run can never pass green by
skipping everything; with no selection every registered backend is tried and the missing
ones are skipped with the reason.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .backends import REGISTRY, Backend, BackendUnavailable, GenericBackend

ENV_BACKENDS = "PORTABLE_SOFTMAX_BACKENDS"
ENV_IMPL = "PORTABLE_SOFTMAX_IMPL"
ENV_XP = "PORTABLE_SOFTMAX_XP"
ENV_PATH = "PORTABLE_SOFTMAX_PATH"
DEFAULT_IMPL = "portable_softmax"


class SelectionError(Exception):
    """An explicit request that cannot be honoured; conftest turns it into a usage error."""


@dataclass
class BackendSlot:
    """A backend on one of portable_softmax's paths in the run: usable, or skipped with
    ``reason``. Its id (``numpy-numba``, ``torch-generic``) appears in test ids."""

    backend: Backend
    explicit: bool
    reason: str | None = None
    path: str = "generic"

    @property
    def id(self) -> str:
        return f"{self.backend.name}-{self.path}"


@dataclass
class ImplSlot:
    """An implementation under test, with the short id used in test ids and the report."""

    spec: str
    obj: Any
    id: str


@dataclass
class Selection:
    """Everything conftest needs to parametrise the ``backend`` and ``impl`` fixtures."""

    backends: list[BackendSlot] = field(default_factory=list)
    impls: list[ImplSlot] = field(default_factory=list)

    def backend_ids(self) -> list[str]:
        """Ids of all (backend, path) slots in the run, usable or not."""
        return [slot.id for slot in self.backends]

    def slot(self, slot_id: str) -> BackendSlot:
        """The slot with id ``slot_id`` (``backend-path``)."""
        for slot in self.backends:
            if slot.id == slot_id:
                return slot
        raise KeyError(slot_id)

    def impl(self, impl_id: str) -> ImplSlot:
        """The slot of the implementation with id ``impl_id``."""
        for slot in self.impls:
            if slot.id == impl_id:
                return slot
        raise KeyError(impl_id)


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def requested_backend_names(requested: list[str] | None) -> list[str]:
    """The backend names asked for (``--backend``, else the environment), none = all."""
    return _split(requested) or _split([os.environ.get(ENV_BACKENDS, "")])


def select_backends(
    requested: list[str] | None, xp_spec: str | None, paths: list[str] | None = None
) -> list[BackendSlot]:
    """Resolve the backend selection, one slot per backend and path; raise SelectionError
    for an explicit unusable one."""
    names = requested_backend_names(requested)
    xp_spec = xp_spec or os.environ.get(ENV_XP) or None
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SelectionError(
            f"unknown backend(s) {unknown}; registered: {sorted(REGISTRY)} "
            "(use --xp SPEC for any other array namespace)"
        )
    explicit = bool(names) or xp_spec is not None
    slots: list[BackendSlot] = []
    for name in dict.fromkeys(names) if explicit else REGISTRY:
        slots.append(BackendSlot(REGISTRY[name](), explicit=explicit))
    if xp_spec is not None:
        slots.append(BackendSlot(GenericBackend(xp_spec), explicit=True))
    failures: list[str] = []
    for slot in slots:
        try:
            slot.backend.load()
        except BackendUnavailable as exc:
            slot.reason = f"{slot.backend.name} unavailable: {exc}"
            if slot.explicit:
                failures.append(slot.reason)
    if failures:
        raise SelectionError(
            "backend(s) asked for explicitly cannot run here (an explicit request is never "
            "skipped):\n  " + "\n  ".join(failures)
        )
    requested = _split(paths)
    wanted = requested or _split([os.environ.get(ENV_PATH, "").strip().lower()])
    expanded = [each for slot in slots for each in _per_path(slot, wanted)]
    missing = [p for p in requested if all(slot.path != p for slot in expanded)]
    if missing:
        have = sorted({s.id for s in expanded})
        raise SelectionError(
            f"--path {','.join(missing)}: no backend in this run has that path (the slots are "
            f"{', '.join(have)}); install what it needs (numba: pip install numba) or drop it"
        )
    return expanded


def backend_paths(backend: Backend) -> list[str]:
    """portable_softmax's paths for the backend's arrays: its fast paths, then generic."""
    from portable_softmax import _dispatch

    sample = backend.asarray(np.zeros(2), "float32")
    return list(_dispatch.path_names(sample))


def _per_path(slot: BackendSlot, wanted: list[str]) -> list[BackendSlot]:
    """The slot once per path in ``wanted`` that its arrays have (every path when ``wanted``
    is empty or ``auto``); a backend with none of them runs on the generic path, as
    ``PORTABLE_SOFTMAX_PATH`` would serve it."""
    if slot.reason:
        return [slot]
    available = backend_paths(slot.backend)
    if not wanted or wanted == ["auto"]:
        chosen = available
    else:
        chosen = [path for path in available if path in wanted] or ["generic"]
    return [replace(slot, path=path) for path in chosen]


def load_impl(spec: str) -> Any:
    """Import ``module`` or ``module:attribute`` and return the object it names."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise SelectionError(f"--impl {spec}: cannot import {module_name!r}: {exc}") from exc
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise SelectionError(f"--impl {spec}: {module_name} has no {attr!r}") from exc
    return obj


def select_impls(requested: list[str] | None) -> list[ImplSlot]:
    """Resolve the implementations under test (default: portable_softmax)."""
    specs = _split(requested) or _split([os.environ.get(ENV_IMPL, "")]) or [DEFAULT_IMPL]
    slots: list[ImplSlot] = []
    for spec in dict.fromkeys(specs):
        obj = load_impl(spec)
        impl_id = str(getattr(obj, "__conformance_name__", spec))
        slots.append(ImplSlot(spec=spec, obj=obj, id=impl_id))
    return slots
