"""pytest wiring of the conformance suite: options, fixtures, header, matrix report.

The machinery lives in ``conformance._framework``; this file only connects it to pytest.
See ``conformance/README.md`` for the options and the interface test modules rely on.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conformance._framework import errors
from conformance._framework.backends import REGISTRY, Backend
from conformance._framework.profiles import ENV_PROFILE, register_profiles
from conformance._framework.provided import (
    accepts_backend,
    convention_reason,
    declares_convention,
    impl_name,
    not_provided,
)
from conformance._framework.report import CONCERNS, MatrixPlugin, run_meta, source_location
from conformance._framework.selection import (
    ENV_BACKENDS,
    ENV_IMPL,
    ENV_XP,
    Selection,
    SelectionError,
    requested_backend_names,
    select_backends,
    select_impls,
)

pytest_plugins = ["conformance._framework.counts"]  # tests per backend-path slot, at the end

_PROFILE = register_profiles()
_SELECTION = pytest.StashKey[Selection]()
_ENV_SHOWN = (
    ENV_BACKENDS,
    ENV_IMPL,
    ENV_XP,
    ENV_PROFILE,
    "SCIPY_ARRAY_API",
    "JAX_ENABLE_X64",
    "JAX_PLATFORMS",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "portable-softmax conformance suite")
    group.addoption(
        "--backend",
        action="append",
        metavar="NAME",
        help="backend to run (repeatable, or comma-separated): numpy, "
        "array_api_strict, torch, jax, jax_x64 (JAX with 64-bit types), dask, cupy. Default: env "
        f"{ENV_BACKENDS}, else every registered backend (missing ones skipped). "
        "An explicitly requested backend that cannot run is a usage error.",
    )
    group.addoption(
        "--path",
        action="append",
        metavar="NAME",
        help="portable_softmax path(s) to run each backend on (repeatable, or comma-separated): "
        "numba, numpy, cupy, dask (fast paths) or generic. Default: env PORTABLE_SOFTMAX_PATH, "
        "else every path the backend's arrays have. A backend with none of them runs generic.",
    )
    group.addoption(
        "--xp",
        metavar="SPEC",
        help="any other array namespace: an import path, or \"exec('import m; xp = m.namespace')\"",
    )
    group.addoption(
        "--impl",
        action="append",
        metavar="SPEC",
        help="implementation under test, 'module' or 'module:attribute' "
        "(repeatable; default portable_softmax). Bundled peers: "
        "conformance.adapters.scipy, conformance.adapters.torch, "
        "conformance.adapters.jax",
    )
    group.addoption(
        "--backend-tests-only",
        action="store_true",
        help="deselect the tests that take no backend (for a second run in the same "
        "environment, or in one that differs only in a backend's library)",
    )
    group.addoption(
        "--report",
        metavar="DIR",
        help="write DIR/conformance-matrix.json and DIR/conformance-matrix.md",
    )
    group.addoption(
        "--report-append",
        action="store_true",
        help="merge into an existing DIR/conformance-matrix.json",
    )


def pytest_configure(config: pytest.Config) -> None:
    for concern in CONCERNS:
        config.addinivalue_line("markers", f"{concern}: conformance check of concern '{concern}'")
    config.addinivalue_line(
        "markers",
        "convention(key): a failure is reported as 'different convention' when the "
        "implementation declares the documented convention `key`",
    )
    # The suite runs with plain pytest too: pytest-xdist only spreads it over the cores. Its
    # marker is declared here so that --strict-markers accepts the groups without xdist.
    config.addinivalue_line(
        "markers",
        "xdist_group(name): pytest-xdist runs the tests of one group on one worker "
        "(--dist loadgroup); without pytest-xdist it has no effect",
    )
    config.addinivalue_line(
        "markers",
        "mutants: runs the suite in a subprocess against a deliberately broken "
        "portable_softmax (conformance/mutants.py) and expects it to fail",
    )
    if config.option.help:
        return
    if _is_xdist_controller(config) and not config.option.report:
        # The controller only hands out tests and tallies reports: the workers load the
        # backends (and report an unusable explicit one). Loading them here too cost about
        # 9 s of imports before the workers even started.
        names = requested_backend_names(config.option.backend)
        unknown = [n for n in names if n not in REGISTRY]
        if unknown:
            raise pytest.UsageError(f"conformance: unknown backend(s) {unknown}")
        absent = [n for n in names if importlib.util.find_spec(REGISTRY[n]().module_name) is None]
        if absent:  # the common unusable case, said as clearly as select_backends says it
            raise pytest.UsageError(
                f"conformance: backend(s) asked for explicitly are not installed: {absent}"
            )
        return
    try:
        selection = Selection(
            backends=select_backends(config.option.backend, config.option.xp, config.option.path),
            impls=select_impls(config.option.impl),
        )
    except SelectionError as exc:
        raise pytest.UsageError(f"conformance: {exc}") from None
    config.stash[_SELECTION] = selection
    if config.option.report:
        header = _header_lines(config)
        plugin = MatrixPlugin(
            Path(config.option.report), config.option.report_append, run_meta(config, header)
        )
        config.pluginmanager.register(plugin, "conformance-matrix")


def _is_xdist_controller(config: pytest.Config) -> bool:
    """Whether this is pytest-xdist's controller, which collects and runs no test itself."""
    return (
        not hasattr(config, "workerinput")
        and getattr(config.option, "dist", "no") != "no"
        and bool(getattr(config.option, "tx", None))
        and not config.option.collectonly
    )


