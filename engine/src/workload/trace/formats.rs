//! Row parsers of the trace formats: each turns one CSV record or JSON line into a raw row,
//! or says what is wrong with it. Values read from the trace are quoted clipped
//! ([`clip`]): a field can be gigabytes long.

use super::{Columns, RawRow, TimeUnit, TraceFormat};
use crate::sim::bounds::MAX_TOKENS;
use crate::text::clip;

/// `YYYY-MM-DD HH:MM:SS[.fffffff]` (or `T` between date and time) as ns since 1970-01-01,
/// time zone ignored. Days from civil date: Howard Hinnant's `days_from_civil` algorithm.
pub fn parse_datetime_ns(text: &str) -> Result<i128, String> {
    let bad = || format!("`{}` is not a date-time like 2023-11-16 18:17:03.9799600", clip(text));
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T']).ok_or_else(bad)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = match (d.next(), d.next(), d.next(), d.next()) {
        (Some(Ok(y)), Some(Ok(m)), Some(Ok(day)), None) if (1..=12).contains(&m) && (1..=31).contains(&day) => {
            (y, m, day)
        }
        _ => return Err(bad()),
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (h, min, s) = match (t.next(), t.next(), t.next(), t.next()) {
        (Some(Ok(h)), Some(Ok(min)), Some(Ok(s)), None) if h < 24 && min < 60 && s < 61 => (h, min, s),
        _ => return Err(bad()),
    };
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return Err(bad());
    }
    let frac_ns: i128 =
        if frac.is_empty() { 0 } else { frac.parse::<i128>().map_err(|_| bad())? * 10i128.pow(9 - frac.len() as u32) };
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days as i128 * 86_400 + (h * 3600 + min * 60 + s) as i128;
    Ok(secs * 1_000_000_000 + frac_ns)
}

fn count(field: &str, value: &str) -> Result<u32, String> {
    let v = value.trim();
    v.parse::<u32>()
        .or_else(|_| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x <= u32::MAX as f64)
                .map(|x| x as u32)
                .ok_or(())
        })
        .map_err(|_| format!("`{field}` is `{}`, not a token count", clip(value)))
        .and_then(|n| within_token_limit(field, n))
}

/// A length beyond [`MAX_TOKENS`] would overflow the sums the scheduler makes.
fn within_token_limit(field: &str, n: u32) -> Result<u32, String> {
    if n > MAX_TOKENS {
        return Err(format!("`{field}` is {n} tokens, above the limit of {MAX_TOKENS}"));
    }
    Ok(n)
}

fn time_ns(field: &str, value: &str, unit: TimeUnit) -> Result<i128, String> {
    if unit == TimeUnit::Datetime {
        return parse_datetime_ns(value);
    }
    let x: f64 = value.trim().parse().map_err(|_| format!("`{field}` is `{}`, not a number", clip(value)))?;
    scaled_time_ns(x, unit)
        .ok_or_else(|| format!("`{field}` is `{}`; times must be finite and not negative", clip(value)))
}

/// A time `x` in `unit` (not a date-time) as ns; `None` when it is not finite or negative.
fn scaled_time_ns(x: f64, unit: TimeUnit) -> Option<i128> {
    if !x.is_finite() || x < 0.0 {
        return None;
    }
    let scale = match unit {
        TimeUnit::S => 1e9,
        TimeUnit::Ms => 1e6,
        TimeUnit::Us => 1e3,
        TimeUnit::Datetime => unreachable!("date-times are parsed as text"),
    };
    Some((x * scale).round() as i128)
}

fn check_prompt(prompt: u32) -> Result<(), String> {
    if prompt == 0 {
        return Err("the prompt has 0 tokens; every request needs at least one".into());
    }
    Ok(())
}

