//! Not a speed claim (those live in benches/bench_cdef.py): a measuring aid for the
//! Rust side alone. `python3 benches/bench_cdef.py --write-header /tmp/h.h`, then
//! `JITFFI_BENCH_HEADER=/tmp/h.h cargo test --release --test cdef_speed -- --ignored --nocapture`.

use std::time::Instant;

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::types::target::Target;

#[test]
#[ignore]
fn time_cdef_of_bench_header() {
    let path = std::env::var("JITFFI_BENCH_HEADER").expect("set JITFFI_BENCH_HEADER to a header file");
    let src = std::fs::read_to_string(path).unwrap();
    // JITFFI_BENCH_MODE=parse|cdef runs only that part (for perf stat).
    match std::env::var("JITFFI_BENCH_MODE").as_deref() {
        Ok("parse") => {
            for _ in 0..20 {
                jitffi::cdef::parse_only(&src).unwrap();
            }
            return;
        }
        Ok("cdef") => {
            for _ in 0..20 {
                Namespace::new(Target::X86_64_LINUX).cdef(&src, &CdefOptions::default()).unwrap();
            }
            return;
        }
        _ => {}
    }
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let mut ns = Namespace::new(Target::X86_64_LINUX);
        ns.cdef(&src, &CdefOptions::default()).unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert!(ns.parse_type("struct s199").unwrap().size().is_some());
    }
    let mut parse_times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        jitffi::cdef::parse_only(&src).unwrap();
        parse_times.push(t.elapsed().as_secs_f64());
    }
    parse_times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!("pest parse alone: median {:.3} ms, min {:.3} ms", parse_times[15] * 1e3, parse_times[0] * 1e3);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!("Namespace::cdef of {} bytes: median {:.3} ms, min {:.3} ms", src.len(), times[15] * 1e3, times[0] * 1e3);
}
