//! Struct/union layouts computed by jitffi compared with what gcc computes for the same
//! declarations, on x86_64 (host `cc`) and aarch64 (`aarch64-linux-gnu-gcc`, run under
//! `qemu-aarch64`). The C program prints sizeof/_Alignof of every record, offsetof of
//! every ordinary field, and the bit range every bitfield occupies (found by setting the
//! member to all-ones in a zeroed object and scanning for set bits).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use jitffi::cdef::{CdefOptions, Namespace};
use jitffi::types::model::{Kind, TypeRef};
use jitffi::types::target::Target;

/// xorshift64*: a fixed-seed generator so the generated declarations never change.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Packing {
    Natural,
    Packed,
    Pack(u32),
}

/// One group of declarations given to a single `cdef` call with the same options.
struct Group {
    packing: Packing,
    /// (record keyword + name as C spells it, e.g. "struct g0_s3", field paths to check).
    records: Vec<(String, Vec<Member>)>,
    /// The declarations as cdef sees them.
    cdef: String,
    /// The same declarations for gcc (packed attributes added).
    c: String,
}

#[derive(Clone)]
struct Member {
    name: String,
    bitfield: bool,
    is_bool: bool,
    /// Size in bits of a bitfield's declared type.
    unit_bits: u32,
    /// Arrays cannot be tested with offsetof-of-member-set trick; ordinary fields only.
    _array: bool,
}

const SCALARS: &[(&str, bool)] = &[
    ("char", false),
    ("signed char", false),
    ("unsigned char", false),
    ("short", false),
    ("unsigned short", false),
    ("int", false),
    ("unsigned int", false),
    ("long", false),
    ("unsigned long", false),
    ("long long", false),
    ("unsigned long long", false),
    ("float", false),
    ("double", false),
    ("long double", false),
    ("_Bool", true),
    ("void *", false),
    ("char *", false),
    ("int8_t", false),
    ("uint16_t", false),
    ("int32_t", false),
    ("uint64_t", false),
    ("size_t", false),
    ("wchar_t", false),
    ("enum small_e", false),
    ("enum big_e", false),
    ("double _Complex", false),
    ("float _Complex", false),
    ("int (*)(int)", false),
];
const BITFIELD_TYPES: &[(&str, u32)] = &[
    ("int", 32),
    ("unsigned int", 32),
    ("signed int", 32),
    ("char", 8),
    ("unsigned char", 8),
    ("signed char", 8),
    ("short", 16),
    ("unsigned short", 16),
    ("long", 64),
    ("unsigned long", 64),
    ("long long", 64),
    ("unsigned long long", 64),
    ("_Bool", 1),
    ("enum small_e", 32),
    ("uint8_t", 8),
    ("int64_t", 64),
];

struct Gen {
    rng: Rng,
    out_cdef: String,
    out_c: String,
    records: Vec<(String, Vec<Member>)>,
    /// Complete records usable as by-value members: (C spelling).
    done: Vec<String>,
    packing: Packing,
    prefix: String,
    counter: usize,
}

