"""The hand-written ``.pyi`` stubs say exactly what the compiled modules have: the same functions with
the same parameters (names, order, which have defaults), and the same public constants.  Every compiled
module of the package (both builds of the twins) has a stub; a stub drifting from its module fails here."""
import ast
import importlib
import importlib.machinery
import inspect
import pathlib

import pytest

import rnnfast
from rnnfast._core import dispatch

PACKAGE = pathlib.Path(rnnfast.__file__).parent
TWIN_SUFFIXES = ("_avx2", "_avx512")  # setup.py's SIMD twins: same stub as their baseline module


def compiled_modules():
    found = set()
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)  # ".cpython-...so" first
    for path in PACKAGE.rglob("*"):
        suffix = next((s for s in suffixes if path.name.endswith(s)), None)
        if suffix:
            parts = path.relative_to(PACKAGE.parent).with_name(path.name[: -len(suffix)]).parts
            found.add(".".join(parts))
    return sorted(found)


def stub_path(module_name):
    suffix = next((s for s in TWIN_SUFFIXES if module_name.endswith(s)), "")
    base = module_name[: len(module_name) - len(suffix)]
    return PACKAGE.parent.joinpath(*base.split(".")).with_suffix(".pyi")


def stub_api(path):
    """(functions: name -> [(param, has_default)], constants: set of names) declared in a stub."""
    tree = ast.parse(path.read_text())
    functions, constants = {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
            params = [(a.arg, d) for a, d in zip(positional, defaults)]
            params += [(a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
            functions[node.name] = params
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            constants.add(node.target.id)
    return functions, constants


def module_api(module):
    functions, constants = {}, set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if callable(value) and "cython_function" in type(value).__name__ or inspect.isbuiltin(value):
            if getattr(value, "__module__", module.__name__) != module.__name__:
                continue  # imported, not defined here
            sig = inspect.signature(value)
            functions[name] = [(p.name, p.default is not inspect.Parameter.empty) for p in sig.parameters.values()]
        elif name.isupper() and isinstance(value, (int, float, str, dict)):
            constants.add(name)
    return functions, constants


MODULES = compiled_modules()


def cpu_runs(module_name):
    """Whether this CPU can import the module: a twin's initialisation runs its ISA's instructions."""
    if module_name.endswith("_avx512"):
        return dispatch.avx512_twin_available()
    if module_name.endswith("_avx2"):
        return dispatch.avx2_available()
    return True


def test_the_package_has_compiled_modules():
    assert "rnnfast._core.kernels" in MODULES, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_stub_matches_compiled_module(name):
    path = stub_path(name)
    assert path.exists(), f"{name} has no stub {path.name}"
    if not cpu_runs(name):
        pytest.skip(f"this CPU cannot run {name}")
    want_functions, want_constants = stub_api(path)
    have_functions, have_constants = module_api(importlib.import_module(name))
    assert sorted(have_functions) == sorted(want_functions), f"{path.name}: functions differ from {name}"
    for fn, params in have_functions.items():
        assert want_functions[fn] == params, f"{path.name}: {fn} has parameters {params} in {name}"
    assert have_constants == want_constants, f"{path.name}: constants differ from {name}"


def test_a_wrong_stub_is_caught(tmp_path):
    """The check itself: a parameter renamed in a copy of a real stub is seen."""
    name = "rnnfast._core.kernels"
    text = stub_path(name).read_text()
    wrong = tmp_path / "wrong.pyi"
    wrong.write_text(text.replace("plan", "schedule", 1))
    functions, _ = stub_api(wrong)
    have, _ = module_api(importlib.import_module(name))
    assert any(functions[fn] != have[fn] for fn in have)
