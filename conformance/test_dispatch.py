"""The dispatch layer: the registry, its switches and the README's path table (portable_softmax
only, not a peer check).

The expected paths below are written by hand, case by case, so that these tests check the
registry (``portable_softmax._dispatch``) rather than restate it. Each backend-path slot also
proves that its path really serves the common calls (so a fast-path run cannot silently be a
generic one). ``import portable_softmax`` must import no array library, and the path and
thread switches reject bad values with a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import portable_softmax as ps
from conformance._framework.backends import Backend
from conformance._framework.processes import run_python
from portable_softmax import _dispatch
from portable_softmax._lib._call import CROSS_ENTROPY, DERIVATIVES, FORWARD
from portable_softmax._lib._describe import describe, describe_cross_entropy
from portable_softmax._lib._labels import check_labels

pytestmark = pytest.mark.api

PUBLIC = (*FORWARD, *DERIVATIVES, *CROSS_ENTROPY)
_ROWS = np.linspace(-3.0, 3.0, 24).reshape(4, 6)
_LABELS = np.array([0, 5, 2, 3])
_VECTORS = {"softmax_backward", "softmax_jvp", "log_softmax_backward", "log_softmax_jvp"}


def _described(name: str, x: Any, other: Any = None, **options: Any) -> Any:
    """The described call of ``name`` on ``x`` (and ``other``: labels or the vector)."""
    if name in CROSS_ENTROPY:
        return check_labels(describe_cross_entropy(name, x, other, **options))
    if name in _VECTORS:
        return describe(name, x, other if other is not None else x, names=("y", "grad"),
                        axis=options.get("axis", -1), where=options.get("where"),
                        temperature=options.get("temperature"))  # fmt: skip
    return describe(name, x, axis=options.get("axis", -1), where=options.get("where"),
                    temperature=options.get("temperature"))  # fmt: skip


def _ce(**changes: Any) -> dict[str, Any]:
    options = {"axis": -1, "reduction": "mean", "weight": None, "ignore_index": None,
               "label_smoothing": 0.0, "where": None, "validate": None}  # fmt: skip
    return {**options, **changes}


def _served(call: Any, path: str = "auto") -> str:
    backend = _dispatch.serving(call, path)
    return "generic" if backend is None else backend.name


_SETTINGS = ("auto", "numba", "numpy", "generic", "cupy", "dask", "torch")

# What serves a plain call (float32 rows along the last axis) of each function, per path
# setting, for each array library with backends.
_NUMBA_ALL = dict.fromkeys(PUBLIC, "numba")
_NUMPY_TAKES = {"softmax", "log_softmax", "logsumexp", "softmax_backward", "softmax_jvp",
                *CROSS_ENTROPY}  # fmt: skip
_TORCH_TAKES = {"softmax", "log_softmax", "logsumexp", "cross_entropy"}
_PLAIN: dict[str, dict[str, dict[str, str]]] = {
    "numpy": {
        "auto": _NUMBA_ALL,
        "numba": _NUMBA_ALL,
        "numpy": {f: "numpy" if f in _NUMPY_TAKES else "generic" for f in PUBLIC},
        "generic": dict.fromkeys(PUBLIC, "generic"),
        "cupy": dict.fromkeys(PUBLIC, "generic"),
        "dask": dict.fromkeys(PUBLIC, "generic"),
    },
    "dask": {path: dict.fromkeys(PUBLIC, "dask") for path in _SETTINGS},
    "cupy": {
        "auto": dict.fromkeys(PUBLIC, "generic"),
        "cupy": dict.fromkeys(PUBLIC, "cupy"),
        "generic": dict.fromkeys(PUBLIC, "generic"),
    },
    # the autograd nodes serve the functions a user differentiates through
    "torch": {
        path: {f: "torch" if f in _TORCH_TAKES else "generic" for f in PUBLIC}
        for path in ("auto", "torch")
    },
}


@pytest.mark.parametrize("name", PUBLIC)
def test_plain_calls_on_numpy_arrays(name: str) -> None:
    x = _ROWS.astype(np.float32)
    other = _LABELS if name in CROSS_ENTROPY else None
    options = _ce() if name in CROSS_ENTROPY else {}
    call = _described(name, x, other, **options)
    for path, expected in _PLAIN["numpy"].items():
        want = expected[name]
        if want == "numba" and _dispatch.NUMBA.load() is None:
            want = "numpy" if name in _NUMPY_TAKES else "generic"
        assert _served(call, path) == want, f"{name} under path {path}"


def test_dask_serves_every_dask_call_whatever_the_setting() -> None:
    da = pytest.importorskip("dask.array")
    x = da.from_array(_ROWS, chunks=(2, 3))
    for name in PUBLIC:
        other = da.from_array(_LABELS, chunks=2) if name in CROSS_ENTROPY else None
        call = _described(name, x, other, **(_ce() if name in CROSS_ENTROPY else {}))
        for path, expected in _PLAIN["dask"].items():
            assert _served(call, path) == expected[name]


def test_cupy_kernels_are_not_automatic() -> None:
    """Until a GPU run verifies them, CuPy arrays take the kernels only when asked."""
    assert not _dispatch.CUPY.serves("auto")
    assert _dispatch.CUPY.serves("cupy")
    assert not _dispatch.CUPY.serves("generic")
    assert _dispatch.DASK.serves("generic")  # a container: its blocks follow the setting


# Layouts and options, with what serves them under "auto" (numba installed) and "numpy".
_CASES: list[tuple[str, str, Any, Any, dict[str, Any], str, str]] = [
    # id, function, x, other, options, auto, numpy
    ("float64", "softmax", _ROWS, None, {}, "numba", "numpy"),
    ("float16", "softmax", _ROWS.astype(np.float16), None, {}, "generic", "generic"),
    ("int64", "softmax", _ROWS.astype(np.int64), None, {}, "generic", "generic"),
    ("axis 0", "softmax", _ROWS, None, {"axis": 0}, "generic", "generic"),
    ("axis None 2-D", "softmax", _ROWS, None, {"axis": None}, "numba", "numpy"),
    ("axis None 1-D", "log_softmax", _ROWS[0], None, {"axis": None}, "numba", "numpy"),
    ("axis ()", "softmax", _ROWS, None, {"axis": ()}, "generic", "generic"),
    ("trailing axes 3-D", "softmax", _ROWS.reshape(2, 3, 4), None, {"axis": (1, 2)}, "numba",
     "numpy"),
    ("axes out of order", "softmax", _ROWS.reshape(2, 3, 4), None, {"axis": (2, 1)}, "generic",
     "generic"),
    ("strided 2-D", "softmax", _ROWS[:, ::2], None, {}, "numpy", "numpy"),
    ("transposed", "softmax", _ROWS.T, None, {}, "numpy", "numpy"),
    ("strided 3-D", "softmax", _ROWS.reshape(2, 3, 4)[:, :, ::2], None, {}, "generic",
     "generic"),
    ("where", "softmax", _ROWS, None, {"where": _ROWS > 0}, "generic", "generic"),
    ("float temperature", "softmax", _ROWS, None, {"temperature": 2.0}, "numba", "numpy"),
    ("array temperature", "softmax", _ROWS, None, {"temperature": np.ones((4, 1))},
     "generic", "generic"),
    ("empty", "softmax", np.ones((0, 6)), None, {}, "generic", "generic"),
    ("0-d", "softmax", np.array(1.0), None, {"axis": None}, "generic", "generic"),
    ("vector dtype differs", "softmax_backward", _ROWS, _ROWS.astype(np.float32), {},
     "generic", "generic"),
    ("log_softmax VJP", "log_softmax_backward", _ROWS, _ROWS, {}, "numba", "generic"),
    ("labels", "cross_entropy", _ROWS, _LABELS, _ce(), "numba", "numpy"),
    ("uint8 labels", "cross_entropy", _ROWS, _LABELS.astype(np.uint8), _ce(), "numba",
     "numpy"),
    ("uint64 labels", "cross_entropy", _ROWS, _LABELS.astype(np.uint64), _ce(), "generic",
     "generic"),
    ("probabilities", "cross_entropy", _ROWS, np.full((4, 6), 1 / 6), _ce(), "numba",
     "generic"),
    ("class axis 0", "cross_entropy", _ROWS, np.array([0, 1, 2, 3, 0, 1]), _ce(axis=0),
     "generic", "generic"),
    ("class mask", "cross_entropy", _ROWS, _LABELS, _ce(where=np.ones(6, bool)), "generic",
     "generic"),
    ("weights, smoothing, ignore_index", "cross_entropy_backward", _ROWS, _LABELS,
     _ce(weight=np.ones(6), label_smoothing=0.1, ignore_index=5), "numba", "numpy"),
    ("strided logits", "cross_entropy", _ROWS[:, ::2], _LABELS % 3, _ce(), "numpy", "numpy"),
]  # fmt: skip


@pytest.mark.parametrize("case", _CASES, ids=[case[0] for case in _CASES])
def test_which_path_serves_each_layout(case: tuple[Any, ...]) -> None:
    _, name, x, other, options, auto, numpy = case
    call = _described(name, x, other, **options)
    if _dispatch.NUMBA.load() is None:
        auto = numpy
    assert _served(call, "auto") == auto
    assert _served(call, "numpy") == numpy
    assert _served(call, "generic") == "generic"


def test_every_backend_has_the_kernels_it_declares() -> None:
    internal = {"row_statistics", "rescale_rows"}
    for backend in _dispatch.BACKENDS:
        assert set(backend.takes) <= {*PUBLIC, *internal}, backend.name
        if backend.library != "cupy":
            module = backend.load()
            if module is None:
                continue
            for name in backend.takes:
                assert callable(getattr(module, name, None)), f"{backend.name}.{name}"


def test_the_readme_path_table_is_the_registry() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert _dispatch.path_table() in readme, (
        "README.md's path table differs from the registry; paste "
        "portable_softmax._dispatch.path_table() into it"
    )


def test_path_serves_the_plain_calls(backend: Backend, path: str) -> None:
    """Through the public functions: the slot's path serves every plain call it declares."""
    x = backend.asarray(_ROWS, "float32")
    labels = backend.asarray(_LABELS, backend.int_dtype())
    assert path in _dispatch.path_names(x)
    for name in PUBLIC:
        other = labels if name in CROSS_ENTROPY else None
        call = _described(name, x, other, **(_ce() if name in CROSS_ENTROPY else {}))
        want = _PLAIN.get(backend.name, {}).get(path, {}).get(name, "generic")
        assert _served(call, path) == want, f"{name} on {backend.name}-{path}"


def test_unknown_libraries_take_the_generic_path() -> None:
    class Foreign:
        pass

    assert _dispatch.path_names(Foreign()) == ("generic",)


def test_import_loads_no_array_library() -> None:
    code = (
        "import sys, portable_softmax; "
        "loaded = [m for m in ('numpy', 'numba', 'cupy', 'torch', 'jax', 'dask') "
        "if m in sys.modules]; assert not loaded, loaded"
    )
    run = run_python(code, unset=("PORTABLE_SOFTMAX_PATH",))
    assert run.returncode == 0, run.stderr


def test_bad_path_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"path must be one of .*generic"), ps.use_path("gpu"):
        pass
    run = run_python("import portable_softmax", set_env={"PORTABLE_SOFTMAX_PATH": "fastest"})
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