impl Gen {
    fn attr(&self) -> &'static str {
        if self.packing == Packing::Packed {
            " __attribute__((packed))"
        } else {
            ""
        }
    }

    fn field_decl(&self, ty: &str, name: &str, dims: &str) -> String {
        if let Some(p) = ty.find("(*)") {
            format!("{}(*{name}{dims}){}", &ty[..p], &ty[p + 3..])
        } else {
            format!("{ty} {name}{dims}")
        }
    }

    /// Generates one record body; returns (cdef text, C text, flattened members).
    fn body(&mut self, depth: u32, top_name: &str) -> (String, String, Vec<Member>) {
        let n = 1 + self.rng.below(7);
        let mut cd = String::new();
        let mut c = String::new();
        let mut members = Vec::new();
        let mut fcount = 0;
        for i in 0..n {
            let roll = self.rng.below(100);
            fcount += 1;
            let fname = format!("f{fcount}");
            if roll < 30 {
                let (ty, _) = *self.rng.pick(SCALARS);
                let d = self.field_decl(ty, &fname, "");
                writeln!(cd, "  {d};").unwrap();
                writeln!(c, "  {d};").unwrap();
                members.push(Member {
                    name: fname,
                    bitfield: false,
                    is_bool: false,
                    unit_bits: 0,
                    _array: false,
                });
            } else if roll < 40 {
                let (ty, _) = *self.rng.pick(SCALARS);
                let dims = if self.rng.below(3) == 0 {
                    format!("[{}][{}]", 1 + self.rng.below(3), 1 + self.rng.below(3))
                } else {
                    format!("[{}]", 1 + self.rng.below(5))
                };
                let d = self.field_decl(ty, &fname, &dims);
                writeln!(cd, "  {d};").unwrap();
                writeln!(c, "  {d};").unwrap();
                members.push(Member {
                    name: fname,
                    bitfield: false,
                    is_bool: false,
                    unit_bits: 0,
                    _array: true,
                });
            } else if roll < 75 {
                let (ty, bits) = *self.rng.pick(BITFIELD_TYPES);
                let w = if self.rng.below(8) == 0 {
                    0
                } else {
                    1 + self.rng.below(bits as u64)
                };
                let unnamed = w == 0 || self.rng.below(6) == 0;
                if unnamed {
                    writeln!(cd, "  {ty} :{w};").unwrap();
                    writeln!(c, "  {ty} :{w};").unwrap();
                } else {
                    writeln!(cd, "  {ty} {fname}:{w};").unwrap();
                    writeln!(c, "  {ty} {fname}:{w};").unwrap();
                    let unit_bits = if ty == "_Bool" { 8 } else { bits.max(8) };
                    members.push(Member {
                        name: fname,
                        bitfield: true,
                        is_bool: ty == "_Bool",
                        unit_bits,
                        _array: false,
                    });
                }
            } else if roll < 85 && !self.done.is_empty() {
                let r = self.rng.pick(&self.done).clone();
                let d = format!("{r} {fname}");
                writeln!(cd, "  {d};").unwrap();
                writeln!(c, "  {d};").unwrap();
                members.push(Member {
                    name: fname,
                    bitfield: false,
                    is_bool: false,
                    unit_bits: 0,
                    _array: false,
                });
            } else if roll < 95 && depth < 2 {
                // Anonymous nested struct/union: its fields are flattened into ours.
                let kw = if self.rng.below(2) == 0 {
                    "struct"
                } else {
                    "union"
                };
                let (icd, ic, imembers) = self.body(depth + 1, top_name);
                let attr = self.attr();
                writeln!(cd, "  {kw} {{\n{icd}  }};").unwrap();
                writeln!(c, "  {kw}{attr} {{\n{ic}  }};").unwrap();
                // Rename to keep names unique across the flattening.
                members.extend(imembers);
            } else if i + 1 == n && depth == 0 && self.rng.below(2) == 0 {
                let (ty, _) = *self.rng.pick(&SCALARS[..14]);
                writeln!(cd, "  {ty} {fname}[];").unwrap();
                writeln!(c, "  {ty} {fname}[];").unwrap();
                members.push(Member {
                    name: fname,
                    bitfield: false,
                    is_bool: false,
                    unit_bits: 0,
                    _array: true,
                });
            } else {
                writeln!(cd, "  int {fname};").unwrap();
                writeln!(c, "  int {fname};").unwrap();
                members.push(Member {
                    name: fname,
                    bitfield: false,
                    is_bool: false,
                    unit_bits: 0,
                    _array: false,
                });
            }
        }
        // Field names must be unique in the flattened record: prefix with the depth path.
        let _ = top_name;
        (cd, c, members)
    }

    fn record(&mut self) {
        self.counter += 1;
        let is_union = self.rng.below(5) == 0;
        let kw = if is_union { "union" } else { "struct" };
        let name = format!(
            "{}_{}{}",
            self.prefix,
            if is_union { "u" } else { "s" },
            self.counter
        );
        let (cd, c, members) = self.body(0, &name);
        let (cd, c, members) = uniquify(&cd, &c, members, &name);
        // A flexible array member is only valid last in a struct with another member.
        let has_flex = cd.contains("[];");
        if has_flex && (is_union || members.len() < 2) {
            return;
        }
        if is_union && (cd.contains("[];")) {
            return;
        }
        let attr = self.attr();
        writeln!(self.out_cdef, "{kw} {name} {{\n{cd}}};").unwrap();
        writeln!(self.out_c, "{kw}{attr} {name} {{\n{c}}};").unwrap();
        let full = format!("{kw} {name}");
        if !has_flex {
            self.done.push(full.clone());
        }
        self.records.push((full, members));
    }
}

