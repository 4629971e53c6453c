//! The one declared boundary between generated code and the runtime.
//!
//! [`foreach_builtin_function!`] lists every function the generated code may call: its
//! name, parameters and result in a small type vocabulary (`ptr`, `isize`, `usize`,
//! `i64`, `u64`, `i32`, `f64`, `void`), and for the Rust ones what a caught panic returns.
//! Everything that must agree on those signatures is produced from that one table:
//! - [`Builtins`], the addresses of the functions (a field per entry), which the code
//!   generators read through [`Builtin`];
//! - [`Builtin::signature`], the Cranelift signature of each call;
//! - through [`builtin_wrappers!`](crate::builtin_wrappers), the `extern "C"` wrappers
//!   around the Python layer's Rust implementations (which catch panics and Python
//!   errors), and the `Builtins` of the host.
//!
//! Three kinds of entries: `rust` ones are implemented by the runtime module handed to
//! `builtin_wrappers!` (a function of the same name), `c` ones are existing C functions
//! (C-API, libc) that the module re-exports under the entry's name; both are what call
//! trampolines reach through [`Builtins`]. `thunk` entries are called by callback thunks,
//! which are handed their address; they catch their own panics. Panic policy of a
//! `rust` entry:
//! - `raise(v)`: the implementation returns `Result<T, E>`; an error is handed to the
//!   module's `raise(e)`, a panic to its `raise_panic(payload)`, and `v` is returned (the
//!   generated code then returns NULL to Python with the exception set);
//! - `quiet(v)`: the implementation returns `T`; a panic returns `v`, nothing raised;
//! - `abort(())`: the implementation returns `T`; a panic aborts the process (used where
//!   no Python state can be set: around releasing and retaking the GIL).

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, Type, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

/// The table. `$mac` receives `[$args] rust { entries } thunk { entries } c { entries }`.
#[macro_export]
macro_rules! foreach_builtin_function {
    ($mac:ident $($args:tt)*) => {
        $mac! {
            [$($args)*]
            rust {
                /// Wrong argument count: raises TypeError, returns NULL.
                arity_error(this: ptr, nargs: isize) -> ptr = raise(null);
                /// Converts argument `index` into `dst`; a temporary to release after
                /// the call goes to `*temp` (0 ok).
                convert_arg(this: ptr, index: usize, obj: ptr, dst: ptr, temp: ptr) -> i32 = raise(-1);
                /// Converts an argument of the variadic part (a cdata) into `dst` (0 ok).
                convert_vararg(this: ptr, index: usize, obj: ptr, dst: ptr) -> i32 = raise(-1);
                /// Boxes a result the code does not box inline.
                box_result(this: ptr, ret: ptr) -> ptr = raise(null);
                /// An array cdata's data address into `dst` (raises if its memory was
                /// released; 0 ok).
                array_data(obj: ptr, dst: ptr) -> i32 = raise(-1);
                /// An exact list of at most `LIST_BUF` bytes of exact ints in range
                /// written into `buf` (1), or not this case (0, nothing raised).
                small_int_list(obj: ptr, buf: ptr, size: usize, signed: usize) -> i32 = quiet(0);
                /// Releases the GIL and puts the saved errno in place: the thread state.
                release() -> ptr = abort(());
                /// Saves errno and takes the GIL back.
                reacquire(tstate: ptr) -> void = abort(());
                /// A new reference to None.
                box_none() -> ptr = abort(());
                /// Drops what a conversion left in a temporary slot.
                release_temp(temp: ptr) -> void = quiet(());
            }
            thunk {
                /// What every callback thunk calls: `(closure, args buffer, result
                /// buffer)`; the thunk receives its address (`callback_thunk::Dispatcher`).
                dispatch(closure: ptr, args: ptr, result: ptr) -> void;
                /// What the generic callback thunk calls: `(closure, register file)`; it
                /// receives its address (`generic_thunk::GenericDispatcher`).
                dispatch_generic(closure: ptr, regs: ptr) -> void;
            }
            c {
                long_from_i64(v: i64) -> ptr;
                long_from_u64(v: u64) -> ptr;
                float_from_double(v: f64) -> ptr;
                bool_from_long(v: i64) -> ptr;
                /// For structs by value larger than the inline copy handles.
                memcpy(dst: ptr, src: ptr, n: usize) -> ptr;
            }
        }
    };
}

