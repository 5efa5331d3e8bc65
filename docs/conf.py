"""Sphinx configuration: the user guide (these .rst pages) and the API reference from the docstrings.

Build: ``pip install ".[docs]" && sphinx-build -W -b html docs docs/_build/html`` (CI does, warnings as errors).
The package is imported from the installed rnnfast.
"""
import rnnfast

project = "rnnfast"
author = "the rnnfast developers"
copyright = "2026, the rnnfast developers"
release = rnnfast.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the docstrings give shapes and dtypes, which the hints cannot
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