/// Renames fields `fN` to unique `name_N` in declaration order (same in both texts).
fn uniquify(cd: &str, c: &str, members: Vec<Member>, _name: &str) -> (String, String, Vec<Member>) {
    let mut k = 0;
    let mut map_cd = String::new();
    let mut map_c = String::new();
    let rename = |text: &str, out: &mut String, k: &mut usize| {
        let mut rest = text;
        while let Some(p) = find_field(rest) {
            out.push_str(&rest[..p]);
            let end = p
                + 1
                + rest[p + 1..]
                    .find(|ch: char| !ch.is_ascii_digit())
                    .unwrap_or(rest.len() - p - 1);
            *k += 1;
            write!(out, "m{k}").unwrap();
            rest = &rest[end..];
        }
        out.push_str(rest);
    };
    rename(cd, &mut map_cd, &mut k);
    let mut k2 = 0;
    rename(c, &mut map_c, &mut k2);
    // Members appear in the same order as their names in the text.
    let mut names = Vec::new();
    let mut rest = cd;
    let mut idx = 0;
    while let Some(p) = find_field(rest) {
        let end = p
            + 1
            + rest[p + 1..]
                .find(|ch: char| !ch.is_ascii_digit())
                .unwrap_or(rest.len() - p - 1);
        idx += 1;
        names.push((rest[p..end].to_string(), format!("m{idx}")));
        rest = &rest[end..];
    }
    let mut it = names.into_iter();
    let members = members
        .into_iter()
        .map(|mut m| {
            for (old, new) in it.by_ref() {
                if old == m.name {
                    m.name = new;
                    break;
                }
            }
            m
        })
        .collect();
    (map_cd, map_c, members)
}

/// Position of the next `f<digits>` field name (preceded by space, `*` or `(`).
fn find_field(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| {
        b[i] == b'f'
            && i > 0
            && matches!(b[i - 1], b' ' | b'*' | b'(')
            && i + 1 < b.len()
            && b[i + 1].is_ascii_digit()
    })
}

const PRELUDE_CDEF: &str =
    "enum small_e { SE_A, SE_B = 100 };\nenum big_e { BE_A = -1, BE_B = 0x100000000 };\n";

const HAND_PICKED: &str = r#"
struct h_basic { char a; int b; char c; };
struct h_dbl { char a; double b; };
struct h_ld { char a; long double b; };
struct h_cplx { char a; double _Complex z; float _Complex w; };
struct h_bits1 { int a:3; int b:5; int c:24; int d:1; };
struct h_bits2 { char a; int b:20; int c:20; };
struct h_bits3 { char a:4; char b:5; };
struct h_bits4 { long long a:40; int b:30; char c; };
struct h_bits5 { int a:1; int :0; int b:1; };
struct h_bits6 { char c; int :0; char d; };
struct h_bits7 { char c; long long :0; char d; };
struct h_bits8 { char c; int :5; char d; };
struct h_bits9 { short a:9; short b:9; short c:9; };
struct h_bits10 { unsigned char a:1; unsigned long long b:63; };
struct h_bits11 { _Bool a:1; _Bool b:1; int c:2; };
struct h_bits12 { char a; long long b:60; };
struct h_bits13 { int a:31; int b:2; };
struct h_bits14 { enum small_e e:7; unsigned u:25; };
struct h_bits15 { char a; char :0; char b; };
struct h_bits16 { long long :1; char a; };
union h_ubits { int a:3; long long b:33; char c; };
union h_u1 { char a; double b; int c[3]; };
struct h_anon { int a; union { int b; float c; }; struct { char d; char e; }; long f; };
struct h_anon2 { char x; struct { char y; struct { double z; }; }; };
struct h_flex { int n; double a[]; };
struct h_flex2 { char c; short s[]; };
struct h_zero { int a; char z[0]; };
struct h_nested { struct h_basic b; char c; struct h_dbl d[2]; };
struct h_arr { char a[3]; short b[3][5]; int *p[2]; };
struct h_fptr { int (*f)(int); void (*g[2])(void); char c; };
struct h_empty_tail { long long a; char b; };
struct h_ptrs { char c; void *p; char d; };
"#;

