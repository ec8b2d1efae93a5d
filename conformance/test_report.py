"""The matrix report's header names where each implementation came from, never a local folder."""

from __future__ import annotations

import types
from pathlib import Path

import portable_softmax
from conformance._framework.report import REPO_ROOT, source_location


def test_files_inside_the_repository_are_relative() -> None:
    where = source_location(portable_softmax)
    # An installed copy (outside this checkout) is named by its module instead.
    expected = {"portable_softmax/__init__.py", "portable_softmax"}
    assert where in expected, where
    assert not Path(where).is_absolute()


def test_files_outside_the_repository_give_the_module_name(tmp_path: Path) -> None:
    module = types.ModuleType("mypkg.ops")
    module.__file__ = str(tmp_path / "mypkg" / "ops.py")
    assert source_location(module, REPO_ROOT) == "mypkg.ops"


def test_objects_without_a_file_give_their_module() -> None:
    assert source_location(types.SimpleNamespace()) == "types"
