//! Which call tier serves functions and callbacks: the generic tier (one stub and one
//! thunk per target, driven by the ABI plan, nothing compiled per signature) or code
//! compiled for the signature's shape. `JITFFI_TIER` forces one (`generic`, `compiled`)
//! or leaves the choice to jitffi (`auto`, the default: start generic, promote hot
//! functions and callback shapes); the tests run under each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierMode {
    Auto,
    Generic,
    Compiled,
}

impl TierMode {
    pub fn parse(s: &str) -> Option<TierMode> {
        match s {
            "" | "auto" => Some(TierMode::Auto),
            "generic" => Some(TierMode::Generic),
            "compiled" => Some(TierMode::Compiled),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TierMode::Auto => "auto",
            TierMode::Generic => "generic",
            TierMode::Compiled => "compiled",
        }
    }
}

static MODE: OnceLock<Result<TierMode, String>> = OnceLock::new();

fn read_mode() -> &'static Result<TierMode, String> {
    MODE.get_or_init(|| {
        let v = std::env::var("JITFFI_TIER").unwrap_or_default();
        TierMode::parse(&v).ok_or(v)
    })
}

/// The tier policy of this process (an invalid `JITFFI_TIER` fails the import, so after
/// `check` this is never the fallback).
pub fn mode() -> TierMode {
    *read_mode().as_ref().unwrap_or(&TierMode::Auto)
}

/// Counters of what each tier did; relaxed atomics (statistics, read by `_jit_stats`).
pub struct TierStats {
    pub generic_calls: AtomicU64,
    pub promotions: AtomicU64,
    pub generic_callbacks: AtomicU64,
    pub callback_promotions: AtomicU64,
}

pub static STATS: TierStats = TierStats {
    generic_calls: AtomicU64::new(0),
    promotions: AtomicU64::new(0),
    generic_callbacks: AtomicU64::new(0),
    callback_promotions: AtomicU64::new(0),
};

impl TierStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Fails the import on a `JITFFI_TIER` value that names no tier.
pub fn check() -> PyResult<()> {
    match read_mode() {
        Ok(_) => Ok(()),
        Err(v) => Err(PyValueError::new_err(format!(
            "JITFFI_TIER={v:?}: expected 'auto', 'generic' or 'compiled'"
        ))),
    }
}

/// The callback tiers' counters for `_jit_stats`: thunks compiled (and their code bytes),
/// calls the generic thunk served, shapes promoted.
pub fn callback_stats() -> Vec<(&'static str, u64)> {
    let (shapes, bytes) = crate::jit::callback_thunk::compiled_stats();
    vec![
        ("callback_shapes_compiled", shapes as u64),
        ("callback_code_bytes", bytes as u64),
        (
            "generic_callbacks",
            TierStats::get(&STATS.generic_callbacks),
        ),
        (
            "callback_promotions",
            TierStats::get(&STATS.callback_promotions),
        ),
    ]
}
