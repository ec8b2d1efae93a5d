# /// script
# dependencies = ["nox[uv]>=2025.2.9"]
# ///
"""Nox sessions: the conformance suite, lint, the peer matrix and the benchmarks.

``nox -s tests`` runs the suite on every CPU backend in two virtualenvs: ``tests(cpu)`` holds
every CPU backend (NumPy with Numba, array-api-strict, PyTorch (CPU), JAX, Dask) and runs them
in one pytest run spread over the cores by pytest-xdist, JAX twice (float32, and with 64-bit
types as ``jax_x64``); ``tests(numpy-without-numba)`` is NumPy alone, as a user without Numba
has it (its backend tests; the backend-free ones ran in ``tests(cpu)``). ``nox -s tests-long``
is the same with 1000 Hypothesis examples per property.
``nox -s "tests(cupy)"`` needs an NVIDIA GPU and is never part of the default run.

The script block above makes ``pip install nox && nox`` bring uv (``nox[uv]``) into a small
environment of its own, so the sessions install with uv (seconds, not minutes); without uv
they fall back to virtualenv + pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
BENCH_DEPS = nox.project.dependency_groups(PYPROJECT, "bench")
LINT_DEPS = nox.project.dependency_groups(PYPROJECT, "lint")
DOCS_DEPS = nox.project.dependency_groups(PYPROJECT, "docs")

# The CPU build on local disk; an unpinned "torch" pulls a multi-GB CUDA build.
TORCH_CPU = "torch==2.13.0"
# pytest-xdist: the suite spreads over the cores (one worker per core with -n auto).
XDIST = "pytest-xdist>=3.6"

CPU_BACKENDS: dict[str, list[str]] = {
    "numpy": ["numba>=0.60"],  # the compiled kernels' path; tests(numpy-without-numba) has none
    "array_api_strict": ["array-api-strict>=2.3"],
    "torch": [TORCH_CPU],
    "jax": ["jax[cpu]>=0.4.30"],
    "dask": ["dask[array]>=2024.8", "distributed>=2024.8"],  # distributed: 2-process tests
}
PEERS = [TORCH_CPU, "jax[cpu]>=0.4.30", "scipy>=1.11"]

# Each test session: the backends it runs in one pytest process, and its extra installs.
SUITES: dict[str, tuple[list[str], list[str]]] = {
    "cpu": (list(CPU_BACKENDS), [dep for deps in CPU_BACKENDS.values() for dep in deps]),
    "numpy-without-numba": (["numpy"], []),
}


def _find_links() -> list[str]:
    """pip's find-links (config files, PIP_FIND_LINKS) as uv arguments: uv reads neither.

    This is where the CPU build of PyTorch lies on machines that ship it as a local wheel;
    pip finds it by itself, uv only when told.
    """
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    links: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".find-links"):
            links += [v for v in value.strip("'\"").split() if v not in links]
    return [arg for link in links for arg in ("--find-links", link)]


def _install(session: nox.Session, *packages: str) -> None:
    extra = _find_links() if session.venv_backend == "uv" else []
    session.install(*extra, *packages)


@contextmanager
def _timed(session: nox.Session, what: str) -> Iterator[None]:
    """Log how long ``what`` took, also when it fails (``.ci/run`` prints these lines)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        session.log(f"session time: {session.name} {what} {time.perf_counter() - start:.0f} s")


def _pytest(
    session: nox.Session,
    backends: list[str],
    *extra: str,
    success_codes: tuple[int, ...] = (0,),
    env: dict[str, str] | None = None,
    tests: str = "conformance",
) -> None:
    """Run the conformance suite on the backends named (asked for explicitly: missing = error);
    its conftest prints the counts per backend and path (one process runs several)."""
    selection = [arg for backend in backends for arg in ("--backend", backend)]
    pytest_args = [tests, *selection, "-q", "-p", "no:cacheprovider", *extra]
    session.run(
        "python",
        "-m",
        "pytest",
        *pytest_args,
        *session.posargs,
        success_codes=success_codes,
        env=env,
    )


