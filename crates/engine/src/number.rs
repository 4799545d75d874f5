//! Numbers of the configuration language, as Terraform's: binary floats of
//! 512-bit precision (Go's `big.Float`, rounding to nearest even), so that
//! integers far beyond 2^53 stay exact and `0.1 + 0.2` is `0.3`.
//!
//! Most numbers in a configuration are small integers (counts, ports,
//! replicas), so those take a fast path: [`Number::Int`] holds an `i64` and
//! only an operation whose exact result leaves `i64` (or is not an integer)
//! moves to a big float. A big float that is an integer in `i64` range is
//! always brought back to `Int`, so each value has one form and structural
//! equality is numeric equality.
//!
//! Values from `f64` (what functions such as `pow` and `log` compute with,
//! as Terraform's do, and numbers read from JSON) carry 53 bits of
//! precision; arithmetic takes the larger precision of its operands, as
//! `big.Float` does. Printing is the shortest decimal that reads back to
//! the same number at its precision, in positional notation (Go's
//! `Text('f', -1)`), which is what Terraform writes.
//!
//! Must not do I/O.

use num_bigint::{BigInt, Sign};
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// Precision of number literals and of integers mixed into big floats.
pub const PRECISION: u64 = 512;

/// The largest decimal exponent a number may have, either way (a limit
/// no configuration reaches; it keeps printing and parsing bounded).
pub const MAX_EXPONENT: i64 = 4096;

/// A number of the configuration language.
#[derive(Clone)]
pub enum Number {
    Int(i64),
    /// Never an integer in `i64` range, never infinite.
    Big(Arc<Big>),
}

/// Why a number could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// Larger than `1e4096` or closer to zero than `1e-4096`.
    OutOfRange,
    /// Infinity or NaN, e.g. from `pow` or `log`.
    NotFinite,
    DivisionByZero,
    Syntax,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberError::OutOfRange => {
                write!(f, "the number is out of range (limit: magnitudes from 1e-{MAX_EXPONENT} to 1e{MAX_EXPONENT})")
            }
            NumberError::NotFinite => write!(f, "the result is not a finite number"),
            NumberError::DivisionByZero => write!(f, "division by zero"),
            NumberError::Syntax => write!(f, "not a number"),
        }
    }
}

/// A binary float `m · 2^e` with a precision of `prec` bits: `m` has at
/// most `prec` bits and no trailing zero bits (zero is `m = 0, e = 0`).
#[derive(Clone, Debug)]
pub struct Big {
    m: BigInt,
    e: i64,
    prec: u64,
}

impl Big {
    /// `m · 2^e` rounded to `prec` bits, to nearest, ties to even.
    fn rounded(m: BigInt, e: i64, prec: u64) -> Big {
        Big::rounded_sticky(m, e, prec, false)
    }

    /// As [`Big::rounded`], for a value a little above `|m| · 2^e` when
    /// `sticky` (the nonzero remainder of a division).
    fn rounded_sticky(m: BigInt, e: i64, prec: u64, sticky: bool) -> Big {
        let negative = m.sign() == Sign::Minus;
        let mut mag = m.abs();
        let mut e = e;
        let bits = mag.bits();
        if bits > prec {
            let shift = bits - prec;
            let dropped: BigInt = &mag & ((BigInt::one() << shift) - 1);
            mag >>= shift;
            e += shift as i64;
            let half = BigInt::one() << (shift - 1);
            let up = match dropped.cmp(&half) {
                Ordering::Greater => true,
                Ordering::Equal => sticky || mag.bit(0),
                Ordering::Less => false,
            };
            if up {
                mag += 1;
            }
        }
        if mag.is_zero() {
            return Big { m: mag, e: 0, prec };
        }
        if let Some(zeros) = mag.trailing_zeros()
            && zeros > 0
        {
            mag >>= zeros;
            e += zeros as i64;
        }
        Big { m: if negative { -mag } else { mag }, e, prec }
    }

    fn from_i64(i: i64) -> Big {
        Big::rounded(BigInt::from(i), 0, PRECISION)
    }

    fn is_zero(&self) -> bool {
        self.m.is_zero()
    }

    fn is_int(&self) -> bool {
        self.e >= 0 || self.m.is_zero()
    }

    /// The binary magnitude: `|x|` is in `[2^(k-1), 2^k)`.
    fn magnitude(&self) -> i64 {
        self.m.bits() as i64 + self.e
    }

