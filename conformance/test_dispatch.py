"""The dispatch layer and its switches (portable_softmax only, not a peer check).

Each backend-path slot proves that its path really serves the common calls (so a fast-path
run cannot silently be a generic one), that ``import portable_softmax`` imports no array
library, and that the path and thread switches reject bad values with a clear error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from conformance._framework.backends import Backend
from portable_softmax import _dispatch

pytestmark = pytest.mark.api

# One plain call per public function: float32 rows reduced over the last axis.
_ROWS = np.linspace(-3.0, 3.0, 24).reshape(4, 6)
_LABELS = np.array([0, 5, 2, 3])


def _calls(backend: Backend) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    x = backend.asarray(_ROWS, "float32")
    y = backend.asarray(np.exp(_ROWS) / np.exp(_ROWS).sum(-1, keepdims=True), "float32")
    logp = backend.asarray(np.log(backend.to_numpy(y)), "float32")
    labels = backend.asarray(_LABELS, backend.int_dtype())
    plain = {"axis": -1, "where": None, "temperature": None}
    xent = {
        "axis": -1,
        "reduction": "mean",
        "weight": None,
        "ignore_index": None,
        "label_smoothing": 0.0,
        "where": None,
        "validate": None,
    }
    return {
        "softmax": ((x,), plain),
        "log_softmax": ((x,), plain),
        "logsumexp": ((x,), {"axis": -1, "where": None, "keepdims": False}),
        "softmax_backward": ((x, y), plain),
        "softmax_jvp": ((x, y), plain),
        "log_softmax_backward": ((x, logp), plain),
        "log_softmax_jvp": ((x, logp), plain),
        "cross_entropy": ((x, labels), xent),
        "cross_entropy_backward": ((x, labels), {**xent, "grad": None}),
    }


# What each fast path is documented to take of the plain calls above.
_TAKES = {
    "numpy": {
        "softmax",
        "log_softmax",
        "logsumexp",
        "softmax_backward",
        "softmax_jvp",
        "cross_entropy",
        "cross_entropy_backward",
    },
}


def test_path_serves_the_plain_calls(backend: Backend, path: str) -> None:
    calls = _calls(backend)
    with ps.use_path(path):
        served = _dispatch.fast_paths(calls["softmax"][0][0])
    if path == "generic":
        assert served == (), f"use_path('generic') still dispatches to {served}"
        return
    assert [m.__name__ for m in served] == [f"portable_softmax._backends.{path}"]
    takes = _TAKES.get(path, set(calls))
    for name, (arrays, options) in calls.items():
        out = getattr(served[0], name)(*arrays, **options)
        if name in takes:
            assert out is not NotImplemented, f"the {path} fast path declined a plain {name}"


def test_unknown_libraries_take_the_generic_path() -> None:
    class Foreign:
        pass

    assert _dispatch.fast_paths(Foreign()) == ()


def test_import_loads_no_array_library() -> None:
    code = (
        "import sys, portable_softmax; "
        "loaded = [m for m in ('numpy', 'numba', 'cupy', 'torch', 'jax', 'dask') "
        "if m in sys.modules]; assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_root(), env=_env())


def test_bad_path_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"path must be one of .*generic"), ps.use_path("gpu"):
        pass
    env = {**_env(), "PORTABLE_SOFTMAX_PATH": "fastest"}
    run = subprocess.run(
        [sys.executable, "-c", "import portable_softmax"],
        cwd=_root(),
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "PORTABLE_SOFTMAX_PATH must be one of" in run.stderr


def test_use_path_restores_the_setting() -> None:
    from portable_softmax._config import current_path

    before = current_path()
    with ps.use_path("generic"):
        assert current_path() == "generic"
    assert current_path() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_count_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="threads must be a positive int"):
        ps.set_num_threads(bad)  # type: ignore[arg-type]


def test_dask_blocks_run_their_kernels_on_one_thread() -> None:
    """Dask's workers are the parallelism: inside a block the kernels get one thread, in that
    thread only, and the process-wide setting is untouched."""
    import threading

    from portable_softmax import _config

    before = ps.get_num_threads()
    ps.set_num_threads(2)
    try:
        seen: list[int] = []
        with _config.one_thread():
            seen.append(_config.kernel_threads())
            other = threading.Thread(target=lambda: seen.append(_config.kernel_threads()))
            other.start()
            other.join()
            assert ps.get_num_threads() == 2
        seen.append(_config.kernel_threads())
        assert seen == [1, 2, 2]
    finally:
        ps.set_num_threads(before)


def _root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PORTABLE_SOFTMAX_PATH", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_root(), env.get("PYTHONPATH")]))
    return env