def _header_lines(config: pytest.Config) -> list[str]:
    selection = config.stash.get(_SELECTION, None)
    if selection is None:
        return ["conformance backends: loaded in the xdist workers (run without -n to list them)"]
    lines = []
    for slot in selection.backends:
        text = slot.reason if slot.reason else f"{slot.backend.describe()}, path {slot.path}"
        lines.append(f"conformance backend: {text}")
    for impl in selection.impls:
        version = getattr(impl.obj, "__version__", "")
        where = source_location(impl.obj)  # relative to the repository, never a local folder
        lines.append(f"conformance impl: {impl.id} = {impl.spec} {version} {where}".rstrip())
    env = ", ".join(f"{k}={os.environ[k]}" for k in _ENV_SHOWN if k in os.environ)
    lines.append(
        f"conformance env: {env or '(none set)'}; hypothesis profile "
        f"{config.getoption('hypothesis_profile', None) or _PROFILE}"
    )
    return lines


def pytest_report_header(config: pytest.Config) -> list[str]:
    return _header_lines(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    selection = metafunc.config.stash[_SELECTION]
    if "backend" in metafunc.fixturenames:
        ids = selection.backend_ids()
        metafunc.parametrize("backend", ids, ids=ids, indirect=True, scope="session")
    if "impl" in metafunc.fixturenames:
        ids = [slot.id for slot in selection.impls]
        metafunc.parametrize("impl", ids, ids=ids, indirect=True, scope="session")


# tryfirst is load-bearing: xdist registers its worker plugin after this conftest, so its
# modifyitems (which turns the xdist_group marks into "@group" node-id suffixes) would run
# first and find no marks: the groups were silently inactive until this was added.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The path dimension is portable_softmax's: another implementation runs once per backend.
    # (its first slot in the run: the generic one unless --path or PORTABLE_SOFTMAX_PATH
    # leaves only fast paths)
    selection = config.stash[_SELECTION]
    first: dict[str, str] = {}
    for slot in reversed(selection.backends):
        if slot.path == "generic" or slot.backend.name not in first:
            first[slot.backend.name] = slot.id
    keep, drop = [], []
    backend_only = config.getoption("backend_tests_only")
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if backend_only and "backend" not in params:
            drop.append(item)
            continue
        group = _compile_group(selection, item, params)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if "backend" in params and "impl" in params:
            slot = selection.slot(params["backend"])
            impl = selection.impl(params["impl"]).obj
            if impl_name(impl) != "portable_softmax" and first[slot.backend.name] != slot.id:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist does not know it
def pytest_xdist_node_collection_finished(node: Any, ids: Sequence[str]) -> None:
    """In the xdist controller under ``--dist loadgroup``: stop if none of the compile groups
    marked above reached the scheduler, rather than let every JAX program silently compile on
    every worker (it did, unnoticed, for days: the marks came after xdist's renaming, and
    pytest 9.2 ignores the renaming anyway).

    Only for the xdist releases whose groups travel as an ``@group`` suffix of the node ids
    (up to 3.8), and only where JAX, whose tests are always grouped, is installed.
    """
    if node.config.getvalue("dist") != "loadgroup" or importlib.util.find_spec("jax") is None:
        return
    import xdist

    if tuple(int(part) for part in xdist.__version__.split(".")[:2]) > (3, 8):
        return
    jax_tests = any("[jax-" in nodeid or "[jax_x64-" in nodeid for nodeid in ids)
    if jax_tests and not any("@" in nodeid for nodeid in ids):
        raise pytest.UsageError(
            "pytest-xdist applied none of the suite's compile groups (--dist loadgroup; "
            f"pytest {pytest.__version__}, pytest-xdist {xdist.__version__}): either pytest "
            "is 9.2 or newer, whose node ids ignore xdist's renaming (pytest-xdist#1386: "
            "install pytest<9.2, as pyproject.toml's test group does), or this conftest's "
            "pytest_collection_modifyitems no longer runs before xdist's (it must be tryfirst)"
        )


def _compile_group(selection: Selection, item: pytest.Item, params: dict[str, Any]) -> str | None:
    """The pytest-xdist group (``--dist loadgroup``) of a test that compiles: its compilations
    then happen once, in one worker, and its later tests hit that worker's caches.

    JAX compiles per shape and dtype (and anew with 64-bit types on): one group per test
    module and JAX slot, so the shapes a module's tests share compile once and the groups
    spread over the workers. numba compiles each kernel variant once
    per process: the numba slot and the kernel tests (marked in their module) share one.
    """
    if "backend" not in params:
        return None
    slot = selection.slot(params["backend"])
    if slot.backend.compiles_per_shape:
        module = getattr(getattr(item, "module", None), "__name__", "")
        return f"{slot.backend.name}:{module.rpartition('.')[2]}"
    if slot.path == "numba":
        return "numba"
    return None


@pytest.fixture(autouse=True)
def _on_path(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the test's portable_softmax calls by its slot's path (``numpy-generic``...)."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if "backend" not in params:
        yield
        return
    import portable_softmax

    slot = request.config.stash[_SELECTION].slot(params["backend"])
    with slot.backend.context(), portable_softmax.use_path(slot.path):
        yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Skips decided here, not in the session-scoped fixtures, so that every test of an
    # unavailable backend or an impl that does not take its arrays is skipped alike.
    params = getattr(getattr(item, "callspec", None), "params", {})
    selection = item.config.stash[_SELECTION]
    backend_slot = selection.slot(params["backend"]) if "backend" in params else None
    if backend_slot is not None and backend_slot.reason:
        pytest.skip(backend_slot.reason)
    if backend_slot is not None and "impl" in params:
        impl = selection.impl(params["impl"]).obj
        reason = accepts_backend(impl, backend_slot.backend)
        if reason:
            not_provided(f"{impl_name(impl)} on {backend_slot.backend.name}: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("convention")
    if marker is None or report.when != "call" or not report.failed:
        return
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "impl" not in params:
        return
    impl = item.config.stash[_SELECTION].impl(params["impl"]).obj
    for key in marker.args:
        if declares_convention(impl, key):
            report.outcome = "skipped"
            report.longrepr = (
                str(item.path),
                item.location[1] or 0,
                f"Skipped: {convention_reason(impl, key)}",
            )
            return


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend under test (parametrised over the selected backends)."""
    slot = request.config.stash[_SELECTION].slot(request.param)
    if slot.reason:  # normally already skipped in pytest_runtest_setup
        pytest.skip(slot.reason)
    return slot.backend


@pytest.fixture
def path(request: pytest.FixtureRequest) -> str:
    """The portable_softmax path the test runs on (``generic`` for tests without a backend)."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if "backend" not in params:
        return "generic"
    return request.config.stash[_SELECTION].slot(params["backend"]).path


@pytest.fixture(scope="session")
def impl(request: pytest.FixtureRequest) -> Any:
    """The implementation under test (parametrised over ``--impl``)."""
    return request.config.stash[_SELECTION].impl(request.param).obj


@pytest.fixture(scope="session")
def record_error() -> Callable[..., None]:
    """``record_error(err_eps, bound_eps, context="")``: note an error for the matrix."""
    return errors.record_error