    /// The integer part (towards zero), exactly.
    fn int_part(&self) -> BigInt {
        if self.e >= 0 {
            &self.m << self.e as u64
        } else {
            let shift = (-self.e) as u64;
            if shift >= self.m.bits() {
                return BigInt::zero();
            }
            let mag = self.m.abs() >> shift;
            if self.m.sign() == Sign::Minus { -mag } else { mag }
        }
    }

    fn add(&self, other: &Big) -> Big {
        let prec = self.prec.max(other.prec);
        if self.is_zero() {
            return Big::rounded(other.m.clone(), other.e, prec);
        }
        if other.is_zero() {
            return Big::rounded(self.m.clone(), self.e, prec);
        }
        let e = self.e.min(other.e);
        let a = &self.m << (self.e - e) as u64;
        let b = &other.m << (other.e - e) as u64;
        Big::rounded(a + b, e, prec)
    }

    fn neg(&self) -> Big {
        Big { m: -&self.m, e: self.e, prec: self.prec }
    }

    fn mul(&self, other: &Big) -> Big {
        Big::rounded(&self.m * &other.m, self.e + other.e, self.prec.max(other.prec))
    }

    /// `self / other`, `other` not zero.
    fn div(&self, other: &Big) -> Big {
        let prec = self.prec.max(other.prec);
        if self.is_zero() {
            return Big { m: BigInt::zero(), e: 0, prec };
        }
        // Enough quotient bits that rounding to `prec` sees the guard bit.
        let k = (prec as i64 + 2 + other.m.bits() as i64 - self.m.bits() as i64).max(0) as u64;
        let numerator = &self.m << k;
        let q = &numerator / &other.m;
        let r = numerator - &q * &other.m;
        Big::rounded_sticky(q, self.e - other.e - k as i64, prec, !r.is_zero())
    }

    fn cmp(&self, other: &Big) -> Ordering {
        let (sa, sb) = (self.m.sign(), other.m.sign());
        if sa != sb {
            return sa.cmp(&sb);
        }
        let e = self.e.min(other.e);
        let a = &self.m << (self.e - e) as u64;
        let b = &other.m << (other.e - e) as u64;
        a.cmp(&b)
    }

    /// From a decimal `digits · 10^exp`, rounded to `prec` bits.
    fn from_decimal(digits: BigInt, exp: i64, prec: u64) -> Big {
        if exp >= 0 {
            Big::rounded(digits * pow10(exp as u64), 0, prec)
        } else {
            let numerator = Big { m: digits, e: 0, prec };
            numerator.div(&Big { m: pow10((-exp) as u64), e: 0, prec })
        }
    }

    /// The decimal `d · 10^k` nearest to `self` for the given `k`.
    fn to_decimal_at(&self, k: i64) -> BigInt {
        let mut num = self.m.abs();
        let mut den = BigInt::one();
        if self.e >= 0 {
            num <<= self.e as u64;
        } else {
            den <<= (-self.e) as u64;
        }
        if k >= 0 {
            den *= pow10(k as u64);
        } else {
            num *= pow10((-k) as u64);
        }
        let q = &num / &den;
        let r = num - &q * &den;
        let twice: BigInt = r * 2;
        let q = match twice.cmp(&den) {
            Ordering::Greater => q + 1,
            Ordering::Equal if q.bit(0) => q + 1,
            _ => q,
        };
        if self.m.sign() == Sign::Minus { -q } else { q }
    }

    fn to_f64(&self) -> f64 {
        let r = Big::rounded(self.m.clone(), self.e, 53);
        let mut f = r.m.to_f64().unwrap_or(0.0);
        let mut e = r.e;
        while e != 0 {
            let step = e.clamp(-1000, 1000);
            f *= 2f64.powi(step as i32);
            e -= step;
        }
        f
    }

    fn from_f64(f: f64) -> Big {
        let bits = f.to_bits();
        let negative = bits >> 63 == 1;
        let exponent = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1u64 << 52) - 1);
        let (mantissa, e) = if exponent == 0 { (fraction, -1074) } else { (fraction | (1u64 << 52), exponent - 1075) };
        let m = BigInt::from(mantissa);
        Big::rounded(if negative { -m } else { m }, e, 53)
    }
}

fn pow10(n: u64) -> BigInt {
    num_traits::pow(BigInt::from(10u32), n as usize)
}

