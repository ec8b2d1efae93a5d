"""The README's code runs as printed: every ```python block, in order, in one namespace.

The README is what a user copies from first, so its examples are tested like the docstrings'
(``nox -s tests`` runs this module in its harness step).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
# The README is a user's guide; the project's history and notes live in docs/.
MAX_BYTES = 15_000


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of every fenced ```python block, in order."""
    blocks = []
    for match in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.DOTALL | re.MULTILINE):
        line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((line, match.group(1)))
    return blocks


def test_python_blocks_are_found() -> None:
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (9, "y = x + 1\n")]


def test_readme_code_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```python block"
    namespace: dict[str, object] = {"__name__": "readme"}
    for line, code in blocks:
        # The file name in a traceback says which block (and line) of the README failed.
        exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)
    printed = capsys.readouterr().out
    # The training example: the loss falls at every printed step, and the classifier learns.
    losses = [float(v) for v in re.findall(r"^step +\d+: loss ([0-9.]+)$", printed, re.M)]
    assert len(losses) >= 3, printed
    assert all(b < a for a, b in itertools.pairwise(losses)), printed
    accuracy = re.search(r"^training accuracy: ([0-9.]+)%$", printed, re.M)
    assert accuracy is not None, printed
    assert float(accuracy.group(1)) >= 90.0, printed


def test_readme_stays_short() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_BYTES, (
        f"README.md is {size} bytes, more than {MAX_BYTES}: it is the user's guide; "
        "put history, timings and development notes in docs/"
    )
