"""Compile ``kernels.cu`` once per process and device (``cupy.RawModule``) and launch it.

Imported only when a CuPy array arrives with the opt-in set, so importing portable_softmax
never imports CuPy. Launches go on CuPy's current stream, on the input's device. Nothing
here reads a device value: the cross-entropy reductions stay on the device as 0-d arrays.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import cupy
import numpy as np

from . import _launch
from ._accept import XentCall

SOURCE = Path(__file__).with_name("kernels.cu")


def _options() -> tuple[str, ...]:
    """NVRTC options: C++17, and the toolkit's headers where they can be found (cuda_fp16.h
    and cuda_bf16.h come with NVRTC in recent toolkits; older setups need the folder)."""
    options = ["--std=c++17"]
    roots = [os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    get_cuda_path = getattr(cupy.cuda, "get_cuda_path", None)
    if get_cuda_path is not None:
        roots.insert(0, get_cuda_path())
    for root in roots:
        if root and Path(root, "include", "cuda_bf16.h").is_file():
            options.append(f"-I{Path(root, 'include')}")
            break
    return tuple(options)


@functools.cache
def _module(device_id: int) -> Any:
    """Every instantiation, compiled on first use (CuPy also caches the binary on disk)."""
    with cupy.cuda.Device(device_id):
        return cupy.RawModule(
            code=SOURCE.read_text(),
            options=_options(),
            name_expressions=list(_launch.name_expressions()),
        )


@functools.cache
def _function(device_id: int, name: str) -> Any:
    with cupy.cuda.Device(device_id):
        return _module(device_id).get_function(name)


@functools.cache
def properties(device_id: int) -> _launch.DeviceProperties:
    """The device's properties as the launch plan wants them (queried once per device):
    from ``Device.attributes``, else from ``cudaGetDeviceProperties``' field names."""
    try:
        return _launch.DeviceProperties.from_attributes(cupy.cuda.Device(device_id).attributes)
    except (KeyError, AttributeError):
        p = cupy.cuda.runtime.getDeviceProperties(device_id)
        return _launch.DeviceProperties(
            multiprocessor_count=int(p["multiProcessorCount"]),
            max_threads_per_block=int(p["maxThreadsPerBlock"]),
            shared_memory_per_block=int(p["sharedMemPerBlock"]),
            shared_memory_per_block_optin=int(p.get("sharedMemPerBlockOptin", 0)),
            warp_size=int(p["warpSize"]),
        )


_opted_in: dict[tuple[int, str], int] = {}


def _launch_kernel(device_id: int, launch: _launch.Launch, args: tuple[Any, ...]) -> None:
    kernel = _function(device_id, launch.name)
    if launch.opt_in and _opted_in.get((device_id, launch.name), 0) < launch.shared_bytes:
        # more dynamic shared memory than the default 48 KiB must be asked for per kernel
        kernel.max_dynamic_shared_size_bytes = launch.shared_bytes
        _opted_in[(device_id, launch.name)] = launch.shared_bytes
    kernel((launch.grid,), (launch.block,), args, shared_mem=launch.shared_bytes)


def _acc(dtype_name: str) -> Any:
    return np.dtype(_launch.DTYPES[dtype_name].acc_name)


def _plan(family: str, op: int, x: Any, rows: int, n: int, *arrays: Any) -> Any:
    device_id = x.device.id
    pointers = [a.data.ptr for a in (x, *arrays)]
    name = x.dtype.name
    return _launch.plan(family, op, name, rows, n, properties(device_id), pointers)


def forward(x: Any, op: int, temperature: float, rows: int, n: int, keepdims: bool) -> Any:
    """softmax (0), log_softmax (1) or logsumexp (2) over the last axis; NotImplemented when
    no launch fits this device."""
    with x.device:
        if op == 2:
            shape = (*x.shape[:-1], 1) if keepdims else x.shape[:-1]
            out = cupy.empty(shape, dtype=x.dtype)
            launch = _plan("forward", op, x, rows, n)  # one value per row: no vector store
        else:
            out = cupy.empty_like(x)
            launch = _plan("forward", op, x, rows, n, out)
        if launch is None:
            return NotImplemented
        t = _acc(x.dtype.name).type(temperature)
        args = (x, out, np.int64(rows), np.int32(n), t, np.int32(launch.vectorized))
        _launch_kernel(x.device.id, launch, args)
        return out


def derivative(p: Any, v: Any, op: int, temperature: float, rows: int, n: int) -> Any:
    """The backward passes and JVPs: ``p`` the forward output (y or logp), ``v`` the vector."""
    with p.device:
        out = cupy.empty_like(p)
        launch = _plan("derivative", op, p, rows, n, v, out)
        if launch is None:
            return NotImplemented
        t = _acc(p.dtype.name).type(temperature)
        args = (p, v, out, np.int64(rows), np.int32(n), t, np.int32(launch.vectorized))
        _launch_kernel(p.device.id, launch, args)
        return out