impl Number {
    /// Parses a decimal number: an HCL literal or the text of a string
    /// converted to a number (`"1.5e3"`, `"-7"`), at 512-bit precision.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Number::Int(i));
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
            None => (unsigned, None),
        };
        let (whole, fraction) = match mantissa.split_once('.') {
            Some((w, f)) => (w, f),
            None => (mantissa, ""),
        };
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !digits_ok(whole) || !digits_ok(fraction) {
            return Err(NumberError::Syntax);
        }
        let exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let body = e.strip_prefix(['+', '-']).unwrap_or(e);
                if body.is_empty() || !digits_ok(body) {
                    return Err(NumberError::Syntax);
                }
                if body.len() > 8 {
                    return Err(NumberError::OutOfRange);
                }
                e.parse().map_err(|_| NumberError::Syntax)?
            }
        };
        let all = format!("{whole}{fraction}");
        let significant = all.trim_start_matches('0');
        if significant.is_empty() {
            return Ok(Number::Int(0));
        }
        if significant.len() as i64 > 2 * MAX_EXPONENT {
            return Err(NumberError::OutOfRange);
        }
        let exp = exponent - fraction.len() as i64;
        let magnitude = exp + significant.len() as i64;
        if magnitude.abs() > MAX_EXPONENT + 1 {
            return Err(NumberError::OutOfRange);
        }
        let digits: BigInt = significant.parse().map_err(|_| NumberError::Syntax)?;
        let digits = if negative { -digits } else { digits };
        Number::from_big(Big::from_decimal(digits, exp, PRECISION))
    }

    /// A number from a float (53 bits of precision).
    pub fn from_f64(f: f64) -> Result<Number, NumberError> {
        if !f.is_finite() {
            return Err(NumberError::NotFinite);
        }
        if f.fract() == 0.0 && f.abs() < 9.2e18 {
            return Ok(Number::Int(f as i64));
        }
        Number::from_big(Big::from_f64(f))
    }

    fn from_big(big: Big) -> Result<Number, NumberError> {
        if big.is_int() {
            if let Some(i) = big.int_part().to_i64() {
                return Ok(Number::Int(i));
            }
        }
        // 2^13610 > 1e4097: a bound on the binary magnitude either way.
        if !big.is_zero() && big.magnitude().abs() > MAX_EXPONENT * 3322 / 1000 + 4 {
            return Err(NumberError::OutOfRange);
        }
        Ok(Number::Big(Arc::new(big)))
    }

    fn to_big(&self) -> Big {
        match self {
            Number::Int(i) => Big::from_i64(*i),
            Number::Big(b) => (**b).clone(),
        }
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::Big(b) => b.to_f64(),
        }
    }

    /// The number when it is an integer in `i64` range.
    pub fn to_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Big(_) => None,
        }
    }

    pub fn is_integer(&self) -> bool {
        match self {
            Number::Int(_) => true,
            Number::Big(b) => b.is_int(),
        }
    }

    /// The integer value, exactly, when the number is an integer.
    pub fn to_bigint(&self) -> Option<BigInt> {
        match self {
            Number::Int(i) => Some(BigInt::from(*i)),
            Number::Big(b) => b.is_int().then(|| b.int_part()),
        }
    }

    /// An integer of any size (rounded to 512 bits, as a literal would be).
    pub fn from_bigint(i: BigInt) -> Result<Number, NumberError> {
        if let Some(small) = i.to_i64() {
            return Ok(Number::Int(small));
        }
        Number::from_big(Big::rounded(i, 0, PRECISION))
    }

    /// The `i64` result when both are `Int` and it does not overflow, else
    /// the big float one.
    fn either(&self, other: &Number, int: fn(i64, i64) -> Option<i64>, big: fn(&Big, &Big) -> Big) -> Result<Number, NumberError> {
        if let (Number::Int(a), Number::Int(b)) = (self, other)
            && let Some(n) = int(*a, *b)
        {
            return Ok(Number::Int(n));
        }
        Number::from_big(big(&self.to_big(), &other.to_big()))
    }

    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        self.either(other, i64::checked_add, Big::add)
    }

    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.either(other, i64::checked_sub, |a, b| a.add(&b.neg()))
    }

    pub fn mul(&self, other: &Number) -> Result<Number, NumberError> {
        self.either(other, i64::checked_mul, Big::mul)
    }

    pub fn div(&self, other: &Number) -> Result<Number, NumberError> {
        if other.is_zero() {
            return Err(NumberError::DivisionByZero);
        }
        if let (Number::Int(a), Number::Int(b)) = (self, other)
            && a.checked_rem(*b) == Some(0)
            && let Some(q) = a.checked_div(*b)
        {
            return Ok(Number::Int(q));
        }
        Number::from_big(self.to_big().div(&other.to_big()))
    }

    /// Terraform's `%`: the remainder of the division truncated towards
    /// zero, with the sign of the dividend (`-7 % 3` is `-1`).
    pub fn rem(&self, other: &Number) -> Result<Number, NumberError> {
        if other.is_zero() {
            return Err(NumberError::DivisionByZero);
        }
        if let (Number::Int(a), Number::Int(b)) = (self, other) {
            return Ok(Number::Int(a.checked_rem(*b).unwrap_or(0)));
        }
        let (a, b) = (self.to_big(), other.to_big());
        let quotient = Big::rounded(a.div(&b).int_part(), 0, a.prec.max(b.prec));
        Number::from_big(a.add(&quotient.mul(&b).neg()))
    }

    pub fn neg(&self) -> Result<Number, NumberError> {
        match self {
            Number::Int(i) => match i.checked_neg() {
                Some(n) => Ok(Number::Int(n)),
                None => Number::from_big(self.to_big().neg()),
            },
            Number::Big(b) => Number::from_big(b.neg()),
        }
    }

    pub fn abs(&self) -> Result<Number, NumberError> {
        if self.is_negative() { self.neg() } else { Ok(self.clone()) }
    }

    /// The integer part, rounded towards zero.
    pub fn trunc(&self) -> Result<Number, NumberError> {
        match self {
            Number::Int(_) => Ok(self.clone()),
            Number::Big(b) => Number::from_bigint(b.int_part()),
        }
    }

    pub fn floor(&self) -> Result<Number, NumberError> {
        let t = self.trunc()?;
        if self.is_negative() && t != *self { t.sub(&Number::Int(1)) } else { Ok(t) }
    }

    pub fn ceil(&self) -> Result<Number, NumberError> {
        let t = self.trunc()?;
        if !self.is_negative() && t != *self { t.add(&Number::Int(1)) } else { Ok(t) }
    }

    pub fn is_zero(&self) -> bool {
        match self {
            Number::Int(i) => *i == 0,
            Number::Big(b) => b.is_zero(),
        }
    }

    pub fn is_negative(&self) -> bool {
        match self {
            Number::Int(i) => *i < 0,
            Number::Big(b) => b.m.sign() == Sign::Minus,
        }
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i64 {
        if self.is_zero() {
            0
        } else if self.is_negative() {
            -1
        } else {
            1
        }
    }

    /// Converts to JSON: integers in 64-bit range exactly, anything else
    /// as the nearest double, since that is all a JSON reader (jq,
    /// Python, JavaScript, serde without `arbitrary_precision`) keeps.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Number::Int(i) => serde_json::Value::Number((*i).into()),
            Number::Big(b) => {
                if b.is_int()
                    && let Some(u) = b.int_part().to_u64()
                {
                    return serde_json::Value::Number(u.into());
                }
                let f = b.to_f64();
                if f.fract() == 0.0 && f.abs() < 9.2e18 {
                    return serde_json::Value::Number((f as i64).into());
                }
                serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
    }

    /// Reads a JSON number. A double is read as the decimal it prints as,
    /// so `0.1` in a file means what the literal `0.1` does.
    pub fn from_json(n: &serde_json::Number) -> Number {
        if let Some(i) = n.as_i64() {
            return Number::Int(i);
        }
        if let Some(u) = n.as_u64() {
            return Number::from_bigint(BigInt::from(u)).unwrap_or(Number::Int(0));
        }
        let f = n.as_f64().unwrap_or(0.0);
        Number::parse(&format!("{f:e}")).or_else(|_| Number::from_f64(f)).unwrap_or(Number::Int(0))
    }
}

