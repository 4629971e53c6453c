"""Cold glue of callbacks: the decorator forms of `ffi.callback` and `ffi.def_extern`,
and the `extern "Python"` table. Creating and binding callbacks stays in Rust
(src/py/callback/api.rs)."""


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


def extern_python(ffi, name):
    """The cdata of `extern "Python"` function `name`: one per name and FFI, kept in
    the FFI's `__dict__` (so it lives as long as the FFI, and C may keep its address
    across `def_extern` calls)."""
    try:
        attrs = ffi.__dict__
    except AttributeError:
        raise TypeError('extern "Python" functions need a jitffi.FFI object (with a __dict__)') from None
    table = attrs.get("_jitffi_extern_python")
    if table is None:
        table = attrs["_jitffi_extern_python"] = {}
    cd = table.get(name)
    if cd is None:
        cd = table[name] = ffi._extern_python_new(name)
    return cd
