"""`cffi._imp_emulation` under the switch: the few `imp` functions cffi keeps for code
written against the removed `imp` module (cffi's own tests import `load_dynamic`)."""
import importlib.machinery
import importlib.util
import sys

__jitffi__ = True

C_EXTENSION = 3


def get_suffixes():
    """(suffix, mode, kind) for each extension-module suffix, as imp gave them."""
    return [(s, "rb", C_EXTENSION) for s in importlib.machinery.EXTENSION_SUFFIXES]


def load_dynamic(name, path, file=None):
    """Loads the extension module at `path` as `name` (and registers it in
    sys.modules, as imp.load_dynamic did)."""
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
