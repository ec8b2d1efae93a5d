"""Which backends and implementations a run uses.

The rules, shared with nox and CI: ``--backend NAME`` (repeatable) or the environment
variable ``PORTABLE_SOFTMAX_BACKENDS=a,b`` select registered backends, ``--xp SPEC`` adds any
other namespace, ``--impl SPEC`` (repeatable) picks the implementations under test. A backend
that was asked for and cannot run is a usage error, so that a run can never pass green by
skipping everything; with no selection every registered backend is tried and the missing
ones are skipped with the reason.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from .backends import REGISTRY, Backend, BackendUnavailable, GenericBackend

ENV_BACKENDS = "PORTABLE_SOFTMAX_BACKENDS"
ENV_IMPL = "PORTABLE_SOFTMAX_IMPL"
ENV_XP = "PORTABLE_SOFTMAX_XP"
DEFAULT_IMPL = "portable_softmax"


class SelectionError(Exception):
    """An explicit request that cannot be honoured; conftest turns it into a usage error."""


@dataclass
class BackendSlot:
    """A backend in the run: usable, or skipped with ``reason``."""

    backend: Backend
    explicit: bool
    reason: str | None = None


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
        """Ids of all backends in the run, usable or not."""
        return [slot.backend.name for slot in self.backends]

    def slot(self, name: str) -> BackendSlot:
        """The slot of the backend called ``name``."""
        for slot in self.backends:
            if slot.backend.name == name:
                return slot
        raise KeyError(name)

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


def select_backends(requested: list[str] | None, xp_spec: str | None) -> list[BackendSlot]:
    """Resolve the backend selection; raise SelectionError for an explicit unusable one."""
    names = _split(requested) or _split([os.environ.get(ENV_BACKENDS, "")])
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
    return slots


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