fn generate(seed: u64) -> Vec<Group> {
    let mut groups = Vec::new();
    let packings = [
        Packing::Natural,
        Packing::Natural,
        Packing::Packed,
        Packing::Pack(1),
        Packing::Pack(2),
        Packing::Pack(4),
        Packing::Pack(8),
    ];
    for (gi, packing) in packings.iter().enumerate() {
        let mut g = Gen {
            rng: Rng(seed ^ (gi as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15)),
            out_cdef: String::new(),
            out_c: String::new(),
            records: Vec::new(),
            done: Vec::new(),
            packing: *packing,
            prefix: format!("g{gi}"),
            counter: 0,
        };
        if gi == 0 {
            g.out_cdef.push_str(HAND_PICKED);
            g.out_c.push_str(HAND_PICKED);
            for line in HAND_PICKED.lines().filter(|l| !l.trim().is_empty()) {
                let head: Vec<&str> = line.split_whitespace().take(2).collect();
                let full = format!("{} {}", head[0], head[1]);
                let body = &line[line.find('{').unwrap() + 1..line.rfind('}').unwrap()];
                let members = hand_members(body);
                g.records.push((full, members));
            }
        }
        let count = if gi < 2 { 60 } else { 25 };
        for _ in 0..count {
            g.record();
        }
        let c = match packing {
            Packing::Pack(n) => format!("#pragma pack({n})\n{}#pragma pack()\n", g.out_c),
            _ => g.out_c.clone(),
        };
        groups.push(Group {
            packing: *packing,
            records: g.records,
            cdef: g.out_cdef,
            c,
        });
    }
    groups
}

/// Named members of a hand-picked one-line record (anonymous members flattened).
fn hand_members(body: &str) -> Vec<Member> {
    let mut out = Vec::new();
    let flat = body.replace(['{', '}'], ";");
    for decl in flat.split(';') {
        let d = decl.trim();
        if d.is_empty()
            || d == "union"
            || d == "struct"
            || d.ends_with("union")
            || d.ends_with("struct")
        {
            continue;
        }
        let (main, bitfield) = match d.split_once(':') {
            Some((m, _)) => (m.trim(), true),
            None => (d, false),
        };
        // The name is the last identifier before any '[' or ')' in the declarator.
        let cut = main.find('[').unwrap_or(main.len());
        let head = &main[..cut];
        let head = if let Some(p) = head.find("(*") {
            let inner = &head[p + 2..];
            &inner[..inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len())]
        } else {
            head
        };
        let name = head
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        let words: Vec<&str> = main.split_whitespace().collect();
        if name.is_empty()
            || (bitfield && words.len() < 2)
            || ["int", "char", "long", "short", "_Bool"].contains(&name)
        {
            continue; // unnamed bitfield
        }
        out.push(Member {
            name: name.to_string(),
            bitfield,
            is_bool: main.starts_with("_Bool"),
            unit_bits: 0,
            _array: main.contains('['),
        });
    }
    out
}

fn c_program(groups: &[Group]) -> String {
    let mut p = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n#include <wchar.h>\n",
    );
    p.push_str(PRELUDE_CDEF);
    for g in groups {
        p.push_str(&g.c);
    }
    p.push_str(
        "static void bits(const char *rec, const char *f, const unsigned char *b, size_t n) {\n\
         int first = -1, count = 0;\n\
         for (size_t i = 0; i < n * 8; i++) if (b[i / 8] >> (i % 8) & 1) { if (first < 0) first = (int)i; count++; }\n\
         printf(\"B %s %s %d %d\\n\", rec, f, first, count);\n}\n",
    );
    p.push_str("int main(void) {\n");
    for g in groups {
        for (rec, members) in &g.records {
            writeln!(
                p,
                "  printf(\"S {rec} %zu %zu\\n\", sizeof({rec}), _Alignof({rec}));"
            )
            .unwrap();
            for m in members {
                if m.bitfield {
                    let v = if m.is_bool { "1" } else { "-1" };
                    writeln!(
                        p,
                        "  {{ {rec} s; memset(&s, 0, sizeof s); s.{f} = {v}; bits(\"{rec}\", \"{f}\", (const unsigned char *)&s, sizeof s); }}",
                        f = m.name
                    )
                    .unwrap();
                } else {
                    writeln!(
                        p,
                        "  printf(\"F {rec} {f} %zu\\n\", offsetof({rec}, {f}));",
                        f = m.name
                    )
                    .unwrap();
                }
            }
        }
    }
    p.push_str("  return 0;\n}\n");
    p
}

