//! Host trampolines: compiled into executable memory, cached by shape.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rustc_hash::FxHashMap;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::Context;

use super::error::CompileError;
use super::trampoline::{build, isa, Runtime, Shape};
use super::{execmem, stubs};
use crate::abi::StubKind;

/// Address of the executable copy of `kind`'s stub (one per distinct stub).
fn stub_address(kind: &StubKind) -> Result<usize, CompileError> {
    static STUBS: Mutex<Vec<(StubKind, usize)>> = Mutex::new(Vec::new());
    let mut g = STUBS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, a)) = g.iter().find(|(k, _)| k == kind) {
        return Ok(*a);
    }
    let a = execmem::install(&stubs::stub_bytes(kind)).map_err(CompileError::Memory)? as usize;
    g.push((*kind, a));
    Ok(a)
}

/// Compiles the trampoline of `shape` into executable memory.
pub fn compile(shape: &Shape, rt: &Runtime) -> Result<*const u8, CompileError> {
    let isa = isa();
    let stub_addr = match &shape.plan.stub {
        Some(k) => Some(stub_address(k)?),
        None => None,
    };
    let func = build(shape, rt, &**isa, stub_addr)?;
    let mut ctx = Context::for_function(func);
    let code = ctx
        .compile(&**isa, &mut ControlPlane::default())
        .map_err(|e| {
            CompileError::Internal(format!("trampoline compilation failed: {:?}", e.inner))
        })?;
    if !code.buffer.relocs().is_empty() {
        return Err(CompileError::Internal(
            "trampoline code needs relocations".into(),
        ));
    }
    execmem::install(code.code_buffer()).map_err(CompileError::Memory)
}

/// Compiled trampolines by shape. Entries are never removed: a shape's code is shared by
/// every function of that shape, so memory is bounded by the number of distinct shapes.
pub struct ShapeCache {
    map: Mutex<Option<FxHashMap<Shape, usize>>>,
    /// Entries in `map`: lets a lookup in an empty cache (a process that compiled nothing
    /// yet, or runs on the generic tier) skip the lock and the hashing of the shape.
    count: AtomicUsize,
}

impl ShapeCache {
    pub const fn new() -> ShapeCache {
        ShapeCache {
            map: Mutex::new(None),
            count: AtomicUsize::new(0),
        }
    }

    /// The trampoline of `shape` if it was compiled already.
    pub fn get(&self, shape: &Shape) -> Option<*const u8> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .and_then(|m| m.get(shape))
            .map(|&p| p as *const u8)
    }

    pub fn get_or_compile(&self, shape: &Shape, rt: &Runtime) -> Result<*const u8, CompileError> {
        let mut guard = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(FxHashMap::default);
        if let Some(&p) = map.get(shape) {
            return Ok(p as *const u8);
        }
        let p = compile(shape, rt)?;
        map.insert(shape.clone(), p as usize);
        self.count.store(map.len(), Ordering::Release);
        Ok(p)
    }

    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ShapeCache {
    fn default() -> ShapeCache {
        ShapeCache::new()
    }
}

pub static SHAPES: ShapeCache = ShapeCache::new();

