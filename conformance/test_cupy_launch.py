"""The pure-Python side of the CuPy kernels, checked on the CPU (no GPU, no CuPy).

Launch plans over row lengths, dtypes and device properties; the variant choice; vector
alignment; the list of template instantiations against ``kernels.cu``; which calls the
registry hands to the kernels, and that only the path setting ``cupy`` does; that the backend
imports without CuPy; the compile check's command line. Runs once, in the NumPy
session of the suite. What needs a GPU (the numbers the kernels give) is checked by
``benchmarks/gpu_run.sh`` on a GPU machine, not here.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance._framework.processes import run_python
from portable_softmax import _dispatch
from portable_softmax._backends.cupy import _compile_check, _launch
from portable_softmax._backends.cupy._launch import DeviceProperties, plan
from portable_softmax._dispatch import CUPY
from portable_softmax._lib._call import (
    CROSS_ENTROPY,
    DERIVATIVES,
    FORWARD,
    FUNCTIONS,
    Call,
    CrossEntropyCall,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (ROOT / "portable_softmax" / "_backends" / "cupy" / "kernels.cu").read_text()


@pytest.fixture(autouse=True)
def _numpy_session_only(request: pytest.FixtureRequest) -> None:
    from conformance.conftest import _SELECTION

    if all(s.backend.name != "numpy" for s in request.config.stash[_SELECTION].backends):
        pytest.skip("pure-Python checks of the CuPy kernels run in the numpy session only")


H200 = DeviceProperties(132, 1024, 48 * 1024, 227 * 1024, 32)
TURING = DeviceProperties(40, 1024, 48 * 1024, 64 * 1024, 32)
SMALL = DeviceProperties(1, 256, 16 * 1024, 16 * 1024, 32)
DEVICES = {"h200": H200, "turing": TURING, "small": SMALL}
LENGTHS = [1, 2, 7, 31, 32, 33, 100, 1000, 1024, 1025, 2048, 4096, 4097, 8192, 16384, 16385]
LENGTHS += [65536, 262144, 2**31 - 1]
ALIGNED = [0x7F0000000000, 0x7F0000000100]


def test_instantiations_cover_every_op_dtype_and_variant() -> None:
    names = _launch.name_expressions()
    assert len(names) == len(set(names)) == 3 * 4 * (3 + 3 + 2) + 4
    for family, op in _launch.FUNCTIONS.values():
        for dtype in _launch.DTYPES:
            for variant in _launch.VARIANTS:
                assert _launch.name_expression(family, variant, dtype, op) in names
    for dtype, spec in _launch.DTYPES.items():
        assert _launch.denominator_expression(dtype) == f"ps_xent_denominator<{spec.ctype}>"


@pytest.mark.parametrize("name", _launch.name_expressions())
def test_every_instantiation_names_a_kernel_template_of_the_source(name: str) -> None:
    kernel, args = re.fullmatch(r"(\w+)<(.+)>", name).groups()  # type: ignore[union-attr]
    assert re.search(rf"__global__ void __launch_bounds__\(\w+\)\s+{kernel}\(", SOURCE), kernel
    assert args.split(", ")[0] in {d.ctype for d in _launch.DTYPES.values()}


def test_block_limits_match_the_launch_bounds_of_the_source() -> None:
    defines = dict(re.findall(r"#define (PS_\w+_BLOCK) (\d+)", SOURCE))
    assert int(defines["PS_MAX_BLOCK"]) == _launch.MAX_BLOCK
    assert int(defines["PS_WARP_BLOCK"]) == _launch.WARP_BLOCK


def test_device_properties_from_cupy_attribute_names() -> None:
    attributes = {
        "MultiProcessorCount": 132,
        "MaxThreadsPerBlock": 1024,
        "MaxSharedMemoryPerBlock": 49152,
        "MaxSharedMemoryPerBlockOptin": 232448,
        "WarpSize": 32,
    }
    assert DeviceProperties.from_attributes(attributes) == H200
    del attributes["MaxSharedMemoryPerBlockOptin"]  # unknown: no opt-in beyond the default
    props = DeviceProperties.from_attributes(attributes)
    assert props.shared_memory_per_block_optin == props.shared_memory_per_block


@pytest.mark.parametrize("device", DEVICES.values(), ids=DEVICES.keys())
@pytest.mark.parametrize("dtype", _launch.DTYPES)
@pytest.mark.parametrize("function", _launch.FUNCTIONS)
def test_plans_are_valid_launches(device: DeviceProperties, dtype: str, function: str) -> None:
    family, op = _launch.FUNCTIONS[function]
    limit = _launch.on_chip_limit(family, dtype, device)
    for n in LENGTHS:
        for rows in (1, 3, 1000, 10**7):
            launch = plan(family, op, dtype, rows, n, device, ALIGNED)
            assert launch is not None, (n, rows)
            assert launch.name == _launch.name_expression(family, launch.variant, dtype, op)
            if n <= _launch.WARP_MAX:
                expected = "warp"
            elif n <= limit:
                expected = "block"
            else:
                expected = "online"
            assert launch.variant == expected, (n, limit)
            assert launch.block % device.warp_size == 0
            assert 32 <= launch.block <= device.max_threads_per_block
            most = _launch.WARP_BLOCK if launch.variant == "warp" else _launch.MAX_BLOCK
            assert launch.block <= most
            assert 1 <= launch.grid <= _launch.BLOCKS_PER_SM * device.multiprocessor_count
            if launch.variant == "warp":
                per_block = launch.block // 32
                assert (
                    launch.grid * per_block >= rows
                    or launch.grid == 32 * device.multiprocessor_count
                )
            else:
                assert launch.grid <= rows
            assert launch.shared_bytes <= max(
                device.shared_memory_per_block_optin, device.shared_memory_per_block
            ) - (0 if launch.variant == "warp" else _launch.STATIC_SHARED)
            assert launch.opt_in == (launch.shared_bytes > device.shared_memory_per_block)
            cached = 2 if family == "derivative" else 1
            row_bytes = cached * _launch.DTYPES[dtype].acc_itemsize * n
            if launch.variant == "online":
                assert launch.shared_bytes == 0
            else:
                assert launch.shared_bytes % row_bytes == 0


def test_on_chip_limits_follow_the_device() -> None:
    assert _launch.on_chip_limit("forward", "float32", H200) == 16384
    assert _launch.on_chip_limit("forward", "float16", H200) == 16384  # cached in float32
    assert _launch.on_chip_limit("derivative", "float64", H200) == (227 * 1024 - 1024) // 16
    assert _launch.on_chip_limit("derivative", "float64", TURING) == (65536 - 1024) // 16
    assert _launch.on_chip_limit("forward", "float32", SMALL) == (16384 - 1024) // 4


def test_turing_takes_16k_float32_rows_on_chip_only_in_the_forward_pass() -> None:
    forward = plan("forward", 0, "float32", 8, 16000, TURING, ALIGNED)
    backward = plan("derivative", 0, "float32", 8, 16000, TURING, ALIGNED)
    assert forward is not None
    assert forward.variant == "block"
    assert forward.opt_in
    assert backward is not None
    assert backward.variant == "online"


def test_warp_variant_packs_rows_into_the_default_shared_memory() -> None:
    launch = plan("forward", 0, "float32", 100, 1024, H200, ALIGNED)
    assert launch is not None
    assert (launch.block, launch.shared_bytes) == (256, 8 * 4096)
    launch = plan("derivative", 0, "float64", 100, 1024, H200, ALIGNED)
    assert launch is not None
    assert launch.block == 3 * 32
    assert not launch.opt_in


def test_block_threads_grow_with_the_row() -> None:
    sizes = [plan("forward", 0, "float32", 4, n, H200, ALIGNED) for n in (1025, 4096, 16384)]
    assert [s.block for s in sizes if s is not None] == [256, 512, 512]
    small = [plan("forward", 0, "float32", 4, n, SMALL, ALIGNED) for n in (1100, 2048, 8192)]
    assert [(s.variant, s.block) for s in small if s is not None] == [
        ("block", 256),  # 4 warps at least, then capped by the device's 256 threads
        ("block", 256),
        ("online", 256),
    ]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"warp_size": 64}, "the kernels' shuffles assume 32 lanes"),
        ({"max_threads_per_block": 64}, "fewer than 4 warps a block"),
    ],
)
def test_devices_the_kernels_do_not_fit_get_no_plan(changes: dict[str, int], why: str) -> None:
    device = DeviceProperties(**{**H200.__dict__, **changes})
    assert plan("forward", 0, "float32", 4, 100, device, ALIGNED) is None, why


def test_layouts_without_a_plan() -> None:
    assert plan("forward", 0, "float32", 0, 100, H200, ALIGNED) is None
    assert plan("forward", 0, "float32", 4, 0, H200, ALIGNED) is None
    assert plan("forward", 0, "float32", 4, 2**31, H200, ALIGNED) is None
    assert plan("forward", 3, "float32", 4, 100, H200, ALIGNED) is None
    assert plan("forward", 0, "int32", 4, 100, H200, ALIGNED) is None
    assert plan("softmax", 0, "float32", 4, 100, H200, ALIGNED) is None


@pytest.mark.parametrize("dtype", _launch.DTYPES)
def test_vector_loads_only_where_every_row_is_aligned(dtype: str) -> None:
    itemsize = _launch.DTYPES[dtype].itemsize
    per_vector = 16 // itemsize
    assert _launch.vectorizable(ALIGNED, 4 * per_vector, itemsize)
    assert not _launch.vectorizable(ALIGNED, 4 * per_vector + 1, itemsize)  # rows drift
    assert not _launch.vectorizable([ALIGNED[0] + itemsize], 4 * per_vector, itemsize)
    assert not _launch.vectorizable([*ALIGNED, ALIGNED[0] + 8], 4 * per_vector, itemsize)
    aligned = plan("forward", 0, dtype, 4, 64, H200, ALIGNED)
    shifted = plan("forward", 0, dtype, 4, 64, H200, [ALIGNED[0] + itemsize])
    assert aligned is not None
    assert aligned.vectorized
    assert shifted is not None
    assert not shifted.vectorized


# ---------------------------------------------------------------- which calls are taken
# The registry decides (``portable_softmax._dispatch.CUPY``), from the described call's
# metadata alone: these calls hold stand-ins that have a CuPy array's metadata and no values.


class _FakeFlags:
    def __init__(self, contiguous: bool) -> None:
        self.c_contiguous = contiguous


class FakeArray:
    """Metadata of a CuPy array: enough for the registry's tests, which read no values."""

    def __init__(self, shape: tuple[int, ...], dtype: Any = "float32", contiguous: bool = True):
        self.shape = shape
        self.ndim = len(shape)
        self.size = math.prod(shape)
        self.dtype = np.dtype(dtype)
        self.flags = _FakeFlags(contiguous)
        self._contiguous = contiguous

    def __repr__(self) -> str:  # stable test ids (pytest-xdist compares them across workers)
        layout = "" if self._contiguous else ", strided"
        return f"FakeArray({self.shape}, {self.dtype}{layout})"


