//! Shared libraries: open (dlopen), look up symbols (dlsym), close (dlclose on drop).
//!
//! No Python here: `py::lib_object` turns these results into cffi's exceptions and
//! messages. `DlError`'s `Display` is the text those messages embed, so it must stay
//! word for word what it is (tests pin the messages).

use std::ffi::c_void;
use std::fmt;
use std::mem::ManuallyDrop;

use libloading::os::unix::Library;

/// Why opening a library or looking up a symbol failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlError {
    /// `dlopen` failed; `dlerror()`'s text.
    Open(String),
    /// `dlopen` failed and `dlerror()` had nothing to say.
    OpenUnreported,
    /// `dlsym` did not find the symbol; `dlerror()`'s text.
    Symbol(String),
    /// `dlsym` returned NULL without an error (a symbol whose value is NULL, e.g. an
    /// IFUNC resolver returning NULL): there is nothing to call or read there.
    NullSymbol,
    /// The library name contains a NUL byte, so no C string can carry it.
    NulInLibraryName,
    /// The symbol name contains a NUL byte.
    NulInSymbolName,
}

impl fmt::Display for DlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DlError::Open(text) | DlError::Symbol(text) => f.write_str(text),
            DlError::OpenUnreported => f.write_str("unknown dlopen error"),
            DlError::NullSymbol => f.write_str("symbol is NULL"),
            DlError::NulInLibraryName => f.write_str("library name contains a NUL byte"),
            DlError::NulInSymbolName => f.write_str("name contains a NUL byte"),
        }
    }
}

impl std::error::Error for DlError {}

/// An open library. Closed (dlclose) when dropped, unless the handle was given to us
/// already open (`LibHandle::borrowed`): its owner closes it.
pub struct LibHandle {
    /// Never dropped for a borrowed handle: `Library`'s own drop would dlclose it.
    lib: ManuallyDrop<Library>,
    owned: bool,
}

impl LibHandle {
    /// `dlopen(path, flags)`; `None` is the process's global namespace.
    ///
    /// # Safety
    /// Loading a library runs its initialisers, and dropping the handle may run its
    /// finalisers: foreign code the caller vouches for, as for any call into the library.
    pub unsafe fn open(path: Option<&str>, flags: i32) -> Result<LibHandle, DlError> {
        // A trailing NUL would be taken as the terminator: refuse every NUL alike.
        if path.is_some_and(|p| p.contains('\0')) {
            return Err(DlError::NulInLibraryName);
        }
        // SAFETY: the caller vouches for the library's initialisers (see above); the name
        // has no NUL byte, so libloading passes it whole.
        match unsafe { Library::open(path, flags) } {
            Ok(lib) => Ok(LibHandle {
                lib: ManuallyDrop::new(lib),
                owned: true,
            }),
            Err(libloading::Error::DlOpenUnknown) => Err(DlError::OpenUnreported),
            Err(e @ libloading::Error::DlOpen { .. }) => Err(DlError::Open(e.to_string())),
            Err(
                libloading::Error::CreateCString { .. }
                | libloading::Error::CreateCStringWithTrailing { .. },
            ) => Err(DlError::NulInLibraryName),
            Err(e) => Err(DlError::Open(e.to_string())),
        }
    }

    /// Wraps a handle some other code opened; it is never closed by us.
    ///
    /// # Safety
    /// `raw` must be a handle `dlopen` returned, kept open by its owner for as long as
    /// this `LibHandle` (and every symbol looked up through it) is in use.
    pub unsafe fn borrowed(raw: *mut c_void) -> LibHandle {
        // SAFETY: `raw` is a dlopen handle (the caller's contract); the `ManuallyDrop`
        // and `owned: false` make sure we never dlclose it.
        let lib = unsafe { Library::from_raw(raw) };
        LibHandle {
            lib: ManuallyDrop::new(lib),
            owned: false,
        }
    }

    /// The address of `name` in the library (`dlsym`).
    pub fn symbol(&self, name: &str) -> Result<usize, DlError> {
        if name.contains('\0') {
            return Err(DlError::NulInSymbolName);
        }
        self.lookup(name.as_bytes())
    }

    /// The same for a name already NUL-terminated (nothing is copied).
    pub fn symbol_c(&self, name: &std::ffi::CStr) -> Result<usize, DlError> {
        self.lookup(name.to_bytes_with_nul())
    }

    fn lookup(&self, name: &[u8]) -> Result<usize, DlError> {
        // SAFETY: the symbol is read as `*mut c_void`, the type dlsym itself returns, and
        // only its address leaves this function: whoever uses it decides what it points to.
        match unsafe { self.lib.get::<*mut c_void>(name) } {
            Ok(sym) => {
                let p = sym.into_raw();
                if p.is_null() {
                    Err(DlError::NullSymbol)
                } else {
                    Ok(p as usize)
                }
            }
            Err(libloading::Error::DlSymUnknown) => Err(DlError::NullSymbol),
            Err(
                libloading::Error::CreateCString { .. }
                | libloading::Error::CreateCStringWithTrailing { .. },
            ) => Err(DlError::NulInSymbolName),
            Err(e) => Err(DlError::Symbol(e.to_string())),
        }
    }
}

impl Drop for LibHandle {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: `lib` is dropped only here, once, and `self` is gone afterwards.
            unsafe { ManuallyDrop::drop(&mut self.lib) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process() -> LibHandle {
        // SAFETY: the global namespace is already loaded: no initialiser runs.
        unsafe { LibHandle::open(None, libc::RTLD_NOW) }.unwrap()
    }

    #[test]
    fn finds_libc_symbols_in_the_process() {
        let h = process();
        assert_eq!(
            h.symbol("strlen").unwrap(),
            libc::strlen as *const () as usize
        );
    }

    #[test]
    fn missing_symbol_reports_dlerror_text() {
        let h = process();
        match h.symbol("surely_no_such_symbol_xyz") {
            Err(DlError::Symbol(text)) => {
                assert!(text.contains("surely_no_such_symbol_xyz"), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_library_reports_dlerror_text() {
        // SAFETY: nothing is loaded: the file does not exist.
        let e = unsafe { LibHandle::open(Some("/nonexistent/libnothing.so"), libc::RTLD_NOW) }
            .err()
            .unwrap();
        assert!(
            matches!(&e, DlError::Open(t) if t.contains("libnothing")),
            "{e:?}"
        );
    }

    #[test]
    fn nul_bytes_are_refused_with_the_old_messages() {
        // SAFETY: refused before dlopen is called.
        let e = unsafe { LibHandle::open(Some("libm.so.6\0"), libc::RTLD_NOW) }
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "library name contains a NUL byte");
        assert_eq!(
            process().symbol("strlen\0").unwrap_err().to_string(),
            "name contains a NUL byte"
        );
    }

    #[test]
    fn a_borrowed_handle_stays_open_after_drop() {
        // SAFETY: the global namespace is already loaded: no initialiser runs.
        let raw = unsafe { libc::dlopen(std::ptr::null(), libc::RTLD_NOW) };
        assert!(!raw.is_null());
        // SAFETY: `raw` is open until the dlclose below, after the borrowed handle is gone.
        drop(unsafe { LibHandle::borrowed(raw) });
        // SAFETY: `raw` is still open: dropping the borrowed handle did not close it.
        let again = unsafe { LibHandle::borrowed(raw) };
        assert!(again.symbol("strlen").is_ok());
        drop(again);
        // SAFETY: our own dlopen above, closed once.
        assert_eq!(unsafe { libc::dlclose(raw) }, 0);
    }
}
