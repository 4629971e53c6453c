//! Access to the memory a cdata holds or points to: items (`p[i]`), fields (`p.x`),
//! slices (`p[a:b]`) and pointer arithmetic, converting through `convert`. Field access
//! goes to the record CType's field table: a dict from interned name to `CField` (offset,
//! bit position, field CType), built once per record type.

use pyo3::exceptions::{PyAttributeError, PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PySlice;

use super::cdata::{invalid_addr, null_err, CData, F_OWNING_VIEW, F_SLICED};
use super::convert::{
    read_bitfield, read_prim, read_with_ctype, same_type, write_bitfield, write_prim, write_sized,
};
use super::ctype::{CField, CType};
use crate::types::model::{Kind, PrimClass, PrimInfo, TypeRef};

impl CData {
    /// Fast path of `item_addr` for arrays/pointers of primitives: (address, item type,
    /// its PrimInfo), or None when the items are not primitives.
    #[inline(always)]
    pub(super) fn prim_item_addr<'a>(
        &'a self,
        py: Python<'_>,
        i: isize,
    ) -> PyResult<Option<(usize, &'a TypeRef, &'a PrimInfo)>> {
        let ty = self.ty();
        let (item, is_array) = match &ty.kind {
            Kind::Array(item, _) => (item, true),
            Kind::Pointer(item) => (item, false),
            _ => return Ok(None),
        };
        let Kind::Prim(pi) = &item.kind else {
            return Ok(None);
        };
        self.check_alive(py)?;
        if is_array {
            if i < 0 || i as usize >= self.length || invalid_addr(self.addr) {
                return Ok(None); // item_addr raises the precise error
            }
            return Ok(Some((self.addr + i as usize * pi.size, item, pi)));
        }
        if i != 0 && self.from_new(py) {
            return Ok(None); // item_addr raises the precise error
        }
        let a = self.addr.wrapping_add((i as usize).wrapping_mul(pi.size));
        if invalid_addr(self.addr) || invalid_addr(a) {
            return Ok(None);
        }
        Ok(Some((a, item, pi)))
    }

    /// Address and CType of item `i` (arrays bounds-checked, pointers NULL-checked).
    #[inline]
    pub(super) fn item_addr<'a>(
        &'a self,
        py: Python<'_>,
        i: isize,
    ) -> PyResult<(usize, &'a Py<CType>)> {
        let ct = self.ctype.get();
        match &ct.ty.kind {
            Kind::Array(item, _) => {
                if i < 0 {
                    return Err(PyIndexError::new_err("negative index"));
                }
                if i as usize >= self.length {
                    return Err(PyIndexError::new_err(format!(
                        "index too large for cdata '{}' (expected {} < {})",
                        ct.ty.cname(),
                        i,
                        self.length
                    )));
                }
                self.check_alive(py)?;
                if invalid_addr(self.addr) {
                    return Err(null_err(&ct.ty.cname()));
                }
                let isz = item.size().unwrap_or(0);
                let ict = ct
                    .item_ctype(py)
                    .ok_or_else(|| PyTypeError::new_err("array without item type"))?;
                Ok((self.addr + i as usize * isz, ict))
            }
            Kind::Pointer(item) => {
                self.check_alive(py)?;
                if i != 0 && self.from_new(py) {
                    // As cffi: `ffi.new("T *")` points to one T.
                    return Err(PyIndexError::new_err(format!(
                        "cdata '{}' can only be indexed by 0",
                        ct.ty.cname()
                    )));
                }
                let isz = match item.size() {
                    Some(s) => s,
                    None => {
                        return Err(PyTypeError::new_err(format!(
                            "cdata of type '{}' cannot be indexed: items of unknown size",
                            ct.ty.cname()
                        )))
                    }
                };
                let a = self.addr.wrapping_add((i as usize).wrapping_mul(isz));
                if invalid_addr(self.addr) || invalid_addr(a) {
                    return Err(null_err(&ct.ty.cname()));
                }
                let ict = ct
                    .item_ctype(py)
                    .ok_or_else(|| PyTypeError::new_err("pointer without item type"))?;
                Ok((a, ict))
            }
            _ => Err(PyTypeError::new_err(format!(
                "cdata of type '{}' cannot be indexed",
                ct.ty.cname()
            ))),
        }
    }

    /// The record CType and base address for `.field` access on a struct/union cdata or
    /// a pointer to one.
    #[inline]
    pub(super) fn record_target<'a>(&'a self, py: Python<'_>) -> Option<(&'a CType, bool)> {
        let ct = self.ctype.get();
        match &ct.ty.kind {
            Kind::Record(_) => Some((ct, false)),
            Kind::Pointer(item) if matches!(item.kind, Kind::Record(_)) => {
                ct.item_ctype(py).map(|i| (i.get(), true))
            }
            _ => None,
        }
    }

    #[inline]
    pub(super) fn field_base(&self, py: Python<'_>, through_ptr: bool) -> PyResult<usize> {
        self.check_alive(py)?;
        let _ = through_ptr;
        if invalid_addr(self.addr) {
            return Err(null_err(&self.ty().cname()));
        }
        Ok(self.addr)
    }

    pub(super) fn lookup_field<'py>(
        &self,
        py: Python<'py>,
        rec: &CType,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, CField>>> {
        let Some(table) = rec.field_table(py) else {
            return Err(PyAttributeError::new_err(format!(
                "cdata '{}' points to an opaque type: cannot read fields",
                self.ty().cname()
            )));
        };
        // Borrowed lookup: no exception on a miss, hash cached in the (interned) name.
        // SAFETY: `name` is a live object and the GIL is held (`py`).
        let p = unsafe { table.find(name.as_ptr()) };
        if p.is_null() {
            return Ok(None);
        }
        // SAFETY: the field table holds only CField objects.
        Ok(Some(unsafe {
            Bound::from_borrowed_ptr(py, p).cast_into_unchecked::<CField>()
        }))
    }

    pub(super) fn no_field(&self, name: &Bound<'_, PyAny>) -> PyErr {
        PyAttributeError::new_err(format!(
            "cdata '{}' has no field '{}'",
            self.ty().cname(),
            name
        ))
    }

    pub(super) fn slice_bounds(&self, slice: &Bound<'_, PySlice>) -> PyResult<(usize, usize)> {
        let s = slice.as_ptr() as *mut ffi::PySliceObject;
        // SAFETY: `slice` is a slice object, whose three fields are always set (None when omitted).
        let (start, stop, step) = unsafe { ((*s).start, (*s).stop, (*s).step) };
        let py = slice.py();
        // SAFETY: `Py_None` only reads the address of the None singleton.
        let none = unsafe { ffi::Py_None() };
        if step != none {
            return Err(PyIndexError::new_err("slice with step not supported"));
        }
        let get = |o: *mut ffi::PyObject, dflt: Option<usize>, what: &str| -> PyResult<isize> {
            if o == none {
                return match dflt {
                    Some(d) => Ok(d as isize),
                    None => Err(PyIndexError::new_err(format!(
                        "slice {what} must be specified"
                    ))),
                };
            }
            // SAFETY: `o` is a field of the live slice object, borrowed for the extract.
            unsafe { Bound::from_borrowed_ptr(py, o) }.extract::<isize>()
        };
        let is_array = matches!(self.ty().kind, Kind::Array(..));
        let start = get(start, None, "start")?;
        let stop = get(stop, None, "stop")?;
        if start < 0 {
            return Err(PyIndexError::new_err("negative index"));
        }
        if start > stop {
            return Err(PyIndexError::new_err("slice start > stop"));
        }
        if is_array && stop as usize > self.length {
            return Err(PyIndexError::new_err(format!(
                "index too large (expected {} <= {})",
                stop, self.length
            )));
        }
        Ok((start as usize, stop as usize))
    }

    /// What a slice `[a:b]` of this array or pointer covers: its bounds, the item type
    /// and the item size (checks that the cdata is alive and its address valid).
    fn slice_items(
        &self,
        py: Python<'_>,
        slice: &Bound<'_, PySlice>,
    ) -> PyResult<(usize, usize, TypeRef, usize)> {
        let (a, b) = self.slice_bounds(slice)?;
        let ty = &self.ctype.get().ty;
        let item = match &ty.kind {
            Kind::Array(i, _) | Kind::Pointer(i) => i.clone(),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "cdata of type '{}' cannot be indexed",
                    ty.cname()
                )))
            }
        };
        self.check_alive(py)?;
        if invalid_addr(self.addr) {
            return Err(null_err(&ty.cname()));
        }
        let isz = item
            .size()
            .ok_or_else(|| PyTypeError::new_err("items of unknown size"))?;
        Ok((a, b, item, isz))
    }

    pub(super) fn get_slice(
        slf: &Bound<'_, CData>,
        slice: &Bound<'_, PySlice>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let ct = me.ctype.get();
        let (a, b, _, isz) = me.slice_items(py, slice)?;
        let arr_ct = ct
            .open_array_ctype(py)
            .ok_or_else(|| PyTypeError::new_err("cannot slice"))?;
        Ok(CData::new_view(
            py,
            arr_ct,
            me.addr.wrapping_add(a.wrapping_mul(isz)),
            b - a,
            CData::keeper_for(slf),
            F_SLICED,
        )?
        .into_any())
    }

    pub(super) fn set_slice(
        slf: &Bound<'_, CData>,
        slice: &Bound<'_, PySlice>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let ct = me.ctype.get();
        let (a, b, item, isz) = me.slice_items(py, slice)?;
        let n = b - a;
        let dst = me.addr.wrapping_add(a.wrapping_mul(isz)) as *mut u8;
        if invalid_addr(dst as usize) {
            return Err(null_err(&ct.ty.cname()));
        }
        if let Ok(cd) = value.cast::<CData>() {
            let c = cd.get();
            if let Kind::Array(si, _) = &c.ty().kind {
                if same_type(si, &item) {
                    if c.length != n {
                        return Err(PyValueError::new_err(format!(
                            "need {} values to unpack, got {}",
                            n, c.length
                        )));
                    }
                    let src = c.data_addr(py)?;
                    if invalid_addr(src) {
                        return Err(null_err(&c.ty().cname()));
                    }
                    // SAFETY: `src` (checked not NULL) holds `n` items of the same type, and `dst`
                    // was checked for `n` items (array bounds, or the user's pointer as cffi trusts
                    // it); `copy` allows overlap.
                    unsafe { std::ptr::copy(src as *const u8, dst, n * isz) };
                    return Ok(());
                }
            }
        }
        if let Ok(bytes) = value.cast::<pyo3::types::PyBytes>() {
            if matches!(&item.kind, Kind::Prim(pi) if pi.class == PrimClass::Char) {
                let s = bytes.as_bytes();
                if s.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "need {} values to unpack, got {}",
                        n,
                        s.len()
                    )));
                }
                // SAFETY: `dst` holds `n` bytes (as above) and `s` has `n` bytes (checked); a
                // Python bytes object never overlaps C memory given to a cdata.
                unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), dst, n) };
                return Ok(());
            }
        }
        let items: Vec<Bound<'_, PyAny>> = value.try_iter()?.collect::<PyResult<_>>()?;
        if items.len() != n {
            return Err(PyValueError::new_err(format!(
                "need {} values to unpack, got {}",
                n,
                items.len()
            )));
        }
        for (i, x) in items.iter().enumerate() {
            // SAFETY: item `i < n` of the checked destination range.
            unsafe { write_sized(&item, x, dst.add(i * isz), isz)? };
        }
        Ok(())
    }

    /// Pointer arithmetic: `self + n` items (arrays decay to pointers).
    pub(super) fn ptr_add(slf: &Bound<'_, CData>, n: isize) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let ct = me.ctype.get();
        let (item, res_ct) = match &ct.ty.kind {
            Kind::Pointer(i) => (i, me.ctype.clone_ref(py)),
            Kind::Array(i, _) => (
                i,
                ct.decayed_ctype(py)
                    .ok_or_else(|| PyTypeError::new_err("cannot decay"))?,
            ),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "cannot add a cdata '{}' and a number",
                    ct.ty.cname()
                )))
            }
        };
        let isz = match (&item.kind, item.size()) {
            (Kind::Void, _) => 1,
            (_, Some(s)) => s,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "ctype '{}' points to items of unknown size",
                    ct.ty.cname()
                )))
            }
        };
        me.check_alive(py)?;
        let a = me.addr.wrapping_add((n as usize).wrapping_mul(isz));
        Ok(CData::new_view(py, res_ct, a, 0, CData::keeper_for(slf), 0)?.into_any())
    }

    #[inline]
    pub fn read_item(slf: &Bound<'_, CData>, i: isize) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        if let Some((addr, ty, pi)) = me.prim_item_addr(py, i)? {
            if pi.class != PrimClass::LongDouble {
                // SAFETY: `addr` is inside the array (bounds-checked by `prim_item_addr`) or the
                // user's pointer checked against invalid addresses, and holds one `pi` primitive.
                return unsafe { read_prim(py, &me.ctype.get().ffi, ty, pi, addr as *const u8) };
            }
        }
        let (addr, ict) = me.item_addr(py, i)?;
        let ic = ict.get();
        if let Kind::Prim(pi) = &ic.ty.kind {
            // SAFETY: `addr` is item `i`, checked by `item_addr` (bounds or invalid addresses).
            return unsafe { read_prim(py, &ic.ffi, &ic.ty, pi, addr as *const u8) };
        }
        let keeper = if matches!(
            ic.ty.kind,
            Kind::Pointer(_) | Kind::FuncPtr(_) | Kind::Enum(_)
        ) {
            None
        } else {
            CData::keeper_for(slf)
        };
        if matches!(ic.ty.kind, Kind::Record(_))
            && matches!(me.ty().kind, Kind::Pointer(_))
            && i == 0
            && me.owns_memory(py)
        {
            return Ok(
                CData::new_view(py, ict.clone_ref(py), addr, 0, keeper, F_OWNING_VIEW)?.into_any(),
            );
        }
        // SAFETY: as above: `addr` holds one item of type `ic`.
        unsafe { read_with_ctype(py, ic, ict, addr as *const u8, keeper) }
    }

    #[inline]
    pub(super) fn read_field(
        slf: &Bound<'_, CData>,
        rec_through_ptr: bool,
        f: &CField,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let me = slf.get();
        let base = me.field_base(py, rec_through_ptr)?;
        let addr = base + f.offset;
        let fct = f.ctype.get();
        if f.bitsize >= 0 {
            // SAFETY: `addr` is the field's storage unit inside the record (the base was checked by
            // `field_base`).
            return unsafe { read_bitfield(py, &f.ty, f.bitshift, f.bitsize, addr as *const u8) };
        }
        if let Kind::Prim(pi) = &fct.ty.kind {
            // SAFETY: `addr` is the field inside the record (checked base plus the layout's
            // offset).
            return unsafe { read_prim(py, &fct.ffi, &fct.ty, pi, addr as *const u8) };
        }
        if let Kind::Array(item, Some(0)) = &fct.ty.kind {
            // A zero-length array field (the pre-C99 way of writing a flexible one) reads
            // as a pointer to its first item, as in cffi: an array of no items could not
            // be indexed.
            let pct = fct.ffi.ctype_of(py, &fct.ffi.pointer_to(item));
            return Ok(CData::new_pointer(py, pct, addr)?.into_any());
        }
        if f.flexible {
            let Kind::Array(item, _) = &f.ty.kind else {
                return Err(PyTypeError::new_err(
                    "flexible array member without array type",
                ));
            };
            let item = item.clone();
            let isz = item.size().unwrap_or(1).max(1);
            let vs = me.var_size(py);
            if vs > 0 && vs >= f.offset {
                let n = (vs - f.offset) / isz;
                return Ok(CData::new_view(
                    py,
                    f.ctype.clone_ref(py),
                    addr,
                    n,
                    CData::keeper_for(slf),
                    F_SLICED,
                )?
                .into_any());
            }
            let pct = fct.ffi.ctype_of(py, &fct.ffi.pointer_to(&item));
            return Ok(CData::new_pointer(py, pct, addr)?.into_any());
        }
        let keeper = if matches!(
            fct.ty.kind,
            Kind::Pointer(_) | Kind::FuncPtr(_) | Kind::Enum(_)
        ) {
            None
        } else {
            CData::keeper_for(slf)
        };
        // SAFETY: as above: `addr` holds the field's value.
        unsafe { read_with_ctype(py, fct, &f.ctype, addr as *const u8, keeper) }
    }

    #[inline]
    pub(super) fn write_field(
        slf: &Bound<'_, CData>,
        rec_through_ptr: bool,
        f: &CField,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let me = slf.get();
        let base = me.field_base(py, rec_through_ptr)?;
        let addr = (base + f.offset) as *mut u8;
        if f.bitsize >= 0 {
            // SAFETY: `addr` is the field's storage unit inside the record (the base was checked by
            // `field_base`).
            return unsafe { write_bitfield(&f.ty, f.bitshift, f.bitsize, value, addr) };
        }
        if let Kind::Prim(pi) = &f.ty.kind {
            // SAFETY: `addr` is the field inside the record (checked base plus the layout's
            // offset).
            return unsafe { write_prim(value, &f.ty, pi, addr) };
        }
        let vs = me.var_size(py);
        let avail = if vs > f.offset {
            vs - f.offset
        } else {
            f.ty.size().unwrap_or(usize::MAX)
        };
        // SAFETY: `avail` bounds what is written: the bytes the object spans past the field, or the
        // field's size.
        unsafe { write_sized(&f.ty, value, addr, avail) }
    }
}