def _call(
    function: str = "softmax",
    x: FakeArray | None = None,
    *,
    vector: FakeArray | None = None,
    axes: tuple[int, ...] | None = None,
    where: Any = None,
    temperature: Any = None,
) -> Call:
    """A described call on CuPy-like arrays, as ``_lib._describe`` builds it."""
    x = FakeArray((4, 5, 6)) if x is None else x
    if vector is None and function in DERIVATIVES:
        vector = FakeArray(x.shape, x.dtype)
    if axes is None:  # the last axis, normalised as _lib._describe does (none for 0-d)
        axes = (x.ndim - 1,) if x.ndim else ()
    return Call(function, np, "cupy", x, vector, axes, where, temperature, False, None, None)


def _xent(function: str = "cross_entropy", **changes: Any) -> CrossEntropyCall:
    """A described cross-entropy call on CuPy-like arrays, as ``_lib._describe`` builds it."""
    logits = changes.pop("logits", FakeArray((8, 10)))
    fields: dict[str, Any] = {
        "function": function,
        "xp": np,
        "library": "cupy",
        "logits": logits,
        "target": FakeArray((8,), "int64"),
        "weight": None,
        "grad": None,
        "where": None,
        "axes": (logits.ndim - 1,),
        "hard": True,
        "classes": logits.shape[-1],
        "reduction": "mean",
        "ignore_index": None,
        "smoothing": 0.0,
        "validate": None,
        "labels_checked": False,
        "loss_shape": (),
        "compute_dtype": None,
        "result_dtype": None,
    }
    fields.update(changes)
    return CrossEntropyCall(**fields)