pub(super) fn csv_row(
    record: &csv::StringRecord,
    columns: &[usize; 3],
    format: TraceFormat,
    unit: TimeUnit,
) -> Result<RawRow, String> {
    let field = |i: usize| {
        record.get(columns[i]).ok_or_else(|| format!("the row has {} fields; the header has more", record.len()))
    };
    let names = match format {
        TraceFormat::Azure => ["TIMESTAMP", "ContextTokens", "GeneratedTokens"],
        TraceFormat::Burstgpt => ["Timestamp", "Request tokens", "Response tokens"],
        _ => ["arrival", "prompt_tokens", "output_tokens"],
    };
    let time_ns = time_ns(names[0], field(0)?, unit)?;
    let prompt_tokens = count(names[1], field(1)?)?;
    let output_tokens = count(names[2], field(2)?)?;
    check_prompt(prompt_tokens)?;
    let failed = format == TraceFormat::Burstgpt && output_tokens == 0;
    if output_tokens == 0 && !failed {
        return Err(format!("`{}` is 0; a replayed request generates at least one token", names[2]));
    }
    Ok(RawRow { time_ns, prompt_tokens, output_tokens: output_tokens.max(1), hash_ids: Vec::new(), failed })
}

/// A Mooncake row written the usual way: numbers as numbers, `hash_ids` a list of integers,
/// each field once (a repeated field is an error here, so such a row takes the general path).
#[derive(serde::Deserialize)]
pub(super) struct PlainMooncakeRow {
    pub timestamp: f64,
    pub input_length: u32,
    pub output_length: u32,
    pub hash_ids: Vec<u64>,
}

/// A Mooncake row read straight into its types, or `None` for the general path
/// ([`jsonl_row`]) to read or reject. Building the generic JSON tree of every row was most of
/// the time a 10-million-row replay spent reading its trace, twice over with validation
/// (issue 15). Every row this accepts, the general path reads to the same values: the time is
/// the same `f64` (serde_json with `float_roundtrip`, whose shortest printing the general path
/// parses back exactly), the counts and ids the same integers, and the same checks apply.
fn plain_mooncake_row(text: &str) -> Option<RawRow> {
    checked_plain_row(serde_json::from_str(text).ok()?)
}

/// A Mooncake row in its usual shape read by [`super::scan`], or `None` for [`jsonl_row`].
pub(super) fn scanned_mooncake_row(text: &[u8]) -> Option<RawRow> {
    checked_plain_row(super::scan::plain_row(text)?)
}

/// The checks of the general path on a plainly written row; `None` where any fails, so that
/// the general path says what.
fn checked_plain_row(row: PlainMooncakeRow) -> Option<RawRow> {
    let time_ns = scaled_time_ns(row.timestamp, TimeUnit::Ms)?;
    let prompt_tokens = within_token_limit("input_length", row.input_length).ok()?;
    let output_tokens = within_token_limit("output_length", row.output_length).ok()?;
    let usable = prompt_tokens > 0 && output_tokens > 0;
    (usable && row.hash_ids.len() == prompt_tokens.div_ceil(512) as usize).then_some(RawRow {
        time_ns,
        prompt_tokens,
        output_tokens,
        hash_ids: row.hash_ids,
        failed: false,
    })
}

