"""The decorator forms of `ffi.callback` and `ffi.def_extern` (cold glue; creating and
binding callbacks stays in Rust: src/py/callback/api.rs)."""


def callback_decorator(ffi, ctype, error, onerror):
    """`@ffi.callback(cdecl, error=..., onerror=...)`: the decorated function becomes
    the callback cdata."""
    def callback_decorator(python_callable):
        if python_callable is None:
            raise TypeError("the 'python_callable' argument is not callable")
        return ffi.callback(ctype, python_callable, error, onerror)
    return callback_decorator


def def_extern_decorator(ffi, name, error, onerror):
    """`@ffi.def_extern(name=None, error=..., onerror=...)`: binds the decorated function
    to the `extern "Python"` declaration of that name and returns it unchanged."""
    def def_extern_decorator(func):
        ffi._def_extern_bind(func, name, error, onerror)
        return func
    return def_extern_decorator