def test_cupy_kernels_only_on_the_cupy_path_not_in_auto() -> None:
    assert CUPY.library == "cupy"
    assert not CUPY.automatic
    assert CUPY.serves("cupy")
    for setting in ("auto", "generic", "numba", "numpy", "dask"):
        assert not CUPY.serves(setting), setting
    call = _call()
    assert _dispatch.serving(call, "cupy") is CUPY
    assert _dispatch.serving(call, "auto") is None  # the generic path until a GPU verifies
    assert _dispatch.serving(call, "generic") is None
    numpy_call = call._replace(library="numpy", x=np.ones((4, 5, 6), np.float32))
    assert _dispatch.serving(numpy_call, "cupy") is None  # NumPy arrays are not CuPy's


def test_the_registry_takes_every_function_the_backend_has() -> None:
    assert set(CUPY.takes) == set(FUNCTIONS)
    module = CUPY.load()
    assert module is not None
    assert set(module.__all__) == set(CUPY.takes)
    for name in CUPY.takes:
        parameters = list(inspect.signature(getattr(module, name)).parameters.values())
        assert [(p.name, p.kind) for p in parameters] == [
            ("call", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ], name
    assert set(_launch.FUNCTIONS) == set(FUNCTIONS) - {"cross_entropy_with_grad"}


@pytest.mark.parametrize("function", [*FORWARD, *DERIVATIVES])
def test_registry_takes_contiguous_float_arrays_along_the_last_axis(function: str) -> None:
    taken = [
        _call(function),
        _call(function, FakeArray((6,))),
        _call(function, FakeArray((1, 1))),
        _call(function, temperature=0.5),
        *(_call(function, FakeArray((4, 6), dtype)) for dtype in ("float16", "float64")),
    ]
    if function != "logsumexp":
        taken.append(_call(function, FakeArray((4, 6), "float64"), temperature=2.0))
    for call in taken:
        assert CUPY.accepts(call), call


def test_registry_takes_bfloat16() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert CUPY.accepts(_call("softmax", FakeArray((4, 6), ml_dtypes.bfloat16)))
    assert CUPY.accepts(_call("softmax_backward", FakeArray((4, 6), ml_dtypes.bfloat16)))


@pytest.mark.parametrize("function", [*FORWARD, *DERIVATIVES])
@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"axes": (0,)}, "not the last axis"),
        ({"axes": (1,)}, "not the last axis"),
        ({"axes": (1, 2)}, "two axes, the last among them"),
        ({"axes": (0, 1, 2)}, "axis=None"),
        ({"axes": ()}, "axis=(): every element its own slice"),
        ({"x": FakeArray(())}, "0-d"),
        ({"x": FakeArray((0, 6))}, "no rows"),
        ({"x": FakeArray((4, 0))}, "empty rows"),
        ({"x": FakeArray((4, 6), contiguous=False)}, "strided"),
        ({"x": FakeArray((4, 6), "int64")}, "integers (promoted by the generic path)"),
        ({"x": FakeArray((4, 6), "bool")}, "bools"),
        ({"x": FakeArray((4, 6), "uint8")}, "unsigned integers"),
        ({"x": FakeArray((4, 6), "complex64")}, "complex"),
        ({"where": FakeArray((4, 5, 6), "bool")}, "a mask"),
        ({"temperature": FakeArray((4, 5, 1))}, "a temperature array"),
        ({"temperature": FakeArray(())}, "a 0-d temperature array"),
    ],
    ids=repr,
)
def test_registry_leaves_other_layouts_to_the_generic_path(
    function: str, changes: dict[str, Any], why: str
) -> None:
    if function == "logsumexp" and "temperature" in changes:
        pytest.skip("logsumexp has no temperature")
    assert not CUPY.accepts(_call(function, **changes)), why


