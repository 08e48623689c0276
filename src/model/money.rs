//! Money as integer minor units: never a float anywhere near the books.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code such as `EUR`: three ASCII letters, stored upper-case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    /// The euro, Qonto's usual currency.
    pub const EUR: CurrencyCode = CurrencyCode(*b"EUR");

    /// Parses a three-letter code, case-insensitively. Returns `None` for anything else.
    pub fn parse(code: &str) -> Option<Self> {
        let bytes = code.trim().as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        Some(Self([
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ]))
    }

    /// The code as a string slice, for example `"EUR"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Debug for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        CurrencyCode::parse(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("not a currency code: {code:?}")))
    }
}

/// A signed amount in minor units (cents): negative for money leaving the account.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units, signed: a debit of 12.34 EUR is `-1234`.
    pub cents: i64,
    /// The currency of `cents`.
    pub currency: CurrencyCode,
}

impl Money {
    /// An amount of `cents` minor units in `currency`.
    pub fn new(cents: i64, currency: CurrencyCode) -> Self {
        Self { cents, currency }
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Formats as `-12.34 EUR` or `+12.34 EUR` (`0.00 EUR` for zero), two decimals always.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.cents.signum() {
            -1 => "-",
            1 => "+",
            _ => "",
        };
        let abs = self.cents.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sign_and_two_decimals() {
        assert_eq!(
            Money::new(-1234, CurrencyCode::EUR).to_string(),
            "-12.34 EUR"
        );
        assert_eq!(Money::new(5, CurrencyCode::EUR).to_string(), "+0.05 EUR");
        assert_eq!(Money::new(0, CurrencyCode::EUR).to_string(), "0.00 EUR");
        assert_eq!(
            Money::new(i64::MIN, CurrencyCode::EUR).to_string(),
            "-92233720368547758.08 EUR"
        );
    }

    #[test]
    fn currency_codes_are_three_letters() {
        assert_eq!(CurrencyCode::parse("usd").unwrap().as_str(), "USD");
        assert!(CurrencyCode::parse("EURO").is_none());
        assert!(CurrencyCode::parse("E1R").is_none());
        assert!(CurrencyCode::parse("ÉUR").is_none());
    }
}
