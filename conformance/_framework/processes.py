"""Python in a subprocess, for the checks that need a fresh interpreter (what importing
imports, what a new process compiles or loads, an install that cannot be written to)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
"""The repository: the folder ``portable_softmax`` and ``conformance`` are imported from."""


def run_python(
    code: str,
    *,
    paths: Sequence[str | Path] = (ROOT,),
    set_env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    cwd: str | Path = ROOT,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``python -c code`` with ``paths`` first on ``PYTHONPATH``, the environment without the
    ``unset`` variables and with ``set_env``; its output captured as text, its exit code left
    to the caller to check."""
    env = {key: value for key, value in os.environ.items() if key not in set(unset)}
    env.update(set_env or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*map(str, paths), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
