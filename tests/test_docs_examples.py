"""Every Python example in the README and in the Sphinx pages runs, so that none can rot.

A page's examples run in order in one namespace (a later example may use an earlier one's names), in a
scratch folder, with a small thread count; a failing example names its page and line."""
import os
import pathlib
import re
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
CODE_BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", re.M)


def examples(path):
    """(line, source) of each Python example of a page."""
    text = path.read_text()
    if path.suffix == ".md":
        found = [(m.start(1), m.group(1)) for m in FENCE.finditer(text)]
    else:
        found = [(m.start(1), textwrap.dedent(m.group(1))) for m in CODE_BLOCK.finditer(text)]
    return [(text.count("\n", 0, start) + 1, source) for start, source in found]


PAGES = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.rst"))] if p.exists()]


def test_the_pages_have_examples():
    if not PAGES:
        pytest.skip("README and docs are not beside the tests (an installed wheel's tests)")
    assert sum(len(examples(p)) for p in PAGES) >= 5 and examples(ROOT / "README.md")


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.name)
def test_examples_run(page, tmp_path, monkeypatch):
    sources = "\n".join(src for _, src in examples(page))
    if "import torch" in sources:  # a page about the [torch] extra
        pytest.importorskip("torch", reason="PyTorch is not installed")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNNFAST_NUM_THREADS", os.environ.get("RNNFAST_NUM_THREADS", "2"))
    namespace = {"__name__": f"example_{page.stem}"}
    for line, source in examples(page):
        code = compile(source, f"{page.name}:{line}", "exec")  # tracebacks point at the page's line
        exec(code, namespace)
