//! `long double` values kept bit-exact in 16 bytes, converted to and from `f64` by bit
//! manipulation (Rust has no `f80`/`f128`): x87 80-bit extended on x86_64, IEEE binary128
//! on aarch64 Linux.

use crate::types::target::{Arch, Target};

fn ldexp(mut x: f64, mut e: i32) -> f64 {
    // Scale in steps so intermediate results neither overflow nor flush early.
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
        if x.is_infinite() {
            return x;
        }
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
        if x == 0.0 {
            return x;
        }
    }
    x * 2f64.powi(e)
}

/// Splits a finite nonzero f64 into (sign, unbiased exponent of the leading bit, 64-bit
/// mantissa with the leading bit at bit 63).
fn split(v: f64) -> (bool, i32, u64) {
    let bits = v.to_bits();
    let sign = bits >> 63 != 0;
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        // subnormal: normalize
        let lz = frac.leading_zeros() as i32; // >= 12
        let mant = frac << lz;
        (sign, -1022 - (lz - 11), mant)
    } else {
        (sign, exp - 1023, (frac | (1u64 << 52)) << 11)
    }
}

pub fn f64_to_x87(v: f64) -> [u8; 16] {
    let mut out = [0u8; 16];
    let sign = v.is_sign_negative();
    let (se, mant): (u16, u64) = if v == 0.0 {
        (0, 0)
    } else if v.is_infinite() {
        (0x7fff, 1u64 << 63)
    } else if v.is_nan() {
        (0x7fff, 0xc000_0000_0000_0000)
    } else {
        let (_, e, m) = split(v);
        ((e + 16383) as u16, m)
    };
    let se = se | if sign { 0x8000 } else { 0 };
    out[..8].copy_from_slice(&mant.to_le_bytes());
    out[8..10].copy_from_slice(&se.to_le_bytes());
    out
}

pub fn x87_to_f64(b: &[u8; 16]) -> f64 {
    let mant = u64::from_le_bytes(b[..8].try_into().unwrap());
    let se = u16::from_le_bytes([b[8], b[9]]);
    let sign = if se & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (se & 0x7fff) as i32;
    if exp == 0x7fff {
        return if mant << 1 == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    if mant == 0 {
        return sign * 0.0;
    }
    let e = if exp == 0 { -16382 } else { exp - 16383 };
    // u64 -> f64 rounds to nearest-even; then scale (exact unless the result is subnormal).
    sign * ldexp(mant as f64, e - 63)
}

pub fn f64_to_f128(v: f64) -> [u8; 16] {
    let sign = (v.is_sign_negative() as u128) << 127;
    let bits: u128 = if v == 0.0 {
        0
    } else if v.is_infinite() {
        0x7fffu128 << 112
    } else if v.is_nan() {
        (0x7fffu128 << 112) | (1u128 << 111)
    } else {
        let (_, e, m) = split(v);
        // drop the explicit leading bit; 63 fraction bits → top of 112-bit field
        let frac = ((m << 1) as u128) << 48;
        (((e + 16383) as u128) << 112) | frac
    };
    (sign | bits).to_le_bytes()
}

pub fn f128_to_f64(b: &[u8; 16]) -> f64 {
    let bits = u128::from_le_bytes(*b);
    let sign = if bits >> 127 != 0 { -1.0 } else { 1.0 };
    let exp = ((bits >> 112) & 0x7fff) as i32;
    let frac = bits & ((1u128 << 112) - 1);
    if exp == 0x7fff {
        return if frac == 0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    if exp == 0 && frac == 0 {
        return sign * 0.0;
    }
    // top 64 bits of the 113-bit significand, with a sticky bit for correct rounding
    let (lead, e) = if exp == 0 {
        (0u128, -16382)
    } else {
        (1u128, exp - 16383)
    };
    let sig = (lead << 112) | frac;
    let top = (sig >> 49) as u64;
    let sticky = (sig & ((1u128 << 49) - 1) != 0) as u64;
    sign * ldexp((top | sticky) as f64, e - 63)
}

pub fn to_f64(target: &Target, b: &[u8; 16]) -> f64 {
    match target.arch {
        Arch::X86_64 => x87_to_f64(b),
        Arch::Aarch64 => f128_to_f64(b),
    }
}

pub fn from_f64(target: &Target, v: f64) -> [u8; 16] {
    match target.arch {
        Arch::X86_64 => f64_to_x87(v),
        Arch::Aarch64 => f64_to_f128(v),
    }
}

/// C's `%E` formatting with 6 digits, as cffi prints long double cdata.
pub fn format_e(v: f64) -> String {
    if v.is_nan() {
        return "NAN".into();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-INF".into() } else { "INF".into() };
    }
    let s = format!("{:.6E}", v);
    match s.split_once('E') {
        Some((m, e)) => {
            let (neg, digits) = match e.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, e),
            };
            format!("{m}E{}{:0>2}", if neg { '-' } else { '+' }, digits)
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -2.5,
            1e300,
            1e-300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.1,
            f64::INFINITY,
            -f64::INFINITY,
        ] {
            assert_eq!(x87_to_f64(&f64_to_x87(v)).to_bits(), v.to_bits(), "{v}");
            assert_eq!(f128_to_f64(&f64_to_f128(v)).to_bits(), v.to_bits(), "{v}");
        }
        assert!(x87_to_f64(&f64_to_x87(f64::NAN)).is_nan());
        // 1.0L in x87 is 0x3fff 8000000000000000
        let one = f64_to_x87(1.0);
        assert_eq!(&one[..10], &[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
        assert_eq!(format_e(1.5), "1.500000E+00");
        assert_eq!(format_e(-1.5e-7), "-1.500000E-07");
    }
}
