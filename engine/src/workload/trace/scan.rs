//! A byte scanner for Mooncake rows in their usual shape,
//! `{"timestamp": 27, "input_length": 633, "output_length": 130, "hash_ids": [4, 16]}`: the
//! four fields in this order, integers only, any JSON whitespace between tokens. It accepts
//! nothing else, and whatever it does not accept (a fraction, an exponent, another field
//! order, an extra field, escapes, a number too long to be exact) goes to serde_json, which
//! reads it or says what is wrong. Why (issue 15): serde_json's reader was about 15% of a
//! 64-replica replay of a 10-million-row trace, which reads its trace twice (validation and
//! replay); this reads the same rows to the same values in a fraction of that.
//!
//! Every row it accepts, serde_json reads to the same numbers: a timestamp of at most 15
//! digits is an integer below 2^53, exact as an `f64` (serde_json turns an integer literal
//! into an `f64` with `as`), and the counts and ids are the same integers, overflow refused.

use super::formats::PlainMooncakeRow;

/// The row's fields, or `None` for serde_json to read (or reject).
pub(super) fn plain_row(text: &[u8]) -> Option<PlainMooncakeRow> {
    let mut s = Scanner { text, at: 0 };
    s.byte(b'{')?;
    s.key(b"timestamp")?;
    let timestamp = s.integer(15)? as f64;
    s.byte(b',')?;
    s.key(b"input_length")?;
    let input_length = u32::try_from(s.integer(10)?).ok()?;
    s.byte(b',')?;
    s.key(b"output_length")?;
    let output_length = u32::try_from(s.integer(10)?).ok()?;
    s.byte(b',')?;
    s.key(b"hash_ids")?;
    s.byte(b'[')?;
    // Mooncake rows hold one id per 512 prompt tokens: a few, so no reservation.
    let mut hash_ids = Vec::new();
    if s.peek() == Some(b']') {
        s.at += 1;
    } else {
        loop {
            hash_ids.push(s.integer(20)?);
            match s.next()? {
                b',' => continue,
                b']' => break,
                _ => return None,
            }
        }
    }
    s.byte(b'}')?;
    s.skip_space();
    (s.at == text.len()).then_some(PlainMooncakeRow { timestamp, input_length, output_length, hash_ids })
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// `"name"` (no escapes) and the colon after it.
    fn key(&mut self, name: &[u8]) -> Option<()> {
        self.byte(b'"')?;
        let end = self.at + name.len();
        if self.text.get(self.at..end)? != name || self.text.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        self.byte(b':')
    }

    /// A JSON integer of at most `max_digits` digits, no sign, no leading zero, no fraction
    /// or exponent after it, that fits a u64.
    fn integer(&mut self, max_digits: usize) -> Option<u64> {
        self.skip_space();
        let start = self.at;
        let mut value: u64 = 0;
        while let Some(&b) = self.text.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value.checked_mul(10)?.checked_add((b - b'0') as u64)?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.text[start] == b'0';
        let continues = matches!(self.text.get(self.at), Some(b'.' | b'e' | b'E'));
        (digits > 0 && digits <= max_digits && !leading_zero && !continues).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json reads from `text`, in the scanner's terms.
    fn serde(text: &str) -> Option<(f64, u32, u32, Vec<u64>)> {
        let row: PlainMooncakeRow = serde_json::from_str(text).ok()?;
        Some((row.timestamp, row.input_length, row.output_length, row.hash_ids))
    }

    fn scanned(text: &str) -> Option<(f64, u32, u32, Vec<u64>)> {
        let row = plain_row(text.as_bytes())?;
        Some((row.timestamp, row.input_length, row.output_length, row.hash_ids))
    }

    // See: issue 15
    /// Every row the scanner accepts, serde_json reads to the same values; the rows it leaves
    /// to serde_json are the unusual shapes.
    #[test]
    fn issue_15_accepted_rows_read_as_serde_json_reads_them() {
        let accepted = [
            "{\"timestamp\": 27, \"input_length\": 633, \"output_length\": 130, \"hash_ids\": [4, 16]}\n",
            "{\"timestamp\":0,\"input_length\":1,\"output_length\":1,\"hash_ids\":[0]}",
            "  {\"timestamp\" : 999999999999999 , \"input_length\":4294967295,\r\n\"output_length\":7,\t\"hash_ids\":[ 18446744073709551615 ,1 ] } \r\n",
            "{\"timestamp\": 5, \"input_length\": 0, \"output_length\": 0, \"hash_ids\": []}",
            "{\"timestamp\": 5, \"input_length\": 0, \"output_length\": 0, \"hash_ids\": [ ]}",
        ];
        for text in accepted {
            assert!(scanned(text).is_some(), "not accepted: {text}");
            assert_eq!(scanned(text), serde(text), "{text}");
        }
        let left_to_serde = [
            // A fraction, an exponent, a sign, a leading zero, 16 digits of time.
            "{\"timestamp\": 27.5, \"input_length\": 633, \"output_length\": 130, \"hash_ids\": [4]}",
            "{\"timestamp\": 2e3, \"input_length\": 633, \"output_length\": 130, \"hash_ids\": [4]}",
            "{\"timestamp\": -1, \"input_length\": 633, \"output_length\": 130, \"hash_ids\": [4]}",
            "{\"timestamp\": 07, \"input_length\": 633, \"output_length\": 130, \"hash_ids\": [4]}",
            "{\"timestamp\": 1234567890123456, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [4]}",
            // Too large for its type, another order, an extra field, an escape, trailing text.
            "{\"timestamp\": 1, \"input_length\": 4294967296, \"output_length\": 1, \"hash_ids\": [4]}",
            "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [18446744073709551616]}",
            "{\"input_length\": 1, \"timestamp\": 1, \"output_length\": 1, \"hash_ids\": [4]}",
            "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [4], \"x\": 1}",
            "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_\\u0069ds\": [4]}",
            "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [4]} x",
            "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [4,]}",
            "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [4]",
            "",
            "   \n",
        ];
        for text in left_to_serde {
            assert_eq!(scanned(text), None, "accepted: {text}");
        }
    }
}