@pytest.mark.parametrize("function", DERIVATIVES)
def test_registry_needs_a_vector_the_kernels_read_as_the_primal(function: str) -> None:
    assert not CUPY.accepts(_call(function, vector=FakeArray((4, 5, 6), contiguous=False)))
    assert not CUPY.accepts(_call(function, vector=FakeArray((4, 5, 6), "float64")))
    assert not CUPY.accepts(_call(function, vector=FakeArray((4, 5, 6), "int32")))
    assert not CUPY.accepts(
        _call(function, FakeArray((4, 6), "float16"), vector=FakeArray((4, 6), "float32"))
    )


@pytest.mark.parametrize("function", CROSS_ENTROPY)
def test_cross_entropy_calls_the_registry_takes(function: str) -> None:
    assert CUPY.accepts(_xent(function))
    assert CUPY.accepts(
        _xent(function, validate=False, reduction="none", ignore_index=-100, smoothing=1.0,
              loss_shape=(8,))
    )  # fmt: skip
    assert CUPY.accepts(_xent(function, validate=True, labels_checked=True))  # read already
    assert CUPY.accepts(_xent(function, weight=FakeArray((10,), "float64")))
    assert CUPY.accepts(_xent(function, weight=FakeArray((10,), "int64")))  # cast on device
    assert CUPY.accepts(_xent(function, target=FakeArray((8,), "uint8")))
    assert CUPY.accepts(_xent(function, target=FakeArray((8,), "int32"), ignore_index=2**63 - 1))
    assert CUPY.accepts(_xent(function, logits=FakeArray((2, 4, 10), "float16"),
                              target=FakeArray((2, 4), "int64")))  # fmt: skip
    assert CUPY.accepts(_xent(function, logits=FakeArray((10,)), target=FakeArray((), "int64")))
    if function != "cross_entropy":
        assert CUPY.accepts(_xent(function, grad=FakeArray(()), reduction="sum"))
        assert CUPY.accepts(
            _xent(function, grad=FakeArray((8,)), reduction="none", loss_shape=(8,))
        )


