//! What a cdata does as a Python object: its methods (`__getitem__`, `__repr__`,
//! comparisons, arithmetic, `__call__`, `with`) and the iterator over an array cdata.

use pyo3::exceptions::{PyAttributeError, PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PySlice, PyTuple};

use super::cdata::{
    call_hook, custom_target_hook, invalid_addr, CData, Owner, F_OWNING_VIEW, F_SLICED,
};
use super::convert;
use super::ctype::CField;
use super::gil::GilCopy;
use super::handles;
use super::longdouble;
use crate::types::model::{Kind, PrimClass, TypeRef};

impl CData {
    /// A primitive cdata as the Python number used for comparisons and hashing.
    fn as_number(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Kind::Prim(pi) = &self.ty().kind {
            if matches!(pi.class, PrimClass::Char | PrimClass::WideChar) {
                // SAFETY: the 16 value bytes hold the character.
                let v = unsafe {
                    convert::read_prim(py, &self.ctype.get().ffi, self.ty(), pi, self.value_ptr())?
                };
                return Ok(Some(v));
            }
        }
        if let Some(v) = self.int_value() {
            return Ok(Some(v.into_pyobject(py)?.into_any().unbind()));
        }
        if let Some(f) = self.float_value() {
            return Ok(Some(convert::f64_to_py(py, f)?));
        }
        if let Kind::Prim(pi) = &self.ty().kind {
            if pi.class == PrimClass::Complex {
                let p = self.value_ptr();
                let h = pi.size / 2;
                // SAFETY: the 16 value bytes hold both halves of the complex value.
                return Ok(Some(unsafe {
                    convert::complex_to_py(
                        py,
                        convert::load_f64(p, h),
                        convert::load_f64(p.add(h), h),
                    )?
                }));
            }
        }
        Ok(None)
    }

    pub fn repr_string(&self, py: Python<'_>) -> PyResult<String> {
        let ty = self.ty();
        let cname = ty.cname();
        let owning = |n: usize| format!("<cdata '{cname}' owning {n} bytes>");
        match &ty.kind {
            Kind::Prim(pi) => {
                let text = match pi.class {
                    PrimClass::LongDouble => {
                        longdouble::format_e(self.float_value().unwrap_or(0.0))
                    }
                    _ => {
                        // SAFETY: the 16 value bytes hold the primitive.
                        let v = unsafe {
                            convert::read_prim(py, &self.ctype.get().ffi, ty, pi, self.value_ptr())?
                        };
                        v.bind(py).repr()?.to_string()
                    }
                };
                Ok(format!("<cdata '{cname}' {text}>"))
            }
            Kind::Enum(e) => {
                let v = self.int_value().unwrap_or(0);
                match e.items.iter().find(|(_, x)| *x == v) {
                    Some((n, _)) => Ok(format!("<cdata '{cname}' {v}: {n}>")),
                    None => Ok(format!("<cdata '{cname}' {v}>")),
                }
            }
            _ => {
                // What the owner says, read under the borrow; the `repr()` of Python objects
                // (which can run any code) comes after it.
                enum Shown {
                    Text(String),
                    HandleTo(Option<Py<PyAny>>),
                    Calling(Py<PyAny>),
                    Address,
                }
                let shown = {
                    let st = self.state.borrow(py);
                    match &st.owner {
                        Owner::Released => Shown::Text(format!("<cdata '{cname}' released>")),
                        Owner::Malloc | Owner::Inline | Owner::Allocator { .. } => {
                            Shown::Text(owning(self.alloc_size))
                        }
                        Owner::Buffer { type_name, .. } => {
                            Shown::Text(if matches!(ty.kind, Kind::Pointer(_)) {
                                format!("<cdata '{cname}' buffer from '{type_name}' object>")
                            } else {
                                format!(
                                    "<cdata '{cname}' buffer len {} from '{type_name}' object>",
                                    self.length
                                )
                            })
                        }
                        Owner::Handle => Shown::HandleTo(handles::lookup(py, self.addr)),
                        Owner::Custom { repr, payload } => match custom_target_hook()
                            .filter(|_| repr.is_empty())
                            .and_then(|h| h(py, &**payload))
                        {
                            Some(obj) => Shown::Calling(obj),
                            None => Shown::Text(format!("<cdata '{cname}' {repr}>")),
                        },
                        Owner::View(k) if self.flags() & F_OWNING_VIEW != 0 => {
                            Shown::Text(owning(k.get().alloc_size))
                        }
                        _ => Shown::Address,
                    }
                };
                match shown {
                    Shown::Text(t) => Ok(t),
                    Shown::HandleTo(obj) => {
                        let r = match obj {
                            Some(o) => o.bind(py).repr()?.to_string(),
                            None => "?".into(),
                        };
                        Ok(format!("<cdata '{cname}' handle to {r}>"))
                    }
                    Shown::Calling(obj) => Ok(format!(
                        "<cdata '{cname}' calling {}>",
                        obj.bind(py).repr()?
                    )),
                    Shown::Address => {
                        if self.flags() & F_SLICED != 0 {
                            return Ok(format!("<cdata '{cname}' sliced length {}>", self.length));
                        }
                        let shown = if matches!(ty.kind, Kind::Record(_)) {
                            format!("{cname} &")
                        } else {
                            cname.clone()
                        };
                        if self.addr == 0 {
                            Ok(format!("<cdata '{shown}' NULL>"))
                        } else {
                            Ok(format!("<cdata '{shown}' 0x{:x}>", self.addr))
                        }
                    }
                }
            }
        }
    }
}