fn run_gcc(program: &str, compiler: &str, runner: &[&str], tag: &str) -> Result<String, String> {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("jitffi_layout_{}_{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, program).map_err(|e| e.to_string())?;
    let out = Command::new(compiler)
        .args(["-std=gnu11", "-w", "-O0", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run {compiler}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{compiler} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut cmd = if runner.is_empty() {
        Command::new(&exe)
    } else {
        let mut c = Command::new(runner[0]);
        c.args(&runner[1..]).arg(&exe);
        c
    };
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the layout program: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "layout program failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field_of(ty: &TypeRef, name: &str) -> Option<(usize, i32, i32)> {
    let l = ty.record_layout()?;
    l.fields
        .iter()
        .find(|f| f.name == name)
        .map(|f| (f.offset, f.bitshift, f.bitsize))
}

fn compare(groups: &[Group], target: Target, gcc_output: &str) -> (usize, usize, Vec<String>) {
    let mut ns = Namespace::new(target);
    ns.cdef(PRELUDE_CDEF, &CdefOptions::default()).unwrap();
    for g in groups {
        let opts = match g.packing {
            Packing::Natural => CdefOptions::default(),
            Packing::Packed => CdefOptions {
                packed: true,
                ..Default::default()
            },
            Packing::Pack(n) => CdefOptions {
                pack: Some(n),
                ..Default::default()
            },
        };
        ns.cdef(&g.cdef, &opts)
            .unwrap_or_else(|e| panic!("cdef failed: {e}\n{}", g.cdef));
    }
    let mut types: HashMap<String, TypeRef> = HashMap::new();
    let mut mismatches = Vec::new();
    let mut records = 0;
    let mut checks = 0;
    let unit_bits: HashMap<(String, String), u32> = groups
        .iter()
        .flat_map(|g| g.records.iter())
        .flat_map(|(rec, ms)| {
            ms.iter()
                .map(move |m| ((rec.clone(), m.name.clone()), m.unit_bits))
        })
        .collect();
    // gcc's bit placement of every bitfield, to judge refusals.
    let gcc_bits: HashMap<(String, String), (i64, i64)> = gcc_output
        .lines()
        .filter(|l| l.starts_with("B "))
        .map(|l| {
            let p: Vec<&str> = l.split_whitespace().collect();
            (
                (format!("{} {}", p[1], p[2]), p[3].to_string()),
                (p[4].parse().unwrap(), p[5].parse().unwrap()),
            )
        })
        .collect();
    let mut refused: Vec<String> = Vec::new();
    let mut refused_messages: Vec<String> = Vec::new();
    let mut skip_record = String::new();
    for line in gcc_output.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let rec = format!("{} {}", parts[1], parts[2]);
        if rec == skip_record {
            continue;
        }
        let ty = types
            .entry(rec.clone())
            .or_insert_with(|| ns.parse_type(&rec).unwrap())
            .clone();
        checks += 1;
        match parts[0] {
            "S" => {
                records += 1;
                let want = (
                    parts[3].parse::<usize>().unwrap(),
                    parts[4].parse::<usize>().unwrap(),
                );
                let Kind::Record(r) = &ty.kind else { panic!() };
                let got = match r.layout.get() {
                    Some(Ok(l)) => Ok((l.size, l.align)),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err("no layout".to_string()),
                };
                if let Err(e) = &got {
                    // Like cffi, jitffi refuses packed bitfields that gcc lets straddle
                    // more bytes than their declared type has: accepted only when gcc's
                    // placement really does that.
                    if let Some(rest) = e
                        .split("field '")
                        .nth(1)
                        .and_then(|r| r.split("' to reuse some bits").next())
                    {
                        let (owner, field) = rest.rsplit_once('.').unwrap();
                        let own = owner == rec || owner.contains('$');
                        // Propagated from a by-value member refused earlier, or a field of
                        // this record (anonymous members flattened in) that gcc places
                        // across more bytes than its declared type has.
                        let justified = refused_messages.contains(e)
                            || (own
                                && match gcc_bits.get(&(rec.clone(), field.to_string())) {
                                    Some((first, width)) => {
                                        let unit =
                                            unit_bits[&(rec.clone(), field.to_string())] as i64;
                                        first % 8 + width > unit
                                    }
                                    None => false,
                                });
                        if justified {
                            refused.push(rec.clone());
                            refused_messages.push(e.clone());
                            skip_record = rec.clone();
                            continue;
                        }
                    }
                }
                if got != Ok(want) {
                    mismatches.push(format!("{rec}: size/align gcc {want:?}, jitffi {got:?}"));
                }
            }
            "F" => {
                let want: usize = parts[4].parse().unwrap();
                let got = field_of(&ty, parts[3]);
                if got.map(|g| g.0) != Some(want) || got.map(|g| g.1) != Some(-1) {
                    mismatches.push(format!(
                        "{rec}.{}: offset gcc {want}, jitffi {got:?}",
                        parts[3]
                    ));
                }
            }
            "B" => {
                let first: i64 = parts[4].parse().unwrap();
                let count: i64 = parts[5].parse().unwrap();
                let got =
                    field_of(&ty, parts[3]).map(|(o, s, n)| (o as i64 * 8 + s as i64, n as i64));
                if got != Some((first, count)) {
                    mismatches.push(format!(
                        "{rec}.{}: bits gcc (first {first}, width {count}), jitffi {got:?}",
                        parts[3]
                    ));
                }
            }
            _ => panic!("bad line {line}"),
        }
    }
    eprintln!(
        "{} packed records refused like cffi does (bitfield straddling its type's size)",
        refused.len()
    );
    let records = records - refused.len();
    (records, checks, mismatches)
}

fn check_target(target: Target, compiler: &str, runner: &[&str], tag: &str) {
    let groups = generate(0x5EED_1234_ABCD_0042);
    let program = c_program(&groups);
    let out = run_gcc(&program, compiler, runner, tag).unwrap_or_else(|e| panic!("{e}"));
    let (records, checks, mismatches) = compare(&groups, target, &out);
    eprintln!(
        "{tag}: {records} records, {checks} checks against gcc, {} mismatches",
        mismatches.len()
    );
    assert!(records >= 200, "only {records} records were fully compared");
    if !mismatches.is_empty() {
        let mut shown = mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        for g in &groups {
            for m in mismatches.iter().take(3) {
                let rec = m.split([':', '.']).next().unwrap();
                let name = rec.split_whitespace().nth(1).unwrap_or("");
                if let Some(p) = g.cdef.find(&format!(" {name} {{")) {
                    let end = g.cdef[p..].find("\n};").map_or(g.cdef.len(), |e| p + e + 3);
                    let start = g.cdef[..p].rfind('\n').map_or(0, |s| s + 1);
                    write!(
                        shown,
                        "\n--- {:?}:\n{}",
                        g.packing_name(),
                        &g.cdef[start..end]
                    )
                    .unwrap();
                }
            }
        }
        panic!(
            "{} layout mismatches with gcc on {tag}:\n{shown}",
            mismatches.len()
        );
    }
}

impl Group {
    fn packing_name(&self) -> String {
        match self.packing {
            Packing::Natural => "natural".into(),
            Packing::Packed => "packed".into(),
            Packing::Pack(n) => format!("pack={n}"),
        }
    }
}

fn tool_exists(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn layouts_match_gcc_x86_64() {
    if cfg!(not(target_arch = "x86_64")) {
        panic!("this test compares x86_64 layouts with the host cc; run it on an x86_64 host");
    }
    check_target(Target::X86_64_LINUX, "cc", &[], "x86_64");
}

#[test]
fn layouts_match_gcc_aarch64() {
    for tool in ["aarch64-linux-gnu-gcc", "qemu-aarch64"] {
        assert!(
            tool_exists(tool),
            "{tool} is missing: install gcc-aarch64-linux-gnu and qemu-user (apt-get install \
             gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user) to check aarch64 layouts"
        );
    }
    check_target(
        Target::AARCH64_LINUX,
        "aarch64-linux-gnu-gcc",
        &["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
        "aarch64",
    );
}