@pytest.mark.parametrize("function", CROSS_ENTROPY)
@pytest.mark.parametrize(
    "changes",
    [
        {"where": FakeArray((8, 10), "bool")},
        {"axes": (0,)},  # classes on the first axis
        {"ignore_index": 2**63},
        {"ignore_index": -(2**63) - 1},
        {"target": FakeArray((8,), "uint64")},  # above int64's maximum they would wrap
        # probabilities: the generic path
        {"target": FakeArray((8, 10), "float32"), "hard": False},
        {"logits": FakeArray((8, 10), "int64")},
        {"logits": FakeArray((8, 10), "bool")},
        {"logits": FakeArray((8, 10), contiguous=False)},
        {"logits": FakeArray((8, 0)), "classes": 0},
        {"logits": FakeArray((0, 10)), "target": FakeArray((0,), "int64")},
    ],
    ids=repr,
)
def test_cross_entropy_calls_left_to_the_generic_path(
    function: str, changes: dict[str, Any]
) -> None:
    assert not CUPY.accepts(_xent(function, **changes))


_WITHOUT_CUPY_PROBE = """
import sys
import numpy as np
import portable_softmax as ps
from portable_softmax import _dispatch
module = _dispatch.CUPY.load()
assert module is not None and module.__name__ == "portable_softmax._backends.cupy"
x = np.ones((2, 3)); labels = np.zeros(2, dtype=np.int64)
with ps.use_path("cupy"):  # NumPy arrays: the CuPy kernels are not theirs, the generic path
    calls = [ps.softmax(x), ps.log_softmax(x), ps.logsumexp(x),
             ps.softmax_backward(x, x), ps.softmax_jvp(x, x),
             ps.log_softmax_backward(x, x), ps.log_softmax_jvp(x, x),
             ps.cross_entropy(x, labels), ps.cross_entropy_backward(x, labels),
             *ps.cross_entropy_with_grad(x, labels)]
assert all(type(c) is np.ndarray for c in calls), calls
assert "cupy" not in sys.modules, "cupy was imported"
print("ok")
"""


