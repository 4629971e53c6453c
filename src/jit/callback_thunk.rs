//! Callback thunks: one piece of machine code per signature *shape*, entered from C.
//!
//! A thunk has the C signature of the callback plus one trailing parameter, the closure
//! pointer, which the calling convention places in the first argument register the C
//! arguments leave free; the entry stub of each callback (`entry_pool`) loads it there.
//! The thunk stores every incoming argument's bytes into a stack buffer, calls the Rust
//! dispatcher `(closure, args buffer, result buffer)`, and returns the result buffer's
//! bytes the way the convention wants them. Everything about Python (GIL, conversions,
//! errors) happens in the dispatcher, so the thunk only depends on the ABI shape and is
//! shared by every callback of that shape, whatever FFI or Python function it belongs to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{
    self, types, AbiParam, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind, Type,
};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::entry_pool::ClosureReg;

/// The Rust side every thunk calls: `(closure, args buffer, result buffer)`.
pub type Dispatcher = unsafe extern "C" fn(*const (), *mut u8, *mut u8);

/// How one scalar argument or result travels (the subset of shapes the thunk codegen
/// handles on its own; aggregates go through the ABI lowering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScalarRepr {
    Int { size: u8, signed: bool },
    F32,
    F64,
}

impl ScalarRepr {
    fn ir_type(self) -> Type {
        match self {
            ScalarRepr::Int { size: 1, .. } => types::I8,
            ScalarRepr::Int { size: 2, .. } => types::I16,
            ScalarRepr::Int { size: 4, .. } => types::I32,
            ScalarRepr::Int { .. } => types::I64,
            ScalarRepr::F32 => types::F32,
            ScalarRepr::F64 => types::F64,
        }
    }

    fn size(self) -> u32 {
        self.ir_type().bytes()
    }

    fn abi_param(self) -> AbiParam {
        let p = AbiParam::new(self.ir_type());
        match self {
            ScalarRepr::Int { size, signed: true } if size < 4 => p.sext(),
            ScalarRepr::Int { size, signed: false } if size < 4 => p.uext(),
            _ => p,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, ScalarRepr::F32 | ScalarRepr::F64)
    }
}

/// A callback signature reduced to what the machine code depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScalarShape {
    pub args: Vec<ScalarRepr>,
    /// `None` for `void`.
    pub ret: Option<ScalarRepr>,
}

/// A compiled thunk and the buffer layout its dispatcher must follow.
#[derive(Debug)]
pub struct Thunk {
    pub code: *const u8,
    pub closure_reg: ClosureReg,
    /// Offset of each argument's bytes in the args buffer.
    pub arg_offsets: Vec<u32>,
    pub args_size: u32,
    pub result_size: u32,
}

// SAFETY: `code` points to immutable executable memory that is never freed.
unsafe impl Send for Thunk {}
unsafe impl Sync for Thunk {}

/// The host ISA, configured once (no PIC: addresses are baked in as constants, so the
/// compiled bytes need no relocation).
pub fn host_isa() -> Result<&'static OwnedTargetIsa, String> {
    static ISA: OnceLock<Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| {
        let mut flags = settings::builder();
        let set = |b: &mut settings::Builder, k: &str, v: &str| b.set(k, v).map_err(|e| format!("{k}={v}: {e}"));
        set(&mut flags, "opt_level", "speed")?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "enable_verifier", "false")?;
        set(&mut flags, "use_colocated_libcalls", "false")?;
        let isa_builder = cranelift_native::builder().map_err(|e| e.to_string())?;
        isa_builder.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| e.clone())
}

/// Copies finished machine code into fresh read+execute memory, never freed (thunks are
/// per shape, so their number is bounded by the program's distinct callback types).
fn install_code(code: &[u8]) -> Result<*const u8, String> {
    // SAFETY: sysconf has no preconditions; mmap/mprotect results are checked.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
        let len = code.len().div_ceil(page) * page;
        let mem = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return Err(format!("mmap for a callback thunk failed: {}", std::io::Error::last_os_error()));
        }
        std::ptr::copy_nonoverlapping(code.as_ptr(), mem as *mut u8, code.len());
        #[cfg(target_arch = "aarch64")]
        {
            extern "C" {
                fn __clear_cache(start: *mut libc::c_char, end: *mut libc::c_char);
            }
            __clear_cache(mem as *mut libc::c_char, (mem as *mut libc::c_char).add(code.len()));
        }
        if libc::mprotect(mem, len, libc::PROT_READ | libc::PROT_EXEC) != 0 {
            return Err(format!("mprotect for a callback thunk failed: {}", std::io::Error::last_os_error()));
        }
        Ok(mem as *const u8)
    }
}

