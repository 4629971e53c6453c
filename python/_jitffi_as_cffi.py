"""The JITFFI_AS_CFFI switch: a meta-path finder that makes `cffi`, its submodules and
`_cffi_backend` resolve to jitffi.

This module is installed at the top of site-packages (beside jitffi_as_cffi.pth) and
imports nothing of jitffi itself: the .pth runs at every interpreter start, and an
interpreter that never imports cffi should not load jitffi's extension because the
variable is set. jitffi is imported when `cffi` or `_cffi_backend` first is.
"""
import os
import sys

ENV = "JITFFI_AS_CFFI"

# cffi's submodules jitffi provides (files in jitffi/_cffi_shim/); any other `cffi.X`
# is refused with an ImportError naming jitffi, never looked up elsewhere (a real cffi
# installed beside must not be mixed in).
_PROVIDED = ("api", "error", "model", "_imp_emulation", "backend_ctypes", "recompiler",
             "ffiplatform")


def enabled_in(environ):
    """Whether an environment asks for the switch: set, and not empty or "0"."""
    return environ.get(ENV, "") not in ("", "0")


def _shim_dir():
    import importlib.util
    spec = importlib.util.find_spec("jitffi")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("%s=1: the jitffi package is not importable" % ENV, name="cffi")
    return os.path.join(list(spec.submodule_search_locations)[0], "_cffi_shim")


class _AliasLoader:
    """Gives an already importable module under a second name (`_cffi_backend` is
    `jitffi._cffi_backend`): the same module object, its own spec left as it was."""

    def __init__(self, target):
        self._target = target
        self._saved = None

    def create_module(self, spec):
        import importlib
        module = importlib.import_module(self._target)
        self._saved = (module, getattr(module, "__spec__", None))
        return module

    def exec_module(self, module):
        saved_module, saved_spec = self._saved
        if saved_module is module and saved_spec is not None:
            # The import system set __spec__ to the alias's spec; the module keeps its own
            # (importlib.reload and pickling find it by its real name).
            module.__spec__ = saved_spec


class CffiFinder:
    """Resolves `cffi`, `cffi.<provided>` and `_cffi_backend` to jitffi; refuses other
    `cffi.*` submodules. First on sys.meta_path, so a real cffi is never found."""

    _jitffi_as_cffi = True  # how install() recognizes an already installed finder

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == "_cffi_backend":
            import importlib.machinery
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader("jitffi._cffi_backend"))
        if fullname == "cffi":
            import importlib.util
            shim = _shim_dir()
            return importlib.util.spec_from_file_location(
                "cffi", os.path.join(shim, "__init__.py"), submodule_search_locations=[shim])
        if fullname.startswith("cffi."):
            sub = fullname[5:]
            if sub not in _PROVIDED:
                raise ModuleNotFoundError(
                    "No module named %r: jitffi stands in for cffi (%s is set) and does not "
                    "provide the submodule %r" % (fullname, ENV, sub), name=fullname)
            import importlib.util
            return importlib.util.spec_from_file_location(
                fullname, os.path.join(_shim_dir(), sub + ".py"))
        return None

    @classmethod
    def invalidate_caches(cls):
        pass


def installed():
    return any(getattr(f, "_jitffi_as_cffi", False) for f in sys.meta_path)


def install():
    """Puts the finder first on sys.meta_path (once) and sets the variable, so that
    subprocesses inherit the switch. A real cffi already imported cannot be replaced."""
    os.environ[ENV] = "1"
    if installed():
        return
    clash = [m for m in ("cffi", "_cffi_backend") if m in sys.modules
             and not getattr(sys.modules[m], "__jitffi__", False)]
    if clash:
        raise ImportError("jitffi cannot stand in for cffi: %s was already imported from %r"
                          % (clash[0], getattr(sys.modules[clash[0]], "__file__", None)),
                          name=clash[0])
    sys.meta_path.insert(0, CffiFinder)


def _from_pth():
    # Called by jitffi_as_cffi.pth only when the variable is set. A failure must not stop
    # the interpreter from starting (site.py would print a traceback and go on anyway).
    try:
        install()
    except ImportError as e:
        sys.stderr.write("jitffi: %s\n" % (e,))
