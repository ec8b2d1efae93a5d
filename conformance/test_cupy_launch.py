"""The pure-Python side of the CuPy kernels, checked on the CPU (no GPU, no CuPy).

Launch plans over row lengths, dtypes and device properties; the variant choice; vector
alignment; the list of template instantiations against ``kernels.cu``; which calls the
kernels take; the opt-in switch; the compile check's command line. Runs once, in the NumPy
session of the suite. What needs a GPU (the numbers the kernels give) is checked by
``benchmarks/gpu_run.sh`` on a GPU machine, not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from portable_softmax._backends.cupy import _accept, _compile_check, _launch
from portable_softmax._backends.cupy._launch import DeviceProperties, plan

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


class _FakeFlags:
    def __init__(self, contiguous: bool) -> None:
        self.c_contiguous = contiguous


class FakeArray:
    """Metadata of a CuPy array: enough for ``_accept``, which reads no values."""

    def __init__(self, shape: tuple[int, ...], dtype: str = "float32", contiguous: bool = True):
        self.shape = shape
        self.ndim = len(shape)
        self.dtype = np.dtype(dtype)
        self.flags = _FakeFlags(contiguous)
        self._contiguous = contiguous

    def __repr__(self) -> str:  # stable test ids (pytest-xdist compares them across workers)
        layout = "" if self._contiguous else ", strided"
        return f"FakeArray({self.shape}, {self.dtype}{layout})"


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("cupy")
    module.ndarray = FakeArray  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", module)


def test_rows_of_takes_only_contiguous_float_arrays_along_the_last_axis(fake_cupy: None) -> None:
    x = FakeArray((4, 5, 6))
    assert _accept.rows_of(x, -1) == (20, 6)
    assert _accept.rows_of(x, 2) == _accept.rows_of(x, (2,)) == _accept.rows_of(x, np.int64(-1))
    assert _accept.rows_of(x, (2,), tuples=False) is None
    for axis in (0, 1, (1, 2), None, (), True, 2.0):
        assert _accept.rows_of(x, axis) is None, axis
    assert _accept.rows_of(FakeArray((6,)), -1) == (1, 6)
    assert _accept.rows_of(FakeArray(()), -1) is None
    assert _accept.rows_of(FakeArray((0, 6)), -1) is None
    assert _accept.rows_of(FakeArray((4, 0)), -1) is None
    assert _accept.rows_of(FakeArray((4, 6), contiguous=False), -1) is None
    for dtype in ("int64", "bool", "complex64", "uint8"):
        assert _accept.rows_of(FakeArray((4, 6), dtype), -1) is None
    for dtype in ("float16", "float32", "float64"):
        assert _accept.rows_of(FakeArray((4, 6), dtype), -1) == (4, 6)
    assert _accept.rows_of(np.ones((4, 6)), -1) is None  # a NumPy array is not CuPy's


def test_plain_temperatures_only() -> None:
    assert _accept.plain_temperature(None) == 1.0
    assert _accept.plain_temperature(0.5) == 0.5
    for bad in (0.0, -1.0, float("inf"), float("nan"), 2, True, np.float64(2.0), "2"):
        assert _accept.plain_temperature(bad) is None, bad


def _xent(**changes: Any) -> _accept.XentCall | None:
    options: dict[str, Any] = {
        "axis": -1,
        "reduction": "mean",
        "weight": None,
        "ignore_index": None,
        "label_smoothing": 0.0,
        "where": None,
        "validate": None,
    }
    logits = changes.pop("logits", FakeArray((8, 10)))
    target = changes.pop("target", FakeArray((8,), "int64"))
    return _accept.xent_call(logits, target, **{**options, **changes})


def test_cross_entropy_calls_the_kernels_take(fake_cupy: None) -> None:
    assert _xent() == _accept.XentCall(8, 10, "mean", None, 0.0)
    assert _xent(validate=False, reduction="none", ignore_index=-100, label_smoothing=1) == (
        _accept.XentCall(8, 10, "none", -100, 1.0)
    )
    assert _xent(weight=FakeArray((10,), "float64")) is not None
    assert _xent(target=FakeArray((8,), "uint8")) is not None
    assert _xent(grad=FakeArray(()), reduction="sum") is not None
    assert _xent(grad=FakeArray((8,)), reduction="none") is not None


@pytest.mark.parametrize(
    "changes",
    [
        {"where": FakeArray((8, 10), "bool")},
        {"validate": True},
        {"validate": 0},
        {"reduction": "avg"},
        {"ignore_index": True},
        {"ignore_index": np.int64(3)},
        {"label_smoothing": 1.5},
        {"label_smoothing": float("nan")},
        {"label_smoothing": True},
        {"axis": 0},
        {"axis": (1,)},
        {"target": FakeArray((8,), "uint64")},
        {"target": FakeArray((8,), "float32")},
        {"target": FakeArray((8, 10), "float32")},  # probabilities: the generic path
        {"target": FakeArray((7,), "int64")},
        {"target": np.zeros(8, dtype=np.int64)},
        {"weight": FakeArray((9,))},
        {"weight": FakeArray((10,), "int64")},
        {"grad": FakeArray((8,))},
        {"grad": FakeArray((), "int64")},
        {"logits": FakeArray((8, 10), "int64")},
        {"logits": FakeArray((8, 10), contiguous=False)},
    ],
    ids=repr,
)
def test_cross_entropy_calls_left_to_the_generic_path(
    fake_cupy: None, changes: dict[str, Any]
) -> None:
    assert _xent(**changes) is None


def test_opt_in_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_accept.ENV_KERNELS, raising=False)
    assert not _accept.enabled()
    for value, on in (("1", True), (" 1 ", True), ("0", False), ("yes", False), ("", False)):
        monkeypatch.setenv(_accept.ENV_KERNELS, value)
        assert _accept.enabled() is on, value


_NOT_IMPLEMENTED_PROBE = """
import sys
import numpy as np
import portable_softmax._backends.cupy as kernels
x = np.ones((2, 3)); labels = np.zeros(2, dtype=np.int64)
calls = [kernels.softmax(x), kernels.log_softmax(x), kernels.logsumexp(x),
         kernels.softmax_backward(x, x), kernels.softmax_jvp(x, x),
         kernels.log_softmax_backward(x, x), kernels.log_softmax_jvp(x, x),
         kernels.cross_entropy(x, labels), kernels.cross_entropy_backward(x, labels),
         kernels.softmax(object(), axis=5, temperature=-1.0)]
assert all(c is NotImplemented for c in calls), calls
assert "cupy" not in sys.modules, "cupy was imported"
print("ok")
"""


@pytest.mark.parametrize("switch", ["unset", "1"])
def test_every_function_is_not_implemented_without_cupy(switch: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != _accept.ENV_KERNELS}
    if switch != "unset":
        env[_accept.ENV_KERNELS] = switch  # on, but these are NumPy arrays
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _NOT_IMPLEMENTED_PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_public_signatures_match_the_library() -> None:
    import inspect

    import portable_softmax
    import portable_softmax._backends.cupy as kernels

    for name in _launch.FUNCTIONS:
        ours = inspect.signature(getattr(kernels, name))
        theirs = inspect.signature(getattr(portable_softmax, name))
        assert [(p.name, p.kind) for p in ours.parameters.values()] == [
            (p.name, p.kind) for p in theirs.parameters.values()
        ], name
        assert [p.default for p in ours.parameters.values()] == [
            p.default for p in theirs.parameters.values()
        ], name


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
