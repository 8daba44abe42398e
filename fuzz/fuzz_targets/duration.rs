//! Durations: `regate::duration::parse` (Go's `time.ParseDuration` syntax, the API server's `?timeout=`
//! through `server::extract::query_timeout`), `parse_flag` (the same, and a bare number is seconds: the
//! duration flags of `regate serve`) and `parse_timeout` (`parse_flag`, but positive: `regate test
//! --timeout`). Nothing may panic, and:
//! - `parse_flag` agrees with `parse` on everything `parse` accepts, and `parse_timeout` with
//!   `parse_flag` except that zero is refused;
//! - a Go duration is the sum of its parts: split after its first unit, both halves parse and add up to
//!   it (within floating-point rounding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::duration::{parse, parse_flag, parse_timeout};
use regate::server::extract::query_timeout;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = query_timeout(Some(text));
    let whole = parse(text);
    let flag = parse_flag(text);
    if let Ok(d) = &whole {
        assert_eq!(
            flag.as_ref().ok(),
            Some(d),
            "parse_flag({text:?}) disagrees with parse"
        );
    }
    match (&flag, parse_timeout(text)) {
        (Ok(d), Ok(t)) => assert_eq!(*d, t, "{text:?}"),
        (Ok(d), Err(_)) => assert!(d.is_zero(), "parse_timeout({text:?}) refuses {d:?}"),
        (Err(_), Ok(t)) => panic!("parse_timeout({text:?}) = {t:?} but parse_flag refuses it"),
        (Err(_), Err(_)) => {}
    }
    // Split after the first unit (the first digit or point that follows a letter): both halves must
    // parse when the whole does, and add up to it.
    let t = text.trim();
    let bytes = t.as_bytes();
    let split = (1..bytes.len()).find(|&i| {
        let (a, b) = (bytes[i - 1], bytes[i]);
        !(a.is_ascii_digit() || a == b'.') && (b.is_ascii_digit() || b == b'.')
    });
    if let (Ok(whole), Some(i)) = (whole, split) {
        let (Ok(a), Ok(b)) = (parse(&t[..i]), parse(&t[i..])) else {
            panic!(
                "{t:?} parses but its parts {:?} and {:?} do not",
                &t[..i],
                &t[i..]
            );
        };
        let sum = a.as_secs_f64() + b.as_secs_f64();
        let got = whole.as_secs_f64();
        assert!(
            (sum - got).abs() <= 1e-6 * sum.max(1.0),
            "{t:?} is {got}s but its parts add up to {sum}s"
        );
    }
});