pub(super) fn jsonl_row(text: &str, columns: Option<&Columns>) -> Result<RawRow, String> {
    if columns.is_none() {
        if let Some(row) = plain_mooncake_row(text) {
            return Ok(row);
        }
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let (t, p, o) = match columns {
        Some(c) => (c.arrival.as_str(), c.prompt_tokens.as_str(), c.output_tokens.as_str()),
        None => ("timestamp", "input_length", "output_length"),
    };
    let get = |key: &str| value.get(key).ok_or_else(|| format!("the row has no `{key}` field"));
    let unit = columns.map_or(TimeUnit::Ms, |c| c.time_unit);
    let time_text = match get(t)? {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let time_ns = time_ns(t, &time_text, unit)?;
    let prompt_tokens = count(p, &get(p)?.to_string())?;
    let output_tokens = count(o, &get(o)?.to_string())?;
    check_prompt(prompt_tokens)?;
    if output_tokens == 0 {
        return Err(format!("`{o}` is 0; a replayed request generates at least one token"));
    }
    let mut hash_ids = Vec::new();
    if columns.is_none() {
        let ids = get("hash_ids")?.as_array().ok_or("`hash_ids` is not a list")?;
        for id in ids {
            hash_ids.push(
                id.as_u64().ok_or_else(|| {
                    format!("`hash_ids` holds `{}`, not a non-negative integer", clip(&id.to_string()))
                })?,
            );
        }
        let expected = prompt_tokens.div_ceil(512) as usize;
        if hash_ids.len() != expected {
            return Err(format!(
                "`hash_ids` has {} ids but {prompt_tokens} input tokens need {expected} blocks of 512",
                hash_ids.len()
            ));
        }
    }
    Ok(RawRow { time_ns, prompt_tokens, output_tokens, hash_ids, failed: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general path alone, as `jsonl_row` read Mooncake rows before the plain-row path.
    fn general(text: &str) -> Result<RawRow, String> {
        let spelled = text.replacen('{', "{\"timestamp\": \"x\", ", 1);
        // A repeated key sends the row down the general path, whose map keeps the last value.
        assert!(plain_mooncake_row(&spelled).is_none());
        jsonl_row(&spelled, None)
    }

    fn fields(row: &RawRow) -> (i128, u32, u32, Vec<u64>, bool) {
        (row.time_ns, row.prompt_tokens, row.output_tokens, row.hash_ids.clone(), row.failed)
    }

    // See: issue 15
    /// Rows the plain path reads give the values the general path gives, and rows it does not
    /// read fall through to the general path's value or message.
    #[test]
    fn issue_15_plain_mooncake_rows_read_as_the_general_path_reads_them() {
        let rows = [
            r#"{"timestamp": 1500, "input_length": 600, "output_length": 20, "hash_ids": [3, 99]}"#,
            r#"{"timestamp": 0.1234567, "input_length": 1, "output_length": 1, "hash_ids": [18446744073709551615]}"#,
            r#"{"timestamp": 9007199254740993, "input_length": 512, "output_length": 7, "hash_ids": [0], "extra": [1, {"a": 2}]}"#,
            r#"{"hash_ids": [], "output_length": 3, "input_length": 0, "timestamp": 1}"#,
            r#"{"timestamp": 2.5e3, "input_length": "600", "output_length": 2, "hash_ids": [1, 2]}"#,
            r#"{"timestamp": -1, "input_length": 600, "output_length": 2, "hash_ids": [1, 2]}"#,
            r#"{"timestamp": 1, "input_length": 600, "output_length": 0, "hash_ids": [1, 2]}"#,
            r#"{"timestamp": 1, "input_length": 600, "output_length": 2, "hash_ids": [1]}"#,
            r#"{"timestamp": 1, "input_length": 600.0, "output_length": 2, "hash_ids": [1, 2.5]}"#,
            r#"{"timestamp": 1, "input_length": 4294967295, "output_length": 2, "hash_ids": []}"#,
        ];
        let mut plain = 0;
        for text in rows {
            let expected = general(text).map(|r| fields(&r));
            plain += plain_mooncake_row(text).is_some() as u32;
            assert_eq!(jsonl_row(text, None).map(|r| fields(&r)), expected, "{text}");
        }
        assert_eq!(plain, 3, "the first three rows are plain");
    }

    #[test]
    fn azure_datetimes_parse_to_nanoseconds() {
        let a = parse_datetime_ns("2023-11-16 18:17:03.9799600").unwrap();
        let b = parse_datetime_ns("2023-11-16 18:17:04.0319600").unwrap();
        assert_eq!(b - a, 52_000_000);
        // 2023-11-16 is day 19,677 since 1970-01-01.
        assert_eq!(parse_datetime_ns("2023-11-16 00:00:00").unwrap(), 19_677i128 * 86_400 * 1_000_000_000);
        assert_eq!(parse_datetime_ns("1970-01-01T00:00:01.5").unwrap(), 1_500_000_000);
        assert!(parse_datetime_ns("2023-13-01 00:00:00").is_err());
        assert!(parse_datetime_ns("yesterday").is_err());
    }
}