/// The shortest decimal that reads back to `b` at `b`'s precision, in
/// positional notation (Go's `Text('f', -1)`).
fn shortest_decimal(b: &Big) -> String {
    if b.is_zero() {
        return "0".into();
    }
    // |b| < 2^magnitude, so its leading decimal digit is at 10^top or below.
    let top = ((b.magnitude() as f64) * std::f64::consts::LOG10_2).ceil() as i64;
    let reads_back = |k: i64| -> Option<BigInt> {
        let d = b.to_decimal_at(k);
        (Big::from_decimal(d.clone(), k, b.prec).cmp(b) == Ordering::Equal).then_some(d)
    };
    // Finer positions (smaller k) always read back once one does.
    let finest = top - (b.prec as f64 * std::f64::consts::LOG10_2).ceil() as i64 - 2;
    let (mut low, mut high) = (finest, top + 1);
    let mut best = (finest, b.to_decimal_at(finest));
    while low < high {
        let mid = low + (high - low) / 2;
        match reads_back(mid) {
            Some(d) => {
                best = (mid, d);
                low = mid + 1;
            }
            None => high = mid,
        }
    }
    positional(&best.1, best.0)
}

/// `significand × 10^exponent` without an exponent.
fn positional(significand: &BigInt, exponent: i64) -> String {
    let negative = significand.sign() == Sign::Minus;
    let mut digits = significand.abs().to_string();
    let mut exponent = exponent;
    while exponent < 0 && digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
        exponent += 1;
    }
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if digits == "0" {
        return "0".into();
    }
    if exponent >= 0 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', exponent as usize));
    } else {
        let point = digits.len() as i64 + exponent;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    }
    out
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Big(b) => f.write_str(&shortest_decimal(b)),
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(b),
            _ => self.to_big().cmp(&other.to_big()),
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn decimal_fractions_add_as_terraform_s_do() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(n("0.1").mul(&n("3")).unwrap().to_string(), "0.3");
        assert_eq!(n("2").div(&n("3")).unwrap().mul(&n("3")).unwrap().to_string(), "2");
    }

    #[test]
    fn a_third_prints_all_its_512_bit_digits() {
        let third = n("1").div(&n("3")).unwrap().to_string();
        assert_eq!(third, format!("0.{}5", "3".repeat(154)));
    }

    #[test]
    fn integers_beyond_two_to_the_53_stay_exact() {
        assert_eq!(n("9007199254740993").add(&n("1")).unwrap().to_string(), "9007199254740994");
        assert_eq!(n("100000000000000000000000000000").mul(&n("3")).unwrap().to_string(), "300000000000000000000000000000");
        assert_eq!(n("1e30").add(&n("0.5")).unwrap().ceil().unwrap().to_string(), "1000000000000000000000000000001");
        assert_eq!(n("12345678901234567890.7").floor().unwrap().to_string(), "12345678901234567890");
    }

    #[test]
    fn one_value_has_one_form() {
        assert!(matches!(n("4.0"), Number::Int(4)));
        assert!(matches!(n("1e3"), Number::Int(1000)));
        assert!(matches!(Number::from_f64(2.5).unwrap().mul(&n("2")).unwrap(), Number::Int(5)));
        assert_eq!(n("0.5"), Number::from_f64(0.5).unwrap());
    }

    #[test]
    fn remainder_keeps_the_dividend_s_sign() {
        assert_eq!(n("-7").rem(&n("3")).unwrap().to_string(), "-1");
        assert_eq!(n("5.5").rem(&n("2")).unwrap().to_string(), "1.5");
        assert_eq!(n("1").rem(&n("0")), Err(NumberError::DivisionByZero));
    }

    #[test]
    fn floats_print_as_their_shortest_decimal() {
        assert_eq!(Number::from_f64(0.1 + 0.2).unwrap().to_string(), "0.30000000000000004");
        assert_eq!(Number::from_f64(1.2676506002282294e30).unwrap().to_string(), "1267650600228229400000000000000");
        assert_eq!(n("1e-7").to_string(), "0.0000001");
        assert_eq!(n("-2.5").to_string(), "-2.5");
    }

    #[test]
    fn huge_exponents_are_refused_not_computed() {
        assert_eq!(Number::parse("1e999999999"), Err(NumberError::OutOfRange));
        assert_eq!(Number::parse("1e-999999999"), Err(NumberError::OutOfRange));
        let big = n("1e4000");
        assert_eq!(big.mul(&big), Err(NumberError::OutOfRange));
    }

    #[test]
    fn json_keeps_64_bit_integers_and_doubles() {
        assert_eq!(n("18446744073709551615").to_json().to_string(), "18446744073709551615");
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_json().to_string(), "0.3");
        let back = Number::from_json(&serde_json::Number::from_f64(0.1).unwrap());
        assert_eq!(back, n("0.1"));
    }
}