def _suite(session: nox.Session, suite: str, profile: str) -> None:
    """Install one suite's virtualenv and run it (shared by ``tests`` and ``tests-long``)."""
    backends, deps = SUITES[suite]
    # PORTABLE_SOFTMAX_BACKENDS=torch,jax nox -s "tests(cpu)": only those (same installs).
    only = [b.strip() for b in os.environ.get("PORTABLE_SOFTMAX_BACKENDS", "").split(",")]
    if any(only):
        backends = [b for b in backends if b in only]
        if not backends:
            session.skip(f"PORTABLE_SOFTMAX_BACKENDS={','.join(only)}: none of them in {suite}")
    with _timed(session, "total"):
        # tests(numpy-without-numba) also proves the suite runs with plain pytest: a user
        # grading a library may not have pytest-xdist.
        parallel = suite == "cpu"
        with _timed(session, "install"):
            # the harness tests' dependencies too: one resolution, one install
            xdist = [XDIST] if parallel else []
            _install(session, "-e", ".", *TEST_DEPS, *xdist, *deps, *BENCH_DEPS)
        session.env["PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE"] = profile
        # Write bytecode even where the machine sets PYTHONDONTWRITEBYTECODE (uv installs
        # none): else every process (xdist workers, the mutant and cluster subprocesses)
        # compiles the sources of pytest, NumPy, JAX... anew, seconds each. (Empty = unset.)
        session.env["PYTHONDONTWRITEBYTECODE"] = ""
        session.env["JAX_PLATFORMS"] = "cpu"  # no probing for accelerators: CPU backends
        if profile == "ci":
            # Each JAX test compiles its shapes and runs them once, so compiling is most of
            # its time. JAX's documented switch for that skips XLA's costly LLVM passes, and
            # XLA's classic loop emitters compile a third faster than its fusion emitters
            # (measured, 2-core AMD EPYC). The checks are the same; tests-long keeps JAX's
            # default compiler.
            session.env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
            xla_flags = "--xla_cpu_use_fusion_emitters=false"
            session.env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip()
        # JAX runs twice in the same process: as jax (float32) and as jax_x64 (64-bit types,
        # as with JAX_ENABLE_X64=1). The backend-free tests run once, in the first session.
        if "jax" in backends:
            backends = [*backends, "jax_x64"]
        # Without numba only the pure NumPy path differs from tests(cpu): its generic slot
        # runs the same code as numpy-generic there, so this session runs the numpy path.
        extra = [] if suite == "cpu" else ["--backend-tests-only", "--path", "numpy"]
        if profile == "ci" and suite == "cpu":
            # The generic slots of PyTorch and Dask: their fast slots (torch, dask) run the
            # same portable code for every call their paths do not take (16-bit floats,
            # masks, integer input...; Dask's blocks on NumPy's generic path), and that code
            # is checked on NumPy, array-api-strict and JAX too, so in the 5-minute run they
            # would add ~40 s of CPU for float32/float64 calls no default setting sends
            # there. Likewise JAX's 16-bit floats with 64-bit types on: float16 and
            # bfloat16 compute in float32 either way, and the jax slot checks them (20% of
            # the x64 slot's tests, 20 s of CPU). tests-long runs them all.
            extra += [
                "-k",
                "not torch-generic and not dask-generic"
                " and not (jax_x64 and (float16 or bfloat16))",
            ]
        with _timed(session, "pytest"):
            # One xdist run for every backend; --dist loadgroup keeps each test module's JAX
            # tests of one slot on one worker, and the numba tests on one, so each
            # compilation happens once (conformance/conftest.py). The CUDA kernels' CPU
            # emulation compiles C++ for a minute: it is nox -s cuda-compile.
            spread = ["-n", "auto", "--dist", "loadgroup"] if parallel else []
            _pytest(
                session,
                backends,
                *spread,
                "--ignore=conformance/test_cupy_emulated.py",
                *extra,
            )
        if suite == "cpu":
            with _timed(session, "harness tests and doctests"):
                # The benchmark harness's own tests (references, statistics, CLI; they time
                # nothing) and the docstring examples, which must run as printed.
                # (_backends/cupy/_kernels.py imports CuPy: it has no examples, and no GPU here)
                session.run(
                    "python",
                    "-m",
                    "pytest",
                    "benchmarks/tests",
                    "--doctest-modules",
                    "portable_softmax",
                    "--ignore=portable_softmax/_backends/cupy/_kernels.py",
                    "-n",
                    "auto",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                )


