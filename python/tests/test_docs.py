"""docs/python.md: every ```python block runs, in order, in one namespace, and prints exactly the
```text block that follows it (nothing, where none follows). SYMBIOTE_UPDATE_DOCS=1 rewrites
those outputs instead of comparing."""

from __future__ import annotations

import contextlib
import io
import os
import re

import symbiote  # noqa: F401 (the blocks import it themselves; this fails early if it is missing)
from conftest import REPO

DOC = REPO / "docs" / "python.md"
BLOCK = re.compile(r"```python\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.S)


def test_every_python_block_in_docs_python_md_runs_and_prints_what_the_doc_shows(monkeypatch):
    text = DOC.read_text()
    blocks = BLOCK.findall(text)
    assert len(blocks) >= 7, f"found {len(blocks)} python blocks in {DOC}"
    assert text.count("```python") == len(blocks)
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    printed = []
    for code, _ in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), namespace)
        printed.append(out.getvalue())
    if os.environ.get("SYMBIOTE_UPDATE_DOCS") == "1":
        outputs = iter(printed)

        def fill(match: re.Match) -> str:
            got = next(outputs)
            if match.group(2) is None:
                return match.group(0)
            return f"```python\n{match.group(1)}```\n\n```text\n{got}```"

        DOC.write_text(BLOCK.sub(fill, text))
        return
    for (code, shown), got in zip(blocks, printed):
        assert got == (shown or ""), f"docs/python.md block\n{code}\nprinted\n{got}\nbut the doc shows\n{shown}"


def test_the_readme_python_example_runs(monkeypatch):
    blocks = BLOCK.findall((REPO / "README.md").read_text())
    assert blocks, "README.md has no python block"
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    for code, _ in blocks:
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].report["scenario"] == "example_llama2_7b_a100"