/// Chooses where the closure pointer goes: the first integer register the C arguments
/// leave free, else the first free float register. `None` if both kinds are used up.
pub fn closure_reg_after(gprs_used: u8, vregs_used: u8) -> Option<ClosureReg> {
    if gprs_used < ClosureReg::INT_REGS {
        Some(ClosureReg::Int(gprs_used))
    } else if vregs_used < ClosureReg::FLOAT_REGS {
        Some(ClosureReg::Float(vregs_used))
    } else {
        None
    }
}

fn align_up(x: u32, a: u32) -> u32 {
    x.div_ceil(a) * a
}

/// Compiles (or returns the cached) thunk for a scalar shape.
pub fn scalar_thunk(shape: &ScalarShape, dispatcher: Dispatcher) -> Result<Arc<Thunk>, String> {
    static CACHE: OnceLock<Mutex<HashMap<(ScalarShape, usize), Arc<Thunk>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (shape.clone(), dispatcher as usize);
    if let Some(t) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(t.clone());
    }
    let thunk = Arc::new(compile_scalar_thunk(shape, dispatcher)?);
    cache.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(thunk.clone());
    Ok(thunk)
}

fn compile_scalar_thunk(shape: &ScalarShape, dispatcher: Dispatcher) -> Result<Thunk, String> {
    let isa = host_isa()?;
    let ptr_ty = isa.pointer_type();
    let call_conv = CallConv::triple_default(isa.triple());

    let gprs_used = shape.args.iter().filter(|a| !a.is_float()).count().min(255) as u8;
    let vregs_used = shape.args.iter().filter(|a| a.is_float()).count().min(255) as u8;
    let closure_reg = closure_reg_after(gprs_used, vregs_used)
        .ok_or_else(|| "NotImplementedError: callback with all argument registers in use".to_string())?;

    let mut sig = Signature::new(call_conv);
    sig.params.extend(shape.args.iter().map(|a| a.abi_param()));
    sig.params.push(AbiParam::new(match closure_reg {
        ClosureReg::Int(_) => ptr_ty,
        ClosureReg::Float(_) => types::F64,
    }));
    if let Some(r) = shape.ret {
        sig.returns.push(r.abi_param());
    }

    let mut arg_offsets = Vec::with_capacity(shape.args.len());
    let mut off = 0u32;
    for a in &shape.args {
        let sz = a.size();
        off = align_up(off, sz.max(1));
        arg_offsets.push(off);
        off += sz;
    }
    let args_size = align_up(off.max(8), 16);
    let result_size = 16u32;

    let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), sig);
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let params = b.block_params(block).to_vec();
        let args_slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, args_size, 4));
        let res_slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, result_size, 4));
        for (i, a) in shape.args.iter().enumerate() {
            let _ = a;
            b.ins().stack_store(ptr_ty, params[i], args_slot, arg_offsets[i] as i32);
        }
        let closure_raw = params[shape.args.len()];
        let closure = match closure_reg {
            ClosureReg::Int(_) => closure_raw,
            ClosureReg::Float(_) => b.ins().bitcast(ptr_ty, MemFlagsData::new(), closure_raw),
        };
        let args_ptr = b.ins().stack_addr(ptr_ty, args_slot, 0);
        let res_ptr = b.ins().stack_addr(ptr_ty, res_slot, 0);
        let mut dsig = Signature::new(call_conv);
        dsig.params.extend([AbiParam::new(ptr_ty), AbiParam::new(ptr_ty), AbiParam::new(ptr_ty)]);
        let dsig_ref = b.import_signature(dsig);
        let target = b.ins().iconst(ptr_ty, dispatcher as usize as i64);
        b.ins().call_indirect(dsig_ref, target, &[closure, args_ptr, res_ptr]);
        match shape.ret {
            Some(r) => {
                let v = b.ins().stack_load(ptr_ty, r.ir_type(), res_slot, 0);
                b.ins().return_(&[v]);
            }
            None => {
                b.ins().return_(&[]);
            }
        }
        b.finalize(isa.frontend_config());
    }
    let code = compile_function(func)?;
    let code = install_code(&code)?;
    Ok(Thunk { code, closure_reg, arg_offsets, args_size, result_size })
}