#[pyclass(module = "jitffi._jitffi", name = "CDataIter", frozen)]
pub struct CDataIter {
    arr: Py<CData>,
    idx: GilCopy<usize>,
}

#[pymethods]
impl CDataIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let arr = self.arr.bind(py);
        let me = arr.get();
        let i = self.idx.get(py);
        if i >= me.length {
            return Ok(None);
        }
        self.idx.set(py, i + 1);
        CData::read_item(arr, i as isize).map(Some)
    }
}

#[pymethods]
impl CData {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.repr_string(py)
    }

    fn __getattribute__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if let Some((rec, through_ptr)) = me.record_target(py) {
            if let Some(table) = rec.field_table(py) {
                // SAFETY: `name` is a live object and the GIL is held (`py`).
                let p = unsafe { table.find(name.as_ptr()) };
                if !p.is_null() {
                    // SAFETY: the table only holds CField objects.
                    let f =
                        unsafe { Bound::from_borrowed_ptr(py, p).cast_into_unchecked::<CField>() };
                    return CData::read_field(slf, through_ptr, f.get());
                }
            }
        }
        // SAFETY: both objects are live (borrowed for the call) and the GIL is held; the
        // result is a new reference or null with the exception set.
        unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyObject_GenericGetAttr(slf.as_ptr(), name.as_ptr()),
            )
        }
        .map(|b| b.unbind())
    }

    /// Called by pyo3 when `__getattribute__` raised AttributeError: cffi's message.
    fn __getattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if let Some((rec, _)) = me.record_target(py) {
            if rec.field_table(py).is_none() {
                return Err(PyAttributeError::new_err(format!(
                    "cdata '{}' points to an opaque type: cannot read fields",
                    me.ty().cname()
                )));
            }
            return Err(me.no_field(name));
        }
        Err(PyAttributeError::new_err(format!(
            "cdata '{}' has no attribute '{}'",
            me.ty().cname(),
            name
        )))
    }

    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        if let Some((rec, through_ptr)) = me.record_target(py) {
            if let Some(f) = me.lookup_field(py, rec, name)? {
                return CData::write_field(slf, through_ptr, f.get(), value);
            }
            return Err(me.no_field(name));
        }
        Err(PyAttributeError::new_err(format!(
            "cdata '{}' has no attribute '{}'",
            me.ty().cname(),
            name
        )))
    }

    fn __delattr__(&self, name: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyAttributeError::new_err(format!(
            "cannot delete attribute '{}' of cdata '{}'",
            name,
            self.ty().cname()
        )))
    }

    fn __getitem__(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        // SAFETY: `key` is a live object and the GIL is held; `PyLong_AsSsize_t` is only
        // given an int.
        unsafe {
            if ffi::PyLong_Check(key.as_ptr()) != 0 {
                let i = ffi::PyLong_AsSsize_t(key.as_ptr());
                if i == -1 {
                    if let Some(e) = PyErr::take(slf.py()) {
                        return Err(PyIndexError::new_err(e.value(slf.py()).to_string()));
                    }
                }
                return CData::read_item(slf, i);
            }
        }
        if let Ok(s) = key.cast::<PySlice>() {
            return CData::get_slice(slf, s);
        }
        let i: isize = key.extract()?;
        CData::read_item(slf, i)
    }

    fn __setitem__(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        if let Ok(s) = key.cast::<PySlice>() {
            return CData::set_slice(slf, s, value);
        }
        let i: isize = key.extract()?;
        let me = slf.get();
        let (addr, ict) = me.item_addr(py, i)?;
        let ic = ict.get();
        let isz = ic.ty.size().unwrap_or(0);
        // SAFETY: `addr` is item `i`, checked by `item_addr` (array bounds, or the user's
        // pointer checked against invalid addresses), and holds `isz` bytes.
        unsafe { convert::write_sized(&ic.ty, value, addr as *mut u8, isz) }
    }

    fn __delitem__(&self, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyTypeError::new_err("cdata items cannot be deleted"))
    }

    fn __len__(&self) -> PyResult<usize> {
        match self.ty().kind {
            Kind::Array(..) => Ok(self.length),
            _ => Err(PyTypeError::new_err(format!(
                "cdata of type '{}' has no len()",
                self.ty().cname()
            ))),
        }
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<Py<CDataIter>> {
        let me = slf.get();
        match me.ty().kind {
            Kind::Array(..) => Py::new(
                slf.py(),
                CDataIter {
                    arr: slf.clone().unbind(),
                    idx: GilCopy::new(0),
                },
            ),
            _ => Err(PyTypeError::new_err(format!(
                "cdata '{}' does not support iteration",
                me.ty().cname()
            ))),
        }
    }

    fn __bool__(&self) -> bool {
        if let Some(v) = self.int_value() {
            return v != 0;
        }
        if let Some(f) = self.float_value() {
            return f != 0.0;
        }
        match &self.ty().kind {
            Kind::Prim(pi) if pi.class == PrimClass::Complex => !self.value_is_zero(),
            Kind::Pointer(_) | Kind::FuncPtr(_) => self.addr != 0,
            _ => true,
        }
    }

    fn __int__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(v) = self.int_value() {
            return Ok(v.into_pyobject(py)?.into_any().unbind());
        }
        if let Some(f) = self.float_value() {
            // SAFETY: the GIL is held (`py`); the result is a new reference or null with
            // the exception set.
            return unsafe {
                Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromDouble(f)).map(Bound::unbind)
            };
        }
        Err(PyTypeError::new_err(format!(
            "int() not supported on cdata '{}'",
            self.ty().cname()
        )))
    }

    fn __float__(&self) -> PyResult<f64> {
        if let Some(f) = self.float_value() {
            return Ok(f);
        }
        Err(PyTypeError::new_err(format!(
            "float() not supported on cdata '{}'",
            self.ty().cname()
        )))
    }

    fn __complex__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Kind::Prim(pi) = &self.ty().kind {
            if pi.class == PrimClass::Complex {
                return Ok(self.as_number(py)?.unwrap_or_else(|| py.None()));
            }
        }
        if let Some(f) = self.float_value() {
            return convert::complex_to_py(py, f, 0.0);
        }
        Err(PyTypeError::new_err(format!(
            "complex() not supported on cdata '{}'",
            self.ty().cname()
        )))
    }

    fn __richcmp__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if me.is_primitive() {
            let is_ld = |c: &CData| matches!(&c.ty().kind, Kind::Prim(pi) if pi.class == PrimClass::LongDouble);
            if is_ld(me)
                || other
                    .cast::<CData>()
                    .map(|o| is_ld(o.get()))
                    .unwrap_or(false)
            {
                return Err(pyo3::exceptions::PyNotImplementedError::new_err(
                    "cannot use <cdata 'long double'> in a comparison",
                ));
            }
            let Some(a) = me.as_number(py)? else {
                return Ok(py.NotImplemented());
            };
            let b = match other.cast::<CData>() {
                Ok(o) => {
                    let o = o.get();
                    if !o.is_primitive() {
                        return Ok(py.NotImplemented());
                    }
                    match o.as_number(py)? {
                        Some(b) => b.into_bound(py),
                        None => return Ok(py.NotImplemented()),
                    }
                }
                Err(_) => other.clone(),
            };
            return Ok(a.bind(py).rich_compare(b, op)?.unbind());
        }
        let b = match other.cast::<CData>() {
            Ok(o) => {
                let o = o.get();
                if o.is_primitive() {
                    return Ok(py.NotImplemented());
                }
                o.addr
            }
            // A function taken from a lib compares as its function-pointer cdata.
            Err(_) => match super::cdata::lib_function_address(other) {
                Some((addr, _)) => addr,
                None => return Ok(py.NotImplemented()),
            },
        };
        let a = me.addr;
        let r = match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
        };
        Ok(convert::bool_to_py(py, r))
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        if self.is_primitive() {
            if let Some(n) = self.as_number(py)? {
                return n.bind(py).hash();
            }
        }
        self.addr.into_pyobject(py)?.hash()
    }

    fn __add__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        // SAFETY: `other` is a live object and the GIL is held.
        if unsafe { ffi::PyLong_Check(other.as_ptr()) } == 0 {
            return Ok(slf.py().NotImplemented());
        }
        if slf.get().is_primitive() {
            return Err(PyTypeError::new_err(format!(
                "cannot add a cdata '{}' and a number",
                slf.get().ty().cname()
            )));
        }
        CData::ptr_add(slf, other.extract()?)
    }

    fn __radd__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        CData::__add__(slf, other)
    }

    fn __sub__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if me.is_primitive() {
            return Ok(py.NotImplemented());
        }
        // SAFETY: `other` is a live object and the GIL is held.
        if unsafe { ffi::PyLong_Check(other.as_ptr()) } != 0 {
            let n: isize = other.extract()?;
            return CData::ptr_add(
                slf,
                n.checked_neg().ok_or_else(|| {
                    pyo3::exceptions::PyOverflowError::new_err("offset too large")
                })?,
            );
        }
        let Ok(o) = other.cast::<CData>() else {
            return Ok(py.NotImplemented());
        };
        let o = o.get();
        let item_of = |t: &TypeRef| match &t.kind {
            Kind::Pointer(i) | Kind::Array(i, _) => Some(i.clone()),
            _ => None,
        };
        match (item_of(me.ty()), item_of(o.ty())) {
            (Some(a), Some(b)) if convert::same_type(&a, &b) => {
                let isz = a.size().unwrap_or(1).max(1) as isize;
                let d = (me.addr as isize).wrapping_sub(o.addr as isize) / isz;
                Ok(d.into_pyobject(py)?.into_any().unbind())
            }
            _ => Err(PyTypeError::new_err(format!(
                "cannot subtract cdata '{}' and cdata '{}'",
                me.ty().cname(),
                o.ty().cname()
            ))),
        }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let me = slf.get();
        if !matches!(me.ty().kind, Kind::FuncPtr(_)) {
            return Err(PyTypeError::new_err(format!(
                "cdata '{}' is not callable",
                me.ty().cname()
            )));
        }
        if invalid_addr(me.addr) {
            return Err(PyRuntimeError::new_err(format!(
                "cannot call NULL or invalid function pointer <cdata '{}' 0x{:x}>",
                me.ty().cname(),
                me.addr
            )));
        }
        match call_hook() {
            Some(h) => h(slf, args, kwargs),
            None => Err(pyo3::exceptions::PyNotImplementedError::new_err(
                "calling C functions is not available in this build",
            )),
        }
    }

    fn __dir__(&self, py: Python<'_>) -> Vec<String> {
        match self.record_target(py) {
            Some((rec, _)) => match rec.field_table(py) {
                Some(t) => t.list.iter().map(|f| f.get().name.clone()).collect(),
                None => vec![],
            },
            None => vec![],
        }
    }

    /// As cffi: `with` is for what `ffi.release()` accepts, checked on entry.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let py = slf.py();
        let c = slf.get();
        if !c.owns_memory(py) && !c.is_handle(py) && !c.is_released(py) {
            return Err(PyValueError::new_err(
                "only 'cdata' object from ffi.new(), ffi.gc(), ffi.from_buffer() or ffi.new_allocator()() can be used with the 'with' keyword or ffi.release()",
            ));
        }
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.release_now(py)?;
        Ok(false)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(format!(
            "cannot pickle cdata '{}'",
            self.ty().cname()
        )))
    }
}
