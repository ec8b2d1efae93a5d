"""Installs as users have them (portable_softmax only, not a peer check).

A read-only install (a container image, a shared site-packages) with no writable home
directory and no ``NUMBA_CACHE_DIR`` leaves numba nowhere to cache its kernels: calls must
still work, compiling in memory, with at most one warning that names ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

import portable_softmax
from conformance._framework.processes import run_python

pytestmark = pytest.mark.api

_SCRIPT = """
import json, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import portable_softmax as ps
    y = ps.softmax(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    loss = ps.cross_entropy(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([2, 0]))
    grad = ps.cross_entropy_backward(np.array([[1.0, 2.0, 3.0]]), np.array([1]))
print(json.dumps({
    "file": ps.__file__,
    "softmax": y.tolist(),
    "loss": float(loss),
    "grad": grad.tolist(),
    "warnings": [str(w.message) for w in caught],
}))
"""


def _read_only_copy(destination: Path) -> Path:
    """The installed package copied under ``destination``, with no write permission.

    Root ignores permission bits, so there a ``__pycache__`` *file* in every package folder
    also stands in for the read-only file system: no cache folder can be made below it.
    """
    source = Path(portable_softmax.__file__).parent
    package = destination / "portable_softmax"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    folders = [package, *(p for p in package.rglob("*") if p.is_dir())]
    if os.geteuid() == 0:
        for folder in folders:
            (folder / "__pycache__").write_text("a read-only file system\n")
    for path in [*package.rglob("*"), package]:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return package


def test_read_only_install_without_a_writable_home(tmp_path: Path) -> None:
    site = tmp_path / "site"
    package = _read_only_copy(site)
    try:
        run = run_python(
            _SCRIPT,
            paths=(site,),
            set_env={"HOME": os.devnull, "PYTHONDONTWRITEBYTECODE": "1"},  # no writable home
            unset=("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PORTABLE_SOFTMAX_PATH"),
            cwd=tmp_path,
        )
    finally:
        for path in [package, *package.rglob("*")]:  # let pytest remove its temp folder
            path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).parent == package, "the copy was not the package imported"
    # independent values: softmax([1, 2, 3]) and the cross-entropy of its worked example
    row = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219]
    for got in result["softmax"]:
        assert got == pytest.approx(row, rel=1e-12)
    assert result["loss"] == pytest.approx(1.4076059644443801, rel=1e-12)
    (grad,) = result["grad"]
    assert grad == pytest.approx([row[0], row[1] - 1.0, row[2]], rel=1e-12, abs=1e-15)
    cache_warnings = [m for m in result["warnings"] if "NUMBA_CACHE_DIR" in m]
    if importlib.util.find_spec("numba") is None:
        assert result["warnings"] == []
    else:
        assert len(cache_warnings) == 1, result["warnings"]
        assert len(result["warnings"]) == 1, result["warnings"]