/// Compiles a function with every address baked in as a constant, into position-
/// independent bytes.
pub fn compile_function(func: ir::Function) -> Result<Vec<u8>, String> {
    let isa = host_isa()?;
    let mut ctx = Context::for_function(func);
    let compiled = ctx
        .compile(&**isa, &mut ControlPlane::default())
        .map_err(|e| format!("callback thunk compilation failed: {:?}", e.inner))?;
    if !compiled.buffer.relocs().is_empty() {
        return Err("callback thunk needs relocations".into());
    }
    Ok(compiled.code_buffer().to_vec())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::jit::entry_pool;

    struct TestClosure {
        offsets: Vec<u32>,
        calls: std::sync::atomic::AtomicUsize,
    }

    /// Sums (i32, f64, i8) and returns it as an i64 (the f64 truncated), times 10 + calls.
    unsafe extern "C" fn test_dispatch(closure: *const (), args: *mut u8, result: *mut u8) {
        let c = &*(closure as *const TestClosure);
        let n = c.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as i64;
        let a = *(args.add(c.offsets[0] as usize) as *const i32) as i64;
        let d = *(args.add(c.offsets[1] as usize) as *const f64);
        let s = *(args.add(c.offsets[2] as usize) as *const i8) as i64;
        *(result as *mut i64) = (a + d as i64 + s) * 10 + n;
    }

    #[test]
    fn scalar_thunk_round_trip_through_an_entry_stub() {
        let shape = ScalarShape {
            args: vec![
                ScalarRepr::Int { size: 4, signed: true },
                ScalarRepr::F64,
                ScalarRepr::Int { size: 1, signed: true },
            ],
            ret: Some(ScalarRepr::Int { size: 8, signed: true }),
        };
        let t = scalar_thunk(&shape, test_dispatch).unwrap();
        assert_eq!(t.closure_reg, ClosureReg::Int(2));
        let t2 = scalar_thunk(&shape, test_dispatch).unwrap();
        assert!(Arc::ptr_eq(&t, &t2), "same shape compiles once");
        let c = Box::new(TestClosure { offsets: t.arg_offsets.clone(), calls: Default::default() });
        let slot = entry_pool::alloc(t.closure_reg, &*c as *const TestClosure as *const (), t.code).unwrap();
        let f: extern "C" fn(i32, f64, i8) -> i64 = unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(f(-5, 100.75, -128), (-5 + 100 - 128) * 10);
        assert_eq!(f(i32::MAX, 0.0, 127), (i32::MAX as i64 + 127) * 10 + 1);
    }

    unsafe extern "C" fn float_dispatch(closure: *const (), args: *mut u8, result: *mut u8) {
        let c = &*(closure as *const TestClosure);
        let mut acc = 0.0f64;
        for (i, off) in c.offsets.iter().enumerate() {
            let p = args.add(*off as usize);
            acc += if i < 6 { *(p as *const i64) as f64 } else { *(p as *const f32) as f64 };
        }
        *(result as *mut f32) = acc as f32;
    }

    #[test]
    fn closure_moves_to_a_float_register_when_integer_ones_are_used_up() {
        let mut args = vec![ScalarRepr::Int { size: 8, signed: true }; 6];
        args.push(ScalarRepr::F32);
        args.push(ScalarRepr::F32);
        let shape = ScalarShape { args, ret: Some(ScalarRepr::F32) };
        let t = scalar_thunk(&shape, float_dispatch).unwrap();
        assert_eq!(t.closure_reg, ClosureReg::Float(2));
        let c = Box::new(TestClosure { offsets: t.arg_offsets.clone(), calls: Default::default() });
        let slot = entry_pool::alloc(t.closure_reg, &*c as *const TestClosure as *const (), t.code).unwrap();
        let f: extern "C" fn(i64, i64, i64, i64, i64, i64, f32, f32) -> f32 =
            unsafe { std::mem::transmute(slot.code_ptr()) };
        assert_eq!(f(1, 2, 3, 4, 5, 6, 0.5, 0.25), 21.75);
    }
}
