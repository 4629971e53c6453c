//! Where the time of one big cdef goes, per phase, without Python in the way.
//!
//!     python3 benches/bench_cdef.py --write-header /tmp/h.h
//!     cargo bench --bench cdef_phases -- /tmp/h.h
//!
//! Phases are measured cumulatively (preprocess; preprocess + pest parse; the whole
//! Namespace::cdef with resolve and layout), medians over repeats; the differences are
//! the cost of each phase.

use std::time::Instant;

use jitffi::cdef::{parse_only, preprocess_only, CdefOptions, Namespace};
use jitffi::types::target::Target;

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[reps / 2]
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".h"))
        .unwrap_or_else(|| "/tmp/h.h".to_string());
    let header = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (write it with bench_cdef.py --write-header)"));
    // `--loop N`: only run the whole cdef N times (for perf record / callgrind).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        let n: usize = args[i + 1].parse().unwrap();
        for _ in 0..n {
            let mut ns = Namespace::new(Target::host());
            ns.cdef(&header, &CdefOptions::default()).unwrap();
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--loop-parse") {
        let n: usize = args[i + 1].parse().unwrap();
        for _ in 0..n {
            parse_only(&header).unwrap();
        }
        return;
    }
    let reps = 41;
    let pre = median_ms(reps, || {
        preprocess_only(&header).unwrap();
    });
    let parse = median_ms(reps, || {
        parse_only(&header).unwrap();
    });
    let full = median_ms(reps, || {
        let mut ns = Namespace::new(Target::host());
        ns.cdef(&header, &CdefOptions::default()).unwrap();
    });
    println!("cdef of {} bytes, medians of {reps} runs", header.len());
    println!("preprocess            {pre:8.2} ms");
    println!("pest parse            {:8.2} ms", parse - pre);
    println!("resolve + layout      {:8.2} ms", full - parse);
    println!("total Namespace::cdef {full:8.2} ms");
}