/// A machine type of the vocabulary. Every integer and pointer of the table travels as a
/// 64-bit integer (both targets are LP64), `i32` as 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    I32,
    I64,
    F64,
}

impl Ty {
    pub fn ir(self) -> Type {
        match self {
            Ty::I32 => types::I32,
            Ty::I64 => types::I64,
            Ty::F64 => types::F64,
        }
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __jitffi_builtin_ty {
    (ptr) => {
        $crate::jit::builtins::Ty::I64
    };
    (isize) => {
        $crate::jit::builtins::Ty::I64
    };
    (usize) => {
        $crate::jit::builtins::Ty::I64
    };
    (i64) => {
        $crate::jit::builtins::Ty::I64
    };
    (u64) => {
        $crate::jit::builtins::Ty::I64
    };
    (i32) => {
        $crate::jit::builtins::Ty::I32
    };
    (f64) => {
        $crate::jit::builtins::Ty::F64
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __jitffi_builtin_ret {
    (void) => {
        None
    };
    ($t:ident) => {
        Some($crate::__jitffi_builtin_ty!($t))
    };
}

/// The Rust type of a vocabulary type in an `extern "C"` wrapper.
#[doc(hidden)]
#[macro_export]
macro_rules! __jitffi_builtin_rust_ty {
    (ptr) => { *mut ::std::ffi::c_void };
    (isize) => { isize };
    (usize) => { usize };
    (i64) => { i64 };
    (u64) => { u64 };
    (i32) => { i32 };
    (f64) => { f64 };
    (void) => { () };
}

macro_rules! declare_builtins {
    (
        []
        rust { $( $(#[$rdoc:meta])* $rname:ident ( $($rp:ident : $rt:ident),* ) -> $rr:ident = $on:ident ( $($fail:tt)* ) ; )* }
        thunk { $( $(#[$tdoc:meta])* $tname:ident ( $($tp:ident : $tt:ident),* ) -> $tr:ident ; )* }
        c { $( $(#[$cdoc:meta])* $cname:ident ( $($cp:ident : $ct:ident),* ) -> $cr:ident ; )* }
    ) => {
        /// A function generated code may call.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Builtin {
            $( $(#[$rdoc])* $rname, )*
            $( $(#[$tdoc])* $tname, )*
            $( $(#[$cdoc])* $cname, )*
        }

        /// Where each builtin trampolines call is: a baked-in address (`usize`, the host)
        /// or a symbol.
        #[derive(Clone, Copy, Debug)]
        pub struct Builtins<A = usize> {
            $( pub $rname: A, )*
            $( pub $cname: A, )*
        }

        impl Builtin {
            pub const ALL: &'static [Builtin] = &[$(Builtin::$rname,)* $(Builtin::$tname,)* $(Builtin::$cname,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $( Builtin::$rname => stringify!($rname), )*
                    $( Builtin::$tname => stringify!($tname), )*
                    $( Builtin::$cname => stringify!($cname), )*
                }
            }

            /// Implemented in Rust by the runtime (not an existing C function).
            pub fn is_rust(self) -> bool {
                match self {
                    $( Builtin::$rname => true, )*
                    $( Builtin::$tname => true, )*
                    $( Builtin::$cname => false, )*
                }
            }

            pub fn params(self) -> &'static [Ty] {
                match self {
                    $( Builtin::$rname => &[$($crate::__jitffi_builtin_ty!($rt)),*], )*
                    $( Builtin::$tname => &[$($crate::__jitffi_builtin_ty!($tt)),*], )*
                    $( Builtin::$cname => &[$($crate::__jitffi_builtin_ty!($ct)),*], )*
                }
            }

            pub fn result(self) -> Option<Ty> {
                match self {
                    $( Builtin::$rname => $crate::__jitffi_builtin_ret!($rr), )*
                    $( Builtin::$tname => $crate::__jitffi_builtin_ret!($tr), )*
                    $( Builtin::$cname => $crate::__jitffi_builtin_ret!($cr), )*
                }
            }
        }

        impl<A: Copy> Builtins<A> {
            /// The address of `f`; `thunk` entries are not called through `Builtins`.
            pub fn get(&self, f: Builtin) -> A {
                match f {
                    $( Builtin::$rname => self.$rname, )*
                    $( Builtin::$cname => self.$cname, )*
                    $( Builtin::$tname => panic!("{} is handed to the callback thunks", stringify!($tname)), )*
                }
            }

            /// Every address from `f(builtin)` (e.g. one imported symbol per name), for
            /// the entries trampolines call.
            pub fn from_fn(mut f: impl FnMut(Builtin) -> A) -> Builtins<A> {
                Builtins {
                    $( $rname: f(Builtin::$rname), )*
                    $( $cname: f(Builtin::$cname), )*
                }
            }
        }
    };
}

foreach_builtin_function!(declare_builtins);

impl Builtin {
    /// The Cranelift signature of a call to `self` with convention `cc`.
    pub fn signature(self, cc: CallConv) -> Signature {
        let mut sig = Signature::new(cc);
        sig.params
            .extend(self.params().iter().map(|t| AbiParam::new(t.ir())));
        sig.returns
            .extend(self.result().map(|t| AbiParam::new(t.ir())));
        sig
    }
}

/// Something outside the generated code whose address the code needs (a helper, a type
/// object): known now and baked in as a constant (`usize`, the host JIT), or a symbol
/// that a linker resolves (object output).
pub trait Extern: Copy {
    /// A value of type `ty` holding the address, built at the current position of `b`.
    fn address(self, b: &mut FunctionBuilder, ty: Type) -> Value;
}

impl Extern for usize {
    fn address(self, b: &mut FunctionBuilder, ty: Type) -> Value {
        b.ins().iconst(ty, self as i64)
    }
}

/// Where the runtime's objects keep what generated code reads directly (byte offsets
/// into the object). Filled in by the Python layer for the running interpreter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectLayout {
    /// Every object's type pointer.
    pub ob_type: i32,
    /// A variable-size object's size field (an int's signed digit count).
    pub ob_size: i32,
    /// An int's first digit (30-bit digits in 32-bit words), read only when
    /// `Runtime::inline_small_ints`.
    pub long_digit: i32,
    /// A float's double.
    pub float_value: i32,
    /// A bytes object's first character.
    pub bytes_data: i32,
}

/// Argument conversion of the `extern "C"` wrappers: from the vocabulary's Rust type to
/// the implementation's parameter type (any pointer for `ptr`, the same integer type
/// otherwise).
pub trait FromAbi<Src> {
    fn from_abi(v: Src) -> Self;
}

impl<T> FromAbi<*mut std::ffi::c_void> for *mut T {
    #[inline(always)]
    fn from_abi(v: *mut std::ffi::c_void) -> *mut T {
        v.cast()
    }
}

impl<T> FromAbi<*mut std::ffi::c_void> for *const T {
    #[inline(always)]
    fn from_abi(v: *mut std::ffi::c_void) -> *const T {
        v.cast_const().cast()
    }
}

/// Result conversion of the wrappers: the implementation's result to the vocabulary's.
pub trait IntoAbi<Dst> {
    fn into_abi(self) -> Dst;
}

impl<T> IntoAbi<*mut std::ffi::c_void> for *mut T {
    #[inline(always)]
    fn into_abi(self) -> *mut std::ffi::c_void {
        self.cast()
    }
}

macro_rules! same_abi {
    ($($t:ty),*) => {$(
        impl FromAbi<$t> for $t {
            #[inline(always)]
            fn from_abi(v: $t) -> $t {
                v
            }
        }
        impl IntoAbi<$t> for $t {
            #[inline(always)]
            fn into_abi(self) -> $t {
                self
            }
        }
    )*};
}

same_abi!(isize, usize, i64, u64, i32, f64, ());

/// The `extern "C"` wrappers of the `rust` entries and the host's [`Builtins`], for the
/// runtime module `$imp` (in scope where this is invoked), which provides a function per
/// `rust` entry (same name; parameters and result as the table says, any pointer type
/// for `ptr`), `raise(e)`, `raise_panic(payload)`, and each `c` entry by its name.
/// Invoke as `foreach_builtin_function!(builtin_wrappers imp)`.
#[macro_export]
macro_rules! builtin_wrappers {
    (
        [$imp:ident]
        rust { $( $(#[$rdoc:meta])* $rname:ident ( $($rp:ident : $rt:ident),* ) -> $rr:ident = $on:ident ( $($fail:tt)* ) ; )* }
        thunk { $( $(#[$tdoc:meta])* $tname:ident ( $($tp:ident : $tt:ident),* ) -> $tr:ident ; )* }
        c { $( $(#[$cdoc:meta])* $cname:ident ( $($cp:ident : $ct:ident),* ) -> $cr:ident ; )* }
    ) => {
        $(
            $crate::__jitffi_builtin_wrapper! {
                $on ( $($fail)* ) $imp $(#[$rdoc])* $rname ( $($rp : $rt),* ) -> $rr
            }
        )*

        /// The host addresses of every builtin.
        pub fn host_builtins() -> $crate::jit::builtins::Builtins<usize> {
            $crate::jit::builtins::Builtins {
                $( $rname: $rname as *const () as usize, )*
                $( $cname: $imp::$cname as *const () as usize, )*
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __jitffi_builtin_fail {
    (null) => { ::std::ptr::null_mut() };
    ($($v:tt)*) => { $($v)* };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __jitffi_builtin_wrapper {
    (raise ( $($fail:tt)* ) $imp:ident $(#[$doc:meta])* $name:ident ( $($p:ident : $t:ident),* ) -> $r:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by generated code only, with the arguments the table's contract says.
        pub unsafe extern "C" fn $name($($p: $crate::__jitffi_builtin_rust_ty!($t)),*) -> $crate::__jitffi_builtin_rust_ty!($r) {
            // SAFETY: the caller (generated code) passes what the implementation's
            // contract requires; see the table entry.
            let run = || unsafe { $imp::$name($($crate::jit::builtins::FromAbi::from_abi($p)),*) };
            match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(run)) {
                Ok(Ok(r)) => $crate::jit::builtins::IntoAbi::into_abi(r),
                Ok(Err(e)) => {
                    $imp::raise(e);
                    $crate::__jitffi_builtin_fail!($($fail)*)
                }
                Err(payload) => {
                    $imp::raise_panic(payload);
                    $crate::__jitffi_builtin_fail!($($fail)*)
                }
            }
        }
    };
    (quiet ( $($fail:tt)* ) $imp:ident $(#[$doc:meta])* $name:ident ( $($p:ident : $t:ident),* ) -> $r:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by generated code only, with the arguments the table's contract says.
        pub unsafe extern "C" fn $name($($p: $crate::__jitffi_builtin_rust_ty!($t)),*) -> $crate::__jitffi_builtin_rust_ty!($r) {
            // SAFETY: as for every builtin, the generated caller keeps the contract.
            let run = || unsafe { $imp::$name($($crate::jit::builtins::FromAbi::from_abi($p)),*) };
            match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(run)) {
                Ok(r) => $crate::jit::builtins::IntoAbi::into_abi(r),
                Err(_) => $crate::__jitffi_builtin_fail!($($fail)*),
            }
        }
    };
    (abort ( $($fail:tt)* ) $imp:ident $(#[$doc:meta])* $name:ident ( $($p:ident : $t:ident),* ) -> $r:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by generated code only, with the arguments the table's contract says.
        pub unsafe extern "C" fn $name($($p: $crate::__jitffi_builtin_rust_ty!($t)),*) -> $crate::__jitffi_builtin_rust_ty!($r) {
            // SAFETY: as for every builtin, the generated caller keeps the contract.
            let run = || unsafe { $imp::$name($($crate::jit::builtins::FromAbi::from_abi($p)),*) };
            match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(run)) {
                Ok(r) => $crate::jit::builtins::IntoAbi::into_abi(r),
                Err(_) => ::std::process::abort(),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_table() {
        let s = Builtin::convert_arg.signature(CallConv::SystemV);
        assert_eq!(s.params.len(), 5);
        assert!(s.params.iter().all(|p| p.value_type == types::I64));
        assert_eq!(
            s.returns.iter().map(|p| p.value_type).collect::<Vec<_>>(),
            vec![types::I32]
        );
        assert!(Builtin::reacquire
            .signature(CallConv::SystemV)
            .returns
            .is_empty());
        assert_eq!(Builtin::float_from_double.params(), &[Ty::F64]);
        let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
        assert!(
            names.contains(&"memcpy") && !Builtin::memcpy.is_rust() && Builtin::box_none.is_rust()
        );
        let d = Builtin::dispatch.signature(CallConv::SystemV);
        assert_eq!((d.params.len(), d.returns.len()), (3, 0));
        let g = Builtin::dispatch_generic.signature(CallConv::SystemV);
        assert_eq!((g.params.len(), g.returns.len()), (2, 0));
        let b = Builtins::from_fn(|f| f.name().len());
        assert_eq!(b.get(Builtin::memcpy), 6);
    }
}
