"""The type stubs (python/jitffi/__init__.pyi) and the runtime API name the same things:
every public name of the package, and every public attribute of its classes, is in the
stub and exists at runtime; where a method's parameters are known at runtime, the stub
gives the same ones."""
import ast
import inspect
import pathlib

import jitffi

STUB = pathlib.Path(jitffi.__file__).with_name("__init__.pyi")
DUNDER_NAMES = {"__version__", "__version_info__", "__all__"}


def _stub():
    return ast.parse(STUB.read_text(), filename=str(STUB))


def _defined(body):
    """Names bound at the top of a module or class body (overloads count once)."""
    names = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.setdefault(node.name, node)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.setdefault(node.target.id, node)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.setdefault(t.id, node)
    return names


def _public(names):
    return {n for n in names if not n.startswith("_") or n in DUNDER_NAMES}


def _stub_classes():
    return {n: node for n, node in _defined(_stub().body).items() if isinstance(node, ast.ClassDef)}


def test_package_names_match():
    runtime = {n for n in _public(dir(jitffi)) if not inspect.ismodule(getattr(jitffi, n))}
    assert runtime == _public(_defined(_stub().body))


def test_all_names_are_in_the_stub():
    assert set(jitffi.__all__) <= _public(_defined(_stub().body))


def test_class_attributes_match():
    classes = _stub_classes()
    for name in _public(dir(jitffi)):
        obj = getattr(jitffi, name)
        if not isinstance(obj, type):
            continue
        stub_names = {n for n in _defined(classes[name].body) if not n.startswith("_")}
        runtime_names = {n for n in dir(obj) if not n.startswith("_")}
        if issubclass(obj, BaseException):
            runtime_names -= set(dir(BaseException))
        assert runtime_names == stub_names, name


def test_exception_bases_match():
    classes = _stub_classes()
    for name in _public(dir(jitffi)):
        obj = getattr(jitffi, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            bases = [b.id for b in classes[name].bases]
            assert bases == [obj.__base__.__name__], name


def _stub_params(fn):
    a = fn.args
    params = [p.arg for p in a.posonlyargs + a.args]
    if a.vararg:
        params.append("*" + a.vararg.arg)
    params += [p.arg for p in a.kwonlyargs]
    if a.kwarg:
        params.append("**" + a.kwarg.arg)
    return params[1:] if params[:1] == ["self"] else params


def _runtime_params(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # no signature to compare (a C method installed by hand)
    out = []
    for p in sig.parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(prefix + p.name)
    return out[1:] if out[:1] == ["self"] else out


def test_ffi_method_parameters_match():
    ffi_stub = _defined(_stub_classes()["FFI"].body)
    checked = 0
    for name, node in ffi_stub.items():
        if not isinstance(node, ast.FunctionDef) or name.startswith("_"):
            continue
        member = inspect.getattr_static(jitffi.FFI, name)
        if not callable(member) or isinstance(member, type):
            continue
        runtime = _runtime_params(getattr(jitffi.FFI, name))
        if runtime is None:
            continue
        assert runtime == _stub_params(node), name
        checked += 1
    assert checked >= 20


def test_py_typed_marker_ships_with_the_stub():
    assert STUB.with_name("py.typed").exists()
