//! Byte- and line-level mutations of traces (truncation, flipped bytes, huge fields, blank
//! lines, boundary numbers, out-of-order rows), JSONL rows mutated as JSON, and gzip
//! wrapping with its own damage (truncated members, flipped bytes, trailing garbage).

use std::collections::BTreeMap;
use std::io::Write;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::mutate_json;

fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Byte ranges of the numeric tokens (digits, sign, dot, exponent) in `bytes`.
fn number_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || matches!(bytes[i], b'.' | b'e' | b'E' | b'-' | b'+'))
            {
                i += 1;
            }
            spans.push((start, i));
        }
        i += 1;
    }
    spans
}

const NUMBER_TOKENS: [&str; 18] = [
    "0",
    "-1",
    "1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "1e-12",
    "0.0000001",
    "99999999999999999999999999999",
    "",
    "1.5",
    "0x10",
    " 12 ",
];

/// One random mutation of a text trace; returns a note.
pub fn mutate_once(
    bytes: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    donors: &BTreeMap<String, Vec<serde_json::Value>>,
) -> String {
    let len = bytes.len();
    match rng.gen_range(0..100) {
        0..=9 => {
            let at = rng.gen_range(0..=len);
            bytes.truncate(at);
            format!("truncate at {at}")
        }
        10..=17 => {
            let n = rng.gen_range(1..=4);
            for _ in 0..n.min(len) {
                let at = rng.gen_range(0..len);
                bytes[at] ^= 1 << rng.gen_range(0..8);
            }
            format!("flip {n} bytes")
        }
        18..=25 => {
            let mut rows = lines(bytes);
            let blank: &[u8] = [&b"\n"[..], b"\r\n", b"   \n", b",,\n", b"{}\n"].choose(rng).unwrap();
            let at = rng.gen_range(0..=rows.len());
            rows.insert(at, blank.to_vec());
            *bytes = rows.concat();
            format!("blank line {:?} at row {at}", String::from_utf8_lossy(blank))
        }
        26..=31 if len > 0 => {
            let mut rows = lines(bytes);
            let i = rng.gen_range(0..rows.len());
            let times = *[1usize, 2, 50].choose(rng).unwrap();
            let row = rows[i].clone();
            for _ in 0..times {
                rows.insert(i, row.clone());
            }
            *bytes = rows.concat();
            format!("duplicate row {i} x{times}")
        }
        32..=37 if len > 0 => {
            let mut rows = lines(bytes);
            let i = rng.gen_range(0..rows.len());
            let j = rng.gen_range(0..rows.len());
            rows.swap(i, j);
            *bytes = rows.concat();
            format!("swap rows {i} and {j}")
        }
        38..=41 if len > 0 => {
            let mut rows = lines(bytes);
            let i = rng.gen_range(0..rows.len());
            rows.remove(i);
            *bytes = rows.concat();
            format!("delete row {i}")
        }
        42..=61 => {
            let spans = number_spans(bytes);
            let Some(&(a, b)) = spans.choose(rng) else { return "no number to replace".into() };
            let token = NUMBER_TOKENS.choose(rng).unwrap();
            bytes.splice(a..b, token.bytes());
            format!("number at {a} = {token:?}")
        }
        62..=65 => {
            let size = *[70_000usize, 300_000].choose(rng).unwrap();
            let filler = *[b'7', b'x', b'"'].choose(rng).unwrap();
            let spans = number_spans(bytes);
            let (a, b) = spans.choose(rng).copied().unwrap_or((len, len));
            bytes.splice(a..b, std::iter::repeat_n(filler, size));
            format!("huge field of {size} x {:?} at {a}", filler as char)
        }
        66..=69 => {
            let rows = lines(bytes);
            *bytes = rows.into_iter().skip(1).collect::<Vec<_>>().concat();
            "drop the first line".into()
        }
        70..=72 => {
            *bytes = bytes.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
            "CRLF line ends".into()
        }
        73..=75 => {
            let junk: &[u8] = [&b"\xef\xbb\xbf"[..], b"\0", b"\xff\xfe", b"\"", b"\n\n\n"].choose(rng).unwrap();
            let at = if rng.gen_bool(0.5) { 0 } else { rng.gen_range(0..=len) };
            bytes.splice(at..at, junk.iter().copied());
            format!("insert {junk:?} at {at}")
        }
        76..=77 => {
            bytes.clear();
            "empty file".into()
        }
        _ => mutate_jsonl_row(bytes, rng, donors),
    }
}

/// Parses one line as JSON, mutates it structurally and puts it back (JSONL traces).
fn mutate_jsonl_row(
    bytes: &mut Vec<u8>,
    rng: &mut ChaCha8Rng,
    donors: &BTreeMap<String, Vec<serde_json::Value>>,
) -> String {
    let mut rows = lines(bytes);
    let candidates: Vec<usize> =
        (0..rows.len()).filter(|&i| serde_json::from_slice::<serde_json::Value>(&rows[i]).is_ok()).collect();
    let Some(&i) = candidates.choose(rng) else {
        let at = rng.gen_range(0..=bytes.len());
        bytes.splice(at..at, *b"\n");
        return format!("newline at {at}");
    };
    let mut row: serde_json::Value = serde_json::from_slice(&rows[i]).unwrap();
    let note = mutate_json::mutate_once(&mut row, rng, donors, false);
    rows[i] = format!("{}\n", mutate_json::to_text(&row, false)).into_bytes();
    *bytes = rows.concat();
    format!("row {i}: {note}")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Damages a gzip file; returns a note.
pub fn damage_gzip(gz: &mut Vec<u8>, rng: &mut ChaCha8Rng) -> String {
    let len = gz.len();
    match rng.gen_range(0..7) {
        0 => {
            let cut = rng.gen_range(1..=8.min(len));
            gz.truncate(len - cut);
            format!("gzip: drop the last {cut} bytes")
        }
        1 => {
            let at = rng.gen_range(0..=len);
            gz.truncate(at);
            format!("gzip: truncate at {at} of {len}")
        }
        2 => {
            let at = rng.gen_range(10.min(len)..len.max(1));
            if at < len {
                gz[at] ^= 1 << rng.gen_range(0..8);
            }
            format!("gzip: flip a bit at {at}")
        }
        3 => {
            gz.extend_from_slice(b"garbage after the member\n");
            "gzip: trailing garbage".into()
        }
        4 => {
            let copy = gz.clone();
            gz.extend_from_slice(&copy[..len / 2]);
            "gzip: a second member, truncated".into()
        }
        5 => {
            gz.truncate(10.min(len));
            "gzip: the header alone".into()
        }
        _ => {
            let copy = gz.clone();
            gz.extend_from_slice(&copy);
            "gzip: two whole members".into()
        }
    }
}
