"""Nox sessions: the conformance suite per backend, lint, the peer matrix and the benchmarks.

``nox -s tests`` runs the suite on every CPU backend, one virtualenv each;
``nox -s "tests(numpy)"`` runs one. ``nox -s "tests(cupy)"`` needs an NVIDIA GPU and is never
part of the default run. Sessions use virtualenv + pip because the CPU build of PyTorch that
this project pins is installed from local wheel files that only pip looks at.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
BENCH_DEPS = nox.project.dependency_groups(PYPROJECT, "bench")
LINT_DEPS = nox.project.dependency_groups(PYPROJECT, "lint")

# The CPU build on local disk; an unpinned "torch" pulls a multi-GB CUDA build.
TORCH_CPU = "torch==2.13.0"

CPU_BACKENDS: dict[str, list[str]] = {
    "numpy": [],
    "array_api_strict": ["array-api-strict>=2.3"],
    "torch": [TORCH_CPU],
    "jax": ["jax[cpu]>=0.4.30"],
    "dask": ["dask[array]>=2024.8", "distributed>=2024.8"],  # distributed: 2-process tests
}
PEERS = [TORCH_CPU, "jax[cpu]>=0.4.30", "scipy>=1.11"]


def _pytest(
    session: nox.Session, backends: list[str], *extra: str, success_codes: tuple[int, ...] = (0,)
) -> None:
    """Run the conformance suite on the backends named (asked for explicitly: missing = error)."""
    selection = [arg for backend in backends for arg in ("--backend", backend)]
    pytest_args = ["conformance", *selection, "-q", "-p", "no:cacheprovider", *extra]
    session.run(
        "python", "-m", "pytest", *pytest_args, *session.posargs, success_codes=success_codes
    )


@nox.session
@nox.parametrize("backend", [nox.param(name, id=name) for name in CPU_BACKENDS])
def tests(session: nox.Session, backend: str) -> None:
    """The conformance suite on one CPU backend (JAX also in float64 mode; NumPy also the
    benchmark harness's tests and the docstring examples)."""
    session.install("-e", ".", *TEST_DEPS, *CPU_BACKENDS[backend])
    _pytest(session, [backend])
    if backend == "numpy":
        # The benchmark harness's own tests (references, statistics, CLI); they time nothing.
        session.install(*BENCH_DEPS)
        session.run("python", "-m", "pytest", "benchmarks/tests", "-q", "-p", "no:cacheprovider")
        # The docstring examples must run as printed.
        # (The Dask backend's examples need Dask: they run in the dask session.)
        session.run(
            "python",
            "-m",
            "pytest",
            "--doctest-modules",
            "portable_softmax",
            "--ignore=portable_softmax/_backends/dask",
            "-q",
        )
    if backend == "dask":
        session.run("python", "-m", "pytest", "--doctest-modules", "portable_softmax", "-q")
    if backend == "jax":
        # JAX computes in float32 unless asked: the float64 checks need the second run.
        session.env["JAX_ENABLE_X64"] = "1"
        _pytest(session, [backend])


@nox.session(name="tests(cupy)", default=False)
def tests_cupy(session: nox.Session) -> None:
    """The conformance suite on CuPy; fails (never skips) without a usable NVIDIA GPU."""
    if shutil.which("nvidia-smi") is None:
        session.error(
            "tests(cupy) needs an NVIDIA GPU and driver, and this machine has none "
            "(no nvidia-smi on PATH). Run the CPU backends with `nox -s tests`."
        )
    cupy = os.environ.get("PORTABLE_SOFTMAX_CUPY", "cupy-cuda12x")
    session.install("-e", ".", *TEST_DEPS, cupy)
    session.env.setdefault("PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE", "gpu")
    _pytest(session, ["cupy"])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) on everything, mypy (strict) on the library."""
    session.install("-e", ".", *LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(default=False)
def conformance(session: nox.Session) -> None:
    """The conformance matrix for portable_softmax and the peers (SciPy, PyTorch, JAX).

    Writes ``conformance-report/conformance-matrix.{json,md}``.
    """
    session.install("-e", ".", *TEST_DEPS, *PEERS)
    impls = ["portable_softmax", *(f"conformance.adapters.{p}" for p in ("scipy", "torch", "jax"))]
    _pytest(
        session,
        ["numpy", "torch", "jax"],
        *(arg for impl in impls for arg in ("--impl", impl)),
        "--report",
        "conformance-report",
        success_codes=(0, 1),  # the peers fail checks: the matrix is the result
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The GPU-vs-CPU benchmark report (``nox -s bench -- --quick`` for a short one)."""
    session.install("-e", ".[numpy]", *BENCH_DEPS, *PEERS)
    session.run("python", "-m", "benchmarks", *session.posargs)
