"""`cffi.backend_ctypes` under the switch.

cffi's ctypes backend is a second, slower implementation of its backend on top of
ctypes, for interpreters without `_cffi_backend`. jitffi has one backend; code that asks
for the ctypes one (`FFI(backend=CTypesBackend())`) gets an FFI on jitffi's backend, which
does everything the ctypes backend does (and what it could not: its documented gaps,
such as unions or structs by value in callbacks, are not gaps here).
"""
__jitffi__ = True


class CTypesBackend:
    """Stands for jitffi's own backend: `FFI(backend=CTypesBackend())` is `FFI()`."""

    __jitffi__ = True

    def __repr__(self):
        return "<cffi.backend_ctypes.CTypesBackend (jitffi's backend)>"

    def __getattr__(self, name):
        # What code reads off a backend (`__version__`, `RTLD_*`, `FFI_DEFAULT_ABI`...)
        # is the backend module's.
        from jitffi import _cffi_backend
        try:
            return getattr(_cffi_backend, name)
        except AttributeError:
            raise AttributeError("cffi.backend_ctypes.CTypesBackend (jitffi) has no attribute %r"
                                 % (name,)) from None
