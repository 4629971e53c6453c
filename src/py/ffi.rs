//! The `FFI` class's methods: a facade, each method a thin call into the module that does
//! the job (`ops/*`, `errno.rs`, `lib_object`, `callback::api`). The class itself and the state it holds are in
//! `state.rs`. `jitffi.FFI` (Python) subclasses it for the slow paths written in Python.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use super::buffer::CBuffer;
use super::callback::api;
use super::cdata::CData;
use super::ctype::CType;
use super::errno;
use super::lib_object::{self, Lib};
use super::ops::allocator::{self, Allocator};
use super::ops::outofline::{self, OutOfLineModule};
use super::ops::{cast, declare, memory, new, owning, string, types};
use super::state::{builtin, FfiShared};

pub use super::errno::{get_saved_errno, restore_errno, save_errno, set_saved_errno};
pub use super::ops::fast::install as install_fast_methods;
pub use super::ops::new::new_cdata;
pub use super::ops::types::resolve_ctype;
pub use super::state::FFI;

// The method names are cffi's API (`new`, `from_buffer`, ...), not Rust constructors.
#[allow(clippy::new_ret_no_self, clippy::wrong_self_convention)]
#[pymethods]
impl FFI {
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        py: Python<'_>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> FFI {
        FFI {
            shared: FfiShared::new(py),
        }
    }

    /// Declares the C types, functions, globals and constants in `csource`.
    /// `override=True` allows redeclaring names; `packed=True` or `pack=n` lays out the
    /// structs declared here with at most that alignment.
    #[pyo3(signature = (csource, r#override=false, packed=false, pack=None))]
    fn cdef(
        &self,
        py: Python<'_>,
        csource: &Bound<'_, PyAny>,
        r#override: bool,
        packed: bool,
        pack: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        declare::cdef(py, &self.shared, csource, r#override, packed, pack)
    }

    /// Makes the declarations of another FFI (and its libs' names) visible here.
    fn include(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        declare::include(py, &self.shared, other)
    }

    /// The names declared: (typedef names, struct names, union names), each sorted.
    fn list_types(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.shared.lock_ns().list_types()
    }

    /// The ctype of a C type string, of a cdata, or of a C function of a lib.
    #[pyo3(name = "typeof")]
    fn typeof_<'py>(&self, cdecl: &Bound<'py, PyAny>) -> PyResult<Bound<'py, CType>> {
        types::typeof_(&self.shared, cdecl)
    }

    /// Size in bytes of a C type (string or ctype) or of a cdata's value.
    fn sizeof(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
        types::sizeof(py, &self.shared, obj)
    }

    /// Natural alignment in bytes of a C type (string or ctype).
    fn alignof(&self, obj: &Bound<'_, PyAny>) -> PyResult<usize> {
        types::alignof(&self.shared, obj)
    }

    /// Byte offset of a field (or of a chain of fields and array indexes) in a
    /// struct or union type.
    #[pyo3(signature = (cdecl, *fields_or_indexes))]
    fn offsetof(
        &self,
        py: Python<'_>,
        cdecl: &Bound<'_, PyAny>,
        fields_or_indexes: &Bound<'_, PyTuple>,
    ) -> PyResult<usize> {
        types::offsetof(py, &self.shared, cdecl, fields_or_indexes)
    }

    /// The C text of a type; `replace_with` is put where a declared name would go
    /// (`getctype("int[5]", "a")` is 'int a[5]').
    #[pyo3(signature = (cdecl, replace_with=""))]
    fn getctype(&self, cdecl: &Bound<'_, PyAny>, replace_with: &str) -> PyResult<String> {
        types::getctype(&self.shared, cdecl, replace_with)
    }

    /// Allocates a new C object of the pointer or array type `cdecl`, zero-filled and
    /// initialized from `init`, and returns an owning cdata: the memory is freed when it
    /// is collected (or at `release`). An array type without a length takes it from
    /// `init` (an int or a sequence).
    #[pyo3(signature = (cdecl, init=None))]
    fn new(
        &self,
        py: Python<'_>,
        cdecl: &Bound<'_, PyAny>,
        init: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<CData>> {
        new::new_cdata(py, &types::resolve_ctype(&self.shared, cdecl)?, init, None)
    }

    /// A function like `new` that allocates with `alloc(size)` and frees with
    /// `free(ptr)` (C functions from a lib, or None for the default), optionally
    /// without zero-filling.
    #[pyo3(signature = (alloc=None, free=None, should_clear_after_alloc=true))]
    fn new_allocator(
        &self,
        alloc: Option<Py<PyAny>>,
        free: Option<Py<PyAny>>,
        should_clear_after_alloc: bool,
        py: Python<'_>,
    ) -> PyResult<Allocator> {
        allocator::new_allocator(py, &self.shared, alloc, free, should_clear_after_alloc)
    }

    /// A cdata of type `cdecl` from a cdata or a Python number, converted as C
    /// would (pointers and integers reinterpreted, floats truncated).
    fn cast(
        &self,
        py: Python<'_>,
        cdecl: &Bound<'_, PyAny>,
        source: &Bound<'_, PyAny>,
    ) -> PyResult<Py<CData>> {
        cast::cast_value(py, &types::resolve_ctype(&self.shared, cdecl)?, source)
    }

    /// The Python value of a cdata: bytes of a char array or pointer up to the first
    /// NUL (or `maxlen`), str of a wchar_t/char16_t/char32_t one, an enum's name, a
    /// number's value.
    #[pyo3(signature = (cdata, maxlen=-1))]
    fn string(
        &self,
        py: Python<'_>,
        cdata: &Bound<'_, PyAny>,
        maxlen: isize,
    ) -> PyResult<Py<PyAny>> {
        string::string_of(py, cdata, maxlen)
    }

    /// The first `length` items a pointer or array cdata points to: bytes, str, or a
    /// list.
    fn unpack(
        &self,
        py: Python<'_>,
        cdata: &Bound<'_, PyAny>,
        length: isize,
    ) -> PyResult<Py<PyAny>> {
        string::unpack_of(py, cdata, length)
    }

    /// A cdata of the array or pointer type `cdecl` pointing into the memory of a
    /// Python buffer (bytearray, array.array, memoryview...) without a copy; the
    /// buffer stays alive as long as the cdata.
    #[pyo3(signature = (cdecl, python_buffer=None, require_writable=false))]
    fn from_buffer(
        &self,
        py: Python<'_>,
        cdecl: &Bound<'_, PyAny>,
        python_buffer: Option<&Bound<'_, PyAny>>,
        require_writable: bool,
    ) -> PyResult<Py<CData>> {
        memory::from_buffer(py, &self.shared, cdecl, python_buffer, require_writable)
    }

    /// Copies `n` bytes from `src` to `dest` (cdata or Python buffers; the regions
    /// may overlap).
    fn memmove(
        &self,
        py: Python<'_>,
        dest: &Bound<'_, PyAny>,
        src: &Bound<'_, PyAny>,
        n: isize,
    ) -> PyResult<()> {
        memory::memmove(py, dest, src, n)
    }

    /// A new cdata pointing where `cdata` does that calls `destructor(cdata)` when it
    /// is collected; `destructor=None` removes the destructor of a cdata from `gc`.
    #[pyo3(signature = (cdata, destructor, size=0))]
    fn gc(
        &self,
        py: Python<'_>,
        cdata: &Bound<'_, PyAny>,
        destructor: &Bound<'_, PyAny>,
        size: isize,
    ) -> PyResult<Py<PyAny>> {
        let _ = size; // cffi's memory-pressure hint: nothing to do with it here
        owning::gc(py, cdata, destructor)
    }

    /// The address of a struct/union cdata, or of a field (or item) in it, as a
    /// pointer cdata.
    #[pyo3(signature = (cdata, *fields_or_indexes))]
    fn addressof(
        &self,
        py: Python<'_>,
        cdata: &Bound<'_, PyAny>,
        fields_or_indexes: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        owning::addressof(py, &self.shared, cdata, fields_or_indexes)
    }

    /// A `void *` cdata standing for the Python object `x` (kept alive while the
    /// handle lives); `from_handle` gives the object back.
    fn new_handle(&self, py: Python<'_>, x: Py<PyAny>) -> PyResult<Py<CData>> {
        owning::new_handle(py, &self.shared, x)
    }

    /// The Python object a handle from `new_handle` stands for.
    fn from_handle(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        owning::from_handle(py, x)
    }

    /// Frees the memory of an owning cdata (from `new`, `new_allocator`, `gc`,
    /// `from_buffer`) now instead of when it is collected; using it afterwards
    /// raises.
    fn release(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<()> {
        owning::release(py, x)
    }

    /// The C `errno` saved after the last C call on this thread (settable: the
    /// value C sees at the next call).
    #[getter]
    fn get_errno(&self) -> i32 {
        errno::get_saved_errno()
    }

    #[setter]
    fn set_errno(&self, v: i32) {
        errno::set_saved_errno(v)
    }

    #[classattr]
    #[allow(non_snake_case)]
    fn NULL(py: Python<'_>) -> PyResult<Py<CData>> {
        let b = builtin(py);
        let t = b.void_ptr_type();
        CData::new_pointer(py, b.ctype_of(py, &t), 0)
    }

    #[classattr]
    #[allow(non_snake_case)]
    fn CData(py: Python<'_>) -> Py<PyType> {
        py.get_type::<CData>().unbind()
    }

    #[classattr]
    #[allow(non_snake_case)]
    fn CType(py: Python<'_>) -> Py<PyType> {
        py.get_type::<CType>().unbind()
    }

    #[classattr]
    fn buffer(py: Python<'_>) -> Py<PyType> {
        py.get_type::<CBuffer>().unbind()
    }

    #[classattr]
    const RTLD_LAZY: i32 = libc::RTLD_LAZY;
    #[classattr]
    const RTLD_NOW: i32 = libc::RTLD_NOW;
    #[classattr]
    const RTLD_GLOBAL: i32 = libc::RTLD_GLOBAL;
    #[classattr]
    const RTLD_LOCAL: i32 = libc::RTLD_LOCAL;
    #[classattr]
    const RTLD_NODELETE: i32 = libc::RTLD_NODELETE;
    #[classattr]
    const RTLD_NOLOAD: i32 = libc::RTLD_NOLOAD;
    #[classattr]
    const RTLD_DEEPBIND: i32 = libc::RTLD_DEEPBIND;

    // Libraries: `lib_object` (the public `dlopen`/`dlclose` are the Python subclass's;
    // python/jitffi/_lib.py does the glue around these).
    /// `_dlopen(name, flags=0, release_gil=True, path=None)`: the lib state for `name`
    /// (see `lib_object::dlopen`). `release_gil=False` is jitffi's opt-out for tiny hot
    /// functions: calls keep the GIL and do not save/restore errno (`ffi.errno` is then
    /// not updated by those calls).
    #[pyo3(signature = (name, flags = 0, release_gil = true, path = None))]
    fn _dlopen(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyAny>,
        flags: i32,
        release_gil: bool,
        path: Option<&str>,
    ) -> PyResult<Lib> {
        let shared = slf.get().shared().clone();
        lib_object::dlopen(
            shared,
            slf.clone().into_any().unbind(),
            name,
            flags,
            release_gil,
            path,
        )
    }

    /// Closes the lib's handle (see `lib_object::dlclose`).
    fn _dlclose(&self, lib: &Bound<'_, PyAny>) -> PyResult<()> {
        lib_object::dlclose(lib)
    }

    /// Whether any global variable is declared.
    fn _declares_globals(&self) -> bool {
        lib_object::declares_globals(self.shared())
    }

    /// The integer constants declared so far (`ffi._parser._int_constants`).
    fn _int_constants(&self) -> Vec<(String, i128)> {
        declare::int_constants(self.shared())
    }

    /// What was declared, as cffi's parser names it (`ffi._parser._declarations` keys).
    fn _declared_keys(&self) -> Vec<String> {
        declare::declared_keys(self.shared())
    }

    /// What `name` was declared as: ("function", fn-pointer CType), ("variable", CType),
    /// ("constant", int), or None (`ops::declare::declared`).
    fn _declared(&self, py: Python<'_>, name: &str) -> PyResult<Option<(&'static str, Py<PyAny>)>> {
        declare::declared(py, self.shared(), name)
    }

    // Out-of-line modules: `ops::outofline`.
    /// The text of the out-of-line module `module_name` for what this FFI declared;
    /// `included` pairs each FFI it include()d with that FFI's module name.
    #[pyo3(signature = (module_name, backend, included=Vec::new()))]
    fn _emit_python_module(
        &self,
        module_name: &str,
        backend: &str,
        included: Vec<(Bound<'_, FFI>, String)>,
    ) -> PyResult<String> {
        let inc: Vec<_> = included
            .iter()
            .map(|(f, n)| (f.get().shared().clone(), n.clone()))
            .collect();
        outofline::emit(self.shared(), module_name, backend, &inc)
    }

    /// Fills this new FFI from an out-of-line module's tables (`_cffi_backend.FFI`).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (module_name, version, types, globals, struct_unions, enums, typenames, includes))]
    fn _load_tables(
        &self,
        module_name: &str,
        version: Option<i64>,
        types: &Bound<'_, PyAny>,
        globals: Option<&Bound<'_, PyAny>>,
        struct_unions: Option<&Bound<'_, PyAny>>,
        enums: Option<&Bound<'_, PyAny>>,
        typenames: Option<&Bound<'_, PyAny>>,
        includes: Vec<Bound<'_, OutOfLineModule>>,
    ) -> PyResult<OutOfLineModule> {
        let py = types.py();
        let r = outofline::load(
            self.shared(),
            module_name,
            version,
            types,
            globals,
            struct_unions,
            enums,
            typenames,
            includes,
        );
        self.shared().clear_type_cache(py);
        r
    }

    // Callbacks: `callback::api`.
    /// `ffi.callback(cdecl, python_callable=None, error=None, onerror=None)`; without
    /// `python_callable`, a decorator.
    #[pyo3(signature = (cdecl, python_callable=None, error=None, onerror=None))]
    fn callback(
        slf: &Bound<'_, Self>,
        cdecl: &Bound<'_, PyAny>,
        python_callable: Option<&Bound<'_, PyAny>>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        api::ffi_callback(
            slf.py(),
            slf.as_any(),
            &slf.get().shared,
            cdecl,
            python_callable,
            error,
            onerror,
        )
    }

    /// `@ffi.def_extern(name=None, error=None, onerror=None)`: binds the decorated
    /// function to an `extern "Python"` declaration (ABI mode too, unlike cffi).
    #[pyo3(signature = (name=None, error=None, onerror=None))]
    fn def_extern(
        slf: &Bound<'_, Self>,
        name: Option<String>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        api::ffi_def_extern(slf.py(), slf.as_any(), name.as_deref(), error, onerror)
    }

    /// What the `def_extern` decorator calls: binds `func` (named `name`, else its
    /// `__name__`).
    #[pyo3(signature = (func, name=None, error=None, onerror=None))]
    fn _def_extern_bind(
        slf: &Bound<'_, Self>,
        func: &Bound<'_, PyAny>,
        name: Option<String>,
        error: Option<&Bound<'_, PyAny>>,
        onerror: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        api::def_extern_bind(
            slf.py(),
            slf.as_any(),
            &slf.get().shared,
            func,
            name.as_deref(),
            error,
            onerror,
        )
    }

    /// What the `extern "Python"` table calls at a name's first use: a new cdata.
    fn _extern_python_new(slf: &Bound<'_, Self>, name: &str) -> PyResult<Py<CData>> {
        api::new_extern_python_cdata(slf.py(), &slf.get().shared, name)
    }
}
