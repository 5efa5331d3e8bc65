"""The built-in default corpus: source files of the running interpreter's standard library.

Present on every machine that has Python, read at run time, nothing downloaded.  A fixed list of
modules keeps the corpus (about 1.2 MB) the same on every machine with the same Python."""
from __future__ import annotations

import os
import sysconfig

DEFAULT_MODULES = (
    "argparse.py", "ast.py", "calendar.py", "collections/__init__.py", "configparser.py", "csv.py",
    "dataclasses.py", "datetime.py", "difflib.py", "enum.py", "fractions.py", "functools.py", "gettext.py",
    "heapq.py", "inspect.py", "ipaddress.py", "logging/__init__.py", "pathlib.py", "pprint.py", "random.py",
    "shutil.py", "statistics.py", "string.py", "textwrap.py", "threading.py", "typing.py", "zipfile.py",
)


def default_corpus(max_chars: int = None) -> str:
    """The concatenated text of ``DEFAULT_MODULES`` that exist in this interpreter's stdlib."""
    root = sysconfig.get_paths()["stdlib"]
    parts = []
    for rel in DEFAULT_MODULES:
        path = os.path.join(root, rel)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    if not parts:
        raise FileNotFoundError(f"no standard-library sources found under {root}; pass --data FILE")
    text = "\n".join(parts)
    return text[:max_chars] if max_chars else text