@pytest.mark.parametrize("setting", ["unset", "cupy"])
def test_the_backend_imports_without_cupy(setting: str) -> None:
    done = run_python(
        _WITHOUT_CUPY_PROBE,
        set_env={} if setting == "unset" else {"PORTABLE_SOFTMAX_PATH": setting},
        unset=("PORTABLE_SOFTMAX_PATH",),
        cwd=os.getcwd(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


_ADAPTER_PROBE = """
import json, os, sys
import numpy as np
import portable_softmax as ps
import conformance.adapters.cupy_kernels as adapter
from portable_softmax import _dispatch
backend = _dispatch.CUPY.load()
assert all(hasattr(getattr(backend, name), "__wrapped__") for name in _dispatch.CUPY.takes)
x = np.ones((2, 3)); labels = np.zeros(2, dtype=np.int64)
assert np.array_equal(adapter.softmax(x), ps.softmax(x))
loss, grad = adapter.cross_entropy_with_grad(x, labels)
assert np.array_equal(grad, ps.cross_entropy_backward(x, labels))
try:
    adapter.softmax(x, axis=5)
except ValueError:
    pass
adapter._write_counts()
print(json.dumps(dict(adapter._COUNTS)))
assert "cupy" not in sys.modules
"""


def test_kernel_adapter_grades_the_cupy_path_and_counts(tmp_path: Path) -> None:
    # in a subprocess: the adapter wraps the backend's functions to count (for good)
    counts = tmp_path / "counts.json"
    done = run_python(
        _ADAPTER_PROBE,
        set_env={"PORTABLE_SOFTMAX_KERNEL_COUNTS": str(counts)},
        cwd=os.getcwd(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # NumPy arrays: none served by the kernels; the error raised before dispatch counts too
    expected = {"softmax generic": 2, "cross_entropy_with_grad generic": 1}
    assert json.loads(done.stdout) == expected
    assert json.loads(counts.read_text()) == expected


# ---------------------------------------------------------------- the compile check


def test_compile_check_unit_and_command() -> None:
    names = _launch.name_expressions()
    unit = _compile_check.translation_unit(names)
    assert unit.count("(void*)&") == len(names)
    assert '#include "kernels.cu"' in unit
    line = _compile_check.command("nvcc", Path("u.cu"), Path("u.o"), ("90", "75"))
    assert "-gencode=arch=compute_90,code=sm_90" in line
    assert "-gencode=arch=compute_75,code=sm_75" in line
    assert line[line.index("-Werror") + 1] == "all-warnings"
    assert "-Wall,-Wextra,-Werror" in line


def test_compile_check_without_nvcc_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert _compile_check.main(["--nvcc", "/nonexistent/nvcc"]) == 2
    assert "nvcc not found" in capsys.readouterr().err