def _safe_divide(total: Any, d: Any) -> Any:
    """``total / d`` with 0 for ``d == 0`` (a NaN total stays NaN), on the device."""
    zero = cupy.where(cupy.isnan(total), total, 0)
    return cupy.where(d == 0, zero, total / cupy.where(d == 0, 1, d))


class _Xent:
    """The operands of one cross-entropy call, in the kernels' types."""

    def __init__(self, logits: Any, target: Any, weight: Any, call: XentCall) -> None:
        self.dtype_name = logits.dtype.name
        self.acc = _acc(self.dtype_name)
        self.call = call
        self.labels = cupy.ascontiguousarray(target, dtype=cupy.int64).reshape(-1)
        self.weighted = weight is not None
        # unweighted calls still pass a valid pointer; the kernels do not read it
        self.weight = (
            cupy.ascontiguousarray(weight, dtype=self.acc)
            if weight is not None
            else cupy.zeros(1, dtype=self.acc)
        )
        eps = call.label_smoothing
        self.keep = self.acc.type(1.0 - eps)
        self.share = self.acc.type(eps / call.classes)

    def options(self) -> tuple[Any, ...]:
        ignore = self.call.ignore_index
        return (
            self.labels,
            self.weight,
            np.int32(self.weighted),
            np.int32(ignore is not None),
            np.int64(0 if ignore is None else ignore),
            self.keep,
            self.share,
        )

    def denominator(self, device_id: int) -> Any:
        """``D = sum_n w[label_n]`` over the samples that count, as a 0-d device array."""
        rows, classes = self.call.rows, self.call.classes
        d = cupy.empty(rows, dtype=self.acc)
        grid, block = _launch.denominator_launch(rows, properties(device_id))
        kernel = _function(device_id, _launch.denominator_expression(self.dtype_name))
        ignore = self.call.ignore_index
        kernel(
            (grid,),
            (block,),
            (
                self.labels,
                self.weight,
                np.int32(self.weighted),
                np.int32(ignore is not None),
                np.int64(0 if ignore is None else ignore),
                d,
                np.int64(rows),
                np.int32(classes),
            ),
        )
        return _accurate_total(d, self.acc)


def _accurate_total(a: Any, acc: Any) -> Any:
    """Sum of a per-sample array: float32 sums are taken in float64, then rounded back."""
    return a.sum(dtype=cupy.float64).astype(acc) if acc == np.float32 else a.sum()


def _xent_args(x: Any, ops: _Xent, scale: Any, step: int, grad: Any, loss: Any) -> tuple[Any, ...]:
    call = ops.call
    return (
        x,
        *ops.options(),
        scale,
        np.int64(step),
        grad,
        loss,
        np.int64(call.rows),
        np.int32(call.classes),
    )


def cross_entropy(logits: Any, target: Any, weight: Any, call: XentCall) -> Any:
    """The loss, reduced on the device; NotImplemented when no launch fits."""
    with logits.device:
        ops = _Xent(logits, target, weight, call)
        losses = cupy.empty(call.rows, dtype=ops.acc)
        launch = _plan("xent", 0, logits, call.rows, call.classes)
        if launch is None:
            return NotImplemented
        unused = cupy.empty(1, dtype=ops.acc)
        args = (*_xent_args(logits, ops, unused, 0, logits, losses), np.int32(launch.vectorized))
        _launch_kernel(logits.device.id, launch, args)
        if call.reduction == "none":
            out = losses.reshape(logits.shape[:-1])
        else:
            out = _accurate_total(losses, ops.acc)
            if call.reduction == "mean":
                out = _safe_divide(out, ops.denominator(logits.device.id))
        return out.astype(logits.dtype, copy=False)


def cross_entropy_backward(logits: Any, target: Any, weight: Any, grad: Any, call: XentCall) -> Any:
    """The fused gradient; the incoming gradient (over D for "mean") is a device array."""
    with logits.device:
        ops = _Xent(logits, target, weight, call)
        out = cupy.empty_like(logits)
        launch = _plan("xent", 1, logits, call.rows, call.classes, out)
        if launch is None:
            return NotImplemented
        g = cupy.ones((), dtype=ops.acc) if grad is None else grad.astype(ops.acc)
        if call.reduction == "mean":
            g = _safe_divide(g, ops.denominator(logits.device.id))
        scale = cupy.ascontiguousarray(g, dtype=ops.acc).reshape(-1)
        step = 1 if call.reduction == "none" and grad is not None else 0
        unused = cupy.empty(1, dtype=ops.acc)
        args = (*_xent_args(logits, ops, scale, step, out, unused), np.int32(launch.vectorized))
        _launch_kernel(logits.device.id, launch, args)
        return out