#[cfg(test)]
mod tests {
    //! Trampolines run against fake objects and helpers: no Python needed. A fake int has
    //! CPython 3.11's small-int layout (type at 8, ob_size at 16, digit at 24).
    use super::*;
    use crate::jit::builtins::{Builtin, Builtins, ObjectLayout};
    use crate::jit::trampoline::{ArgShape, Fallback, Inline, RetShape, Scalar};
    use crate::types::model::{Prim, TypeTable};
    use crate::types::target::Target;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::SeqCst};

    #[repr(C)]
    struct FakeInt {
        refcnt: i64,
        ty: usize,
        ob_size: i64,
        digit: u32,
    }

    #[repr(C)]
    struct FakeSelf {
        head: [u64; 2],
        target: usize,
    }

    static LONG_TYPE: u8 = 0;
    static FLOAT_TYPE: u8 = 0;
    static OTHER_TYPE: u8 = 0;
    static BOXED: AtomicI64 = AtomicI64::new(0);
    static CONVERTED: AtomicUsize = AtomicUsize::new(0);
    static ARITY: AtomicI64 = AtomicI64::new(-1);
    static GIL: AtomicI64 = AtomicI64::new(0);
    static RESULT_TOKEN: u8 = 0;

    extern "C" fn arity_error(_this: usize, nargs: i64) -> usize {
        ARITY.store(nargs, SeqCst);
        0
    }
    extern "C" fn convert_arg(
        _this: usize,
        _idx: usize,
        _obj: usize,
        dst: *mut i32,
        _temp: usize,
    ) -> i32 {
        CONVERTED.fetch_add(1, SeqCst);
        // SAFETY: the trampoline passes its cell for the argument, at least 16 writable
        // bytes.
        unsafe { *dst = 1000 };
        0
    }
    extern "C" fn convert_vararg(_: usize, _: usize, _: usize, _: usize) -> i32 {
        -1
    }
    extern "C" fn release() -> usize {
        GIL.fetch_add(1, SeqCst);
        0x1234
    }
    extern "C" fn reacquire(ts: usize) {
        assert_eq!(ts, 0x1234);
        GIL.fetch_add(10, SeqCst);
    }
    extern "C" fn unused() -> usize {
        0
    }
    extern "C" fn long_from(v: i64) -> usize {
        BOXED.store(v, SeqCst);
        &RESULT_TOKEN as *const u8 as usize
    }
    extern "C" fn add(a: i32, b: i32) -> i32 {
        a + b
    }

    fn rt() -> Runtime {
        let f = |p: *const ()| p as usize;
        let fns = Builtins::from_fn(|b| match b {
            Builtin::arity_error => f(arity_error as *const ()),
            Builtin::convert_arg => f(convert_arg as *const ()),
            Builtin::convert_vararg => f(convert_vararg as *const ()),
            Builtin::release => f(release as *const ()),
            Builtin::reacquire => f(reacquire as *const ()),
            Builtin::long_from_i64 | Builtin::long_from_u64 => f(long_from as *const ()),
            _ => f(unused as *const ()),
        });
        Runtime {
            fns,
            // CPython 3.11's layout, which the fake int follows.
            objects: ObjectLayout {
                ob_type: 8,
                ob_size: 16,
                long_digit: 24,
                float_value: 16,
                bytes_data: 32,
            },
            target_offset: 16,
            arg_ctypes_offset: 24,
            long_type: &LONG_TYPE as *const u8 as usize,
            float_type: &FLOAT_TYPE as *const u8 as usize,
            bytes_type: unused as *const () as usize,
            cdata_type: unused as *const () as usize,
            cdata_ctype_offset: 16,
            cdata_addr_offset: 24,
            void_ptr_ctype: 1,
            inline_small_ints: true,
        }
    }

    fn int_int_to_int(release_gil: bool) -> Shape {
        let mut t = TypeTable::new(Target::host());
        let int = t.prim(Prim::Int);
        let f = t.func_ptr(vec![int.clone(), int.clone()], &int, false);
        let Kind::FuncPtr(sig) = &f.kind else {
            unreachable!()
        };
        let a = ArgShape {
            scalar: Scalar::Int {
                size: 4,
                signed: true,
            },
            inline: Inline::SmallInt,
            fallback: Fallback::Convert,
        };
        Shape {
            args: vec![a, a],
            ret: RetShape::Int {
                size: 4,
                signed: true,
            },
            release_gil,
            plan: crate::abi::lower(sig, &Target::host()).unwrap(),
        }
    }
    use crate::types::model::Kind;

    fn small(v: i64) -> FakeInt {
        FakeInt {
            refcnt: 1,
            ty: &LONG_TYPE as *const u8 as usize,
            ob_size: v.signum(),
            digit: v.unsigned_abs() as u32,
        }
    }

    type Entry = unsafe extern "C" fn(*const FakeSelf, *const *const FakeInt, i64) -> usize;

    #[test]
    fn trampoline_converts_calls_and_boxes() {
        let code = compile(&int_int_to_int(true), &rt()).unwrap();
        // SAFETY: the code is a trampoline: `METH_FASTCALL` signature.
        let entry: Entry = unsafe { std::mem::transmute(code) };
        let me = FakeSelf {
            head: [0; 2],
            target: add as *const () as usize,
        };
        let (a, b) = (small(-7), small(12));
        let args = [&a as *const FakeInt, &b as *const FakeInt];
        let before = GIL.load(SeqCst);
        // SAFETY: `me` and `args` are valid fakes of the layout the trampoline reads.
        let r = unsafe { entry(&me, args.as_ptr(), 2) };
        assert_eq!(r, &RESULT_TOKEN as *const u8 as usize);
        assert_eq!(BOXED.load(SeqCst), 5);
        assert_eq!(
            GIL.load(SeqCst) - before,
            11,
            "released once and re-acquired once"
        );

        // An object of another type goes through the converter helper.
        let other = FakeInt {
            refcnt: 1,
            ty: &OTHER_TYPE as *const u8 as usize,
            ob_size: 1,
            digit: 1,
        };
        let args = [&other as *const FakeInt, &b as *const FakeInt];
        let n = CONVERTED.load(SeqCst);
        // SAFETY: `me` and `args` are valid fakes of the layout the trampoline reads.
        unsafe { entry(&me, args.as_ptr(), 2) };
        assert_eq!(CONVERTED.load(SeqCst), n + 1);
        assert_eq!(BOXED.load(SeqCst), 1012);

        // Wrong count: the arity helper's result (NULL) is returned.
        // SAFETY: `me` and `args` are valid fakes of the layout the trampoline reads.
        assert_eq!(unsafe { entry(&me, args.as_ptr(), 3) }, 0);
        assert_eq!(ARITY.load(SeqCst), 3);
    }

    #[test]
    fn shapes_are_cached() {
        let cache = ShapeCache::new();
        let s = int_int_to_int(false);
        assert!(cache.get(&s).is_none());
        let p1 = cache.get_or_compile(&s, &rt()).unwrap();
        let p2 = cache.get_or_compile(&int_int_to_int(false), &rt()).unwrap();
        assert_eq!(p1, p2);
        assert_eq!(cache.len(), 1);
        let p3 = cache.get_or_compile(&int_int_to_int(true), &rt()).unwrap();
        assert_ne!(p1, p3);
        assert_eq!(cache.len(), 2);
    }
}