@nox.session
@nox.parametrize("suite", list(SUITES), ids=list(SUITES))
def tests(session: nox.Session, suite: str) -> None:
    """The conformance suite in one virtualenv: every CPU backend (cpu) or NumPy alone.

    ``cpu`` also runs JAX with 64-bit types (``jax_x64``), the benchmark harness's tests and the
    docstring examples.
    """
    _suite(session, suite, "ci")


@nox.session(name="tests-long", default=False)
@nox.parametrize("suite", list(SUITES), ids=list(SUITES))
def tests_long(session: nox.Session, suite: str) -> None:
    """``tests`` with 1000 Hypothesis examples per property (before a release; not in CI)."""
    _suite(session, suite, "long")


@nox.session(name="tests(cupy)", default=False)
def tests_cupy(session: nox.Session) -> None:
    """The conformance suite on CuPy; fails (never skips) without a usable NVIDIA GPU."""
    if shutil.which("nvidia-smi") is None:
        session.error(
            "tests(cupy) needs an NVIDIA GPU and driver, and this machine has none "
            "(no nvidia-smi on PATH). Run the CPU backends with `nox -s tests`."
        )
    cupy = os.environ.get("PORTABLE_SOFTMAX_CUPY", "cupy-cuda12x")
    _install(session, "-e", ".", *TEST_DEPS, cupy)
    session.env.setdefault("PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE", "gpu")
    _pytest(session, ["cupy"])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) on everything, mypy (strict) on the library."""
    _install(session, "-e", ".", *LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(name="cuda-compile")
def cuda_compile(session: nox.Session) -> None:
    """Every CuPy kernel instantiation compiled with nvcc for sm_90 and sm_75, warnings as
    errors, then the kernels run on the CPU by emulation; needs nvcc (CUDA 12/13 toolkit)
    and g++, no GPU and no CuPy."""
    _install(session, "-e", ".", *TEST_DEPS)  # the checks need NumPy and pytest, not CuPy
    session.run("python", "-m", "portable_softmax._backends.cupy._compile_check", *session.posargs)
    # kernels.cu built as host code (one thread per CUDA thread) against the generic path
    _pytest(session, ["numpy"], "--path", "generic", tests="conformance/test_cupy_emulated.py")


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """The documentation site (docs/_build/html): warnings are errors, the docstring examples
    run, and every name of ``portable_softmax.__all__`` must be in the API reference."""
    _install(session, "-e", ".", *DOCS_DEPS)
    build = "docs/_build"
    # autosummary writes the API's stub pages into docs/generated: start from none, so that a
    # name taken out of the API reference leaves no stale page behind.
    shutil.rmtree("docs/generated", ignore_errors=True)
    # -W --keep-going: every warning is reported, then the build fails; -E: no cached state.
    sphinx = ["sphinx-build", "-W", "--keep-going", "-E", "-q"]
    session.run(*sphinx, "-b", "html", "-d", f"{build}/doctrees", "docs", f"{build}/html")
    session.run(*sphinx, "-b", "doctest", "-d", f"{build}/doctrees", "docs", f"{build}/doctest")
    session.run("python", "docs/check_api.py", f"{build}/html")


@nox.session(default=False)
def conformance(session: nox.Session) -> None:
    """The conformance matrix for portable_softmax and the peers (SciPy, PyTorch, JAX).

    Writes ``conformance-report/conformance-matrix.{json,md}``. ``nox -s conformance --
    --hypothesis-profile long`` grades the peers with 1000 examples per property.
    """
    _install(session, "-e", ".", *TEST_DEPS, *PEERS)
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
    """The GPU-vs-CPU benchmark report (``nox -s bench -- --quick`` for a short one), with
    the Numba kernels installed (the report also times the pure NumPy and generic paths)."""
    _install(session, "-e", ".[numpy,numba]", *BENCH_DEPS, *PEERS)
    session.run("python", "-m", "benchmarks", *session.posargs)
