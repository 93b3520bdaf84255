//! Trace readers: Azure LLM inference CSV, Mooncake JSONL (with `hash_ids`), BurstGPT CSV,
//! and a generic CSV/JSONL with a column mapping. Each streams its file (gzip accepted), so
//! memory does not grow with the trace, and reports a bad row with file, line and reason.
//!
//! Rows are replayed relative to the first row's time, inside an optional window
//! `[start_s, end_s)`, divided by `speedup`, up to `limit` rows.
//!
//! A bad row (one that reads but does not parse) can be skipped; a failed read of the file
//! itself (a truncated or corrupt `.gz`, a disk error) always ends the trace with an error:
//! retrying the read would fail forever, and skipping past it is not possible.

mod formats;
mod recurring;
mod scan;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use formats::parse_datetime_ns;
pub use recurring::RecurringIds;

/// Trace file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// Azure LLM inference 2023: `TIMESTAMP,ContextTokens,GeneratedTokens`.
    Azure,
    /// Mooncake JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids`.
    Mooncake,
    /// BurstGPT CSV: `Timestamp` (s), `Model`, `Request tokens`, `Response tokens`, ...
    Burstgpt,
    /// A CSV or JSONL file described by `columns`.
    Generic,
}

/// What to do with a row that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BadRows {
    /// Stop with the file, line and reason (the default).
    #[default]
    Fail,
    /// Skip it and count it in the report.
    Skip,
}

/// Time unit of a generic trace's arrival column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    S,
    Ms,
    Us,
    /// `YYYY-MM-DD HH:MM:SS[.fraction]` (or with a `T`), no time zone.
    Datetime,
}

/// Column names of a generic trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub arrival: String,
    pub prompt_tokens: String,
    pub output_tokens: String,
    pub time_unit: TimeUnit,
}

/// A trace as a workload, as written in a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// Path to the trace, relative to the scenario file; `.gz` is decompressed.
    pub path: String,
    /// Default: from the file name (`mooncake`, `burstgpt`, `azure`) or its header.
    #[serde(default)]
    pub format: Option<TraceFormat>,
    /// Replay this many times faster (2 = arrivals twice as dense). Default 1.
    #[serde(default)]
    pub speedup: Option<f64>,
    /// Replay only rows from this many seconds after the first row...
    #[serde(default)]
    pub start_s: Option<f64>,
    /// ...up to this many seconds after it.
    #[serde(default)]
    pub end_s: Option<f64>,
    /// At most this many rows.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Replay every `stride`-th row of the window (default 1, every row): the rows one replica
    /// of `stride` sees behind a round-robin router, or a thinned sample of a long trace.
    #[serde(default)]
    pub stride: Option<u64>,
    #[serde(default)]
    pub on_bad_row: BadRows,
    /// BurstGPT: keep rows with zero response tokens (failed requests). Default false.
    #[serde(default)]
    pub keep_failed: bool,
    /// Generic traces: which columns hold what.
    #[serde(default)]
    pub columns: Option<Columns>,
}

/// One request read from a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// Arrival in ns from the start of the replay.
    pub arrival_ns: u64,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Mooncake: one id per 512-token block of the prompt, prefix-chained.
    pub hash_ids: Vec<u64>,
}

/// A row that could not be read, or a file that could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TraceError {
    pub file: String,
    /// 0 when the problem is the file itself.
    pub line: u64,
    pub message: String,
}

/// A raw row before windowing: time in ns in the trace's own clock.
struct RawRow {
    time_ns: i128,
    prompt_tokens: u32,
    output_tokens: u32,
    hash_ids: Vec<u64>,
    /// BurstGPT failed requests (zero response tokens).
    failed: bool,
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        columns: [usize; 3],
        format: TraceFormat,
        unit: TimeUnit,
        records: u64,
    },
    Jsonl {
        input: BufReader<Box<dyn Read + Send>>,
        line: u64,
        /// Bytes of (decompressed) text read so far.
        bytes: u64,
        columns: Option<Columns>,
        /// The line being read, its allocation kept from line to line.
        buf: Vec<u8>,
    },
}

/// One read from the source.
enum Raw {
    Row(RawRow),
    /// The row was read but cannot be used; `on_bad_row` decides.
    Bad(String),
    /// The file could not be read at this point; the trace ends here.
    Broken(String),
}

/// The message of a failed read at `byte` of the trace's text.
fn broken(byte: u64, e: impl std::fmt::Display) -> Raw {
    Raw::Broken(format!(
        "cannot read the trace past byte {byte} of its text: {e}; the file is cut short or corrupt, so re-create or re-download it (`on_bad_row` cannot skip this)"
    ))
}

/// Streams the rows of one trace.
pub struct TraceReader {
    // (Debug is written by hand: the decoder inside is not Debug.)
    source: Source,
    spec: TraceSpec,
    file: String,
    origin: Option<i128>,
    last: i128,
    yielded: u64,
    /// Rows inside the window so far, kept or not (`stride`).
    in_window: u64,
    /// Rows skipped as unreadable (`on_bad_row: skip`).
    pub skipped_bad: u64,
    /// BurstGPT rows of failed requests that were left out.
    pub skipped_failed: u64,
    done: bool,
}

impl std::fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader").field("file", &self.file).field("rows", &self.yielded).finish()
    }
}

fn open_reader(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// The format a file's name suggests.
pub fn guess_format(path: &Path) -> Option<TraceFormat> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.contains("burstgpt") {
        Some(TraceFormat::Burstgpt)
    } else if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") {
        Some(TraceFormat::Mooncake)
    } else if name.contains("azure") {
        Some(TraceFormat::Azure)
    } else {
        None
    }
}

impl TraceReader {
    /// Opens `spec.path` resolved against `base_dir`.
    pub fn open(spec: &TraceSpec, base_dir: &Path) -> Result<TraceReader, TraceError> {
        let path: PathBuf = base_dir.join(&spec.path);
        let file = path.display().to_string();
        let err = |message: String| TraceError { file: file.clone(), line: 0, message };
        let format = spec.format.or_else(|| guess_format(&path)).ok_or_else(|| {
            err("cannot tell the trace format from the file name; set `format` (azure, mooncake, burstgpt or generic)".into())
        })?;
        let input = open_reader(&path).map_err(|e| err(format!("cannot open the trace: {e}")))?;
        let source = match format {
            TraceFormat::Mooncake => {
                Source::Jsonl { input: BufReader::new(input), line: 0, bytes: 0, columns: None, buf: Vec::new() }
            }
            TraceFormat::Generic if spec.path.contains(".jsonl") => {
                let columns = spec.columns.clone().ok_or_else(|| err("a generic trace needs `columns`".into()))?;
                Source::Jsonl {
                    input: BufReader::new(input),
                    line: 0,
                    bytes: 0,
                    columns: Some(columns),
                    buf: Vec::new(),
                }
            }
            TraceFormat::Azure | TraceFormat::Burstgpt | TraceFormat::Generic => {
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
                let header = reader.headers().map_err(|e| err(format!("cannot read the CSV header: {e}")))?.clone();
                let (names, unit): ([String; 3], TimeUnit) = match (format, &spec.columns) {
                    (TraceFormat::Azure, _) => {
                        (["TIMESTAMP".into(), "ContextTokens".into(), "GeneratedTokens".into()], TimeUnit::Datetime)
                    }
                    (TraceFormat::Burstgpt, _) => {
                        (["Timestamp".into(), "Request tokens".into(), "Response tokens".into()], TimeUnit::S)
                    }
                    (_, Some(c)) => {
                        ([c.arrival.clone(), c.prompt_tokens.clone(), c.output_tokens.clone()], c.time_unit)
                    }
                    (_, None) => return Err(err("a generic trace needs `columns`".into())),
                };
                let mut columns = [0usize; 3];
                for (slot, name) in columns.iter_mut().zip(&names) {
                    *slot = header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                        let mut shown: Vec<String> = header.iter().take(20).map(crate::text::clip).collect();
                        if header.len() > shown.len() {
                            shown.push(format!("… {} columns in all", header.len()));
                        }
                        err(format!(
                            "the header has no column `{name}` (it has: {}); check `format` or `columns`",
                            shown.join(", ")
                        ))
                    })?;
                }
                Source::Csv { reader, columns, format, unit, records: 0 }
            }
        };
        Ok(TraceReader {
            source,
            spec: spec.clone(),
            file,
            origin: None,
            last: i128::MIN,
            yielded: 0,
            in_window: 0,
            skipped_bad: 0,
            skipped_failed: 0,
            done: false,
        })
    }

    /// Whether its rows carry Mooncake block ids.
    pub fn has_block_ids(&self) -> bool {
        matches!(self.source, Source::Jsonl { columns: None, .. })
    }

    /// The next raw row with its line number.
    fn raw(&mut self) -> Option<(u64, Raw)> {
        let row = |parsed: Result<RawRow, String>| parsed.map_or_else(Raw::Bad, Raw::Row);
        match &mut self.source {
            Source::Csv { reader, columns, format, unit, records } => {
                let mut record = csv::StringRecord::new();
                let result = reader.read_record(&mut record);
                // Line numbers count the header as line 1 and assume one line per record
                // (no quoted line breaks, as in every supported format).
                *records += 1;
                match result {
                    Ok(false) => None,
                    Ok(true) => Some((*records + 1, row(formats::csv_row(&record, columns, *format, *unit)))),
                    Err(e) if e.is_io_error() => Some((*records + 1, broken(reader.position().byte(), e))),
                    Err(e) => Some((*records + 1, Raw::Bad(format!("unreadable CSV row: {e}")))),
                }
            }
            Source::Jsonl { input, line, bytes, columns, buf } => loop {
                *line += 1;
                buf.clear();
                if buf.capacity() > 1 << 20 {
                    // A long line's allocation is not kept for the rest of the trace.
                    *buf = Vec::new();
                }
                match input.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(n) => *bytes += n as u64,
                    Err(e) => return Some((*line, broken(*bytes, e))),
                }
                if columns.is_none() {
                    if let Some(row) = formats::scanned_mooncake_row(buf) {
                        return Some((*line, Raw::Row(row)));
                    }
                }
                let Ok(text) = std::str::from_utf8(buf) else {
                    return Some((*line, Raw::Bad("the line is not UTF-8 text".into())));
                };
                if text.trim().is_empty() {
                    continue;
                }
                return Some((*line, row(formats::jsonl_row(text, columns.as_ref()))));
            },
        }
    }

    /// A bad row: counted and skipped, or the error that stops the replay.
    fn bad(&mut self, line: u64, message: String) -> Option<TraceError> {
        match self.spec.on_bad_row {
            BadRows::Skip => {
                self.skipped_bad += 1;
                None
            }
            BadRows::Fail => {
                self.done = true;
                Some(TraceError {
                    file: self.file.clone(),
                    line,
                    message: format!("{message}; fix the row or set `on_bad_row` to \"skip\""),
                })
            }
        }
    }

    /// The next row inside the window, or the first unreadable row in `fail` mode.
    pub fn next_row(&mut self) -> Option<Result<TraceRow, TraceError>> {
        let speedup = self.spec.speedup.unwrap_or(1.0);
        let start_ns = (self.spec.start_s.unwrap_or(0.0) * 1e9) as i128;
        let end_ns = self.spec.end_s.map(|e| (e * 1e9) as i128);
        loop {
            if self.done || self.spec.limit.is_some_and(|l| self.yielded >= l) {
                return None;
            }
            let (line, raw) = self.raw()?;
            let row = match raw {
                Raw::Row(row) => row,
                Raw::Bad(message) => match self.bad(line, message) {
                    Some(err) => return Some(Err(err)),
                    None => continue,
                },
                Raw::Broken(message) => {
                    self.done = true;
                    return Some(Err(TraceError { file: self.file.clone(), line, message }));
                }
            };
            if row.failed && !self.spec.keep_failed {
                self.skipped_failed += 1;
                continue;
            }
            let origin = *self.origin.get_or_insert(row.time_ns);
            let rel = row.time_ns - origin;
            if rel < self.last {
                let message = "its time is earlier than the row before it; a trace must be in time order".to_string();
                match self.bad(line, message) {
                    Some(err) => return Some(Err(err)),
                    None => continue,
                }
            }
            self.last = rel;
            if rel < start_ns {
                continue;
            }
            if end_ns.is_some_and(|end| rel >= end) {
                self.done = true;
                return None;
            }
            self.in_window += 1;
            if (self.in_window - 1) % self.spec.stride.unwrap_or(1).max(1) != 0 {
                continue;
            }
            let arrival_s = (rel - start_ns) as f64 / speedup / 1e9;
            if arrival_s > crate::sim::bounds::HORIZON_S {
                let message = format!(
                    "it arrives {arrival_s:e} s into the replay, beyond the simulated clock's horizon of {:e} s; check its time unit or use `end_s`",
                    crate::sim::bounds::HORIZON_S
                );
                match self.bad(line, message) {
                    Some(err) => return Some(Err(err)),
                    None => continue,
                }
            }
            self.yielded += 1;
            let arrival_ns = ((rel - start_ns) as f64 / speedup).round() as u64;
            return Some(Ok(TraceRow {
                arrival_ns,
                prompt_tokens: row.prompt_tokens,
                output_tokens: row.output_tokens,
                hash_ids: row.hash_ids,
            }));
        }
    }
}

/// Totals of a trace, as read: what the reader tests and `symbiote replay` report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceStats {
    pub rows: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub first_arrival_ns: u64,
    pub last_arrival_ns: u64,
    /// Mooncake: blocks and tokens an unlimited prefix cache would hit (a block hits when its
    /// id was seen before, in order; the last block counts with its partial length).
    pub blocks: u64,
    pub hit_blocks: u64,
    pub hit_tokens: u64,
    pub skipped_bad: u64,
    pub skipped_failed: u64,
}

/// Reads a whole trace once, in constant memory (apart from the set of seen block ids).
pub fn stats(spec: &TraceSpec, base_dir: &Path) -> Result<TraceStats, TraceError> {
    read_through(spec, base_dir, true, None)
}

/// Reads a whole trace once to find its first bad row, in constant memory: [`stats`] without
/// the prefix-hit counts, whose set of seen block ids grows with the trace (about 100 MB for
/// 10 million Mooncake rows), so that validating a replay's trace costs no memory.
///
/// With `count_ids` (a run with prefix caching will replay it) the same read also counts its
/// Mooncake block ids and keeps them ([`RecurringIds::keep`]), so the run need not read the
/// trace once more to find its private blocks.
pub fn check(spec: &TraceSpec, base_dir: &Path, count_ids: bool) -> Result<(), TraceError> {
    let mut ids = RecurringIds::default();
    read_through(spec, base_dir, false, count_ids.then_some(&mut ids))?;
    // A trace without block ids keeps an empty count, which its runs never look up.
    if count_ids {
        ids.keep(spec, base_dir);
    }
    Ok(())
}

fn read_through(
    spec: &TraceSpec,
    base_dir: &Path,
    count_hits: bool,
    mut ids: Option<&mut RecurringIds>,
) -> Result<TraceStats, TraceError> {
    let mut reader = TraceReader::open(spec, base_dir)?;
    let mut stats = TraceStats::default();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(row) = reader.next_row() {
        let row = row?;
        if stats.rows == 0 {
            stats.first_arrival_ns = row.arrival_ns;
        }
        stats.rows += 1;
        stats.prompt_tokens += row.prompt_tokens as u64;
        stats.output_tokens += row.output_tokens as u64;
        stats.last_arrival_ns = row.arrival_ns;
        if let Some(ids) = ids.as_deref_mut() {
            row.hash_ids.iter().for_each(|&id| ids.count(id));
        }
        if !count_hits {
            continue;
        }
        let blocks = row.hash_ids.len() as u64;
        for (k, id) in row.hash_ids.iter().enumerate() {
            stats.blocks += 1;
            if !seen.insert(*id) {
                stats.hit_blocks += 1;
                let len = if k as u64 + 1 == blocks { row.prompt_tokens as u64 - 512 * (blocks - 1) } else { 512 };
                stats.hit_tokens += len;
            }
        }
    }
    stats.skipped_bad = reader.skipped_bad;
    stats.skipped_failed = reader.skipped_failed;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("symbiote-trace-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn spec(path: &str, on_bad_row: BadRows) -> TraceSpec {
        TraceSpec {
            path: path.into(),
            format: None,
            speedup: None,
            start_s: None,
            end_s: None,
            limit: None,
            stride: None,
            on_bad_row,
            keep_failed: false,
            columns: None,
        }
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn validation_keeps_its_count_of_block_ids_for_the_run_until_the_file_changes() {
        let dir = scratch("counted");
        let row = |t: u32, ids: &str| {
            format!("{{\"timestamp\": {t}, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [{ids}]}}\n")
        };
        std::fs::write(dir.join("t.jsonl"), row(0, "0, 1") + &row(1, "0, 2")).unwrap();
        let spec = spec("t.jsonl", BadRows::Fail);
        check(&spec, &dir, true).unwrap();
        let kept = RecurringIds::of_trace(&spec, &dir).unwrap();
        assert!(std::sync::Arc::ptr_eq(&kept, &RecurringIds::of_trace(&spec, &dir).unwrap()), "read again");
        // Id 0 recurs, 1 is the first row's own: its tokens from the second block on.
        assert_eq!(kept.private_from(&[0, 1]), Some(512));
        // Rewritten (another length): id 1 now recurs, which only a fresh count sees.
        std::fs::write(dir.join("t.jsonl"), row(0, "0, 1") + &row(1, "0, 1") + &row(2, "3")).unwrap();
        assert_eq!(RecurringIds::of_trace(&spec, &dir).unwrap().private_from(&[0, 1]), None);
        // Without prefix caching nothing is kept: each count is a fresh read.
        let other = TraceSpec { limit: Some(2), ..spec };
        check(&other, &dir, false).unwrap();
        let (a, b) = (RecurringIds::of_trace(&other, &dir).unwrap(), RecurringIds::of_trace(&other, &dir).unwrap());
        assert!(!std::sync::Arc::ptr_eq(&a, &b));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `stats` on another thread, failing the test instead of hanging it.
    fn stats_within_seconds(spec: TraceSpec, dir: PathBuf) -> Result<TraceStats, TraceError> {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || send.send(stats(&spec, &dir)));
        receive.recv_timeout(std::time::Duration::from_secs(30)).expect("reading the trace hangs")
    }

    // See: issue 14
    #[test]
    fn issue_14_a_truncated_gz_trace_ends_with_an_error_instead_of_hanging() {
        let dir = scratch("truncated");
        let jsonl: String = (0..5_000)
            .map(|i| {
                format!(
                    "{{\"timestamp\": {i}, \"input_length\": 600, \"output_length\": {}, \"hash_ids\": [{i}, 7]}}\n",
                    1 + i % 97
                )
            })
            .collect();
        let csv: String = std::iter::once("arrival,prompt,output\n".to_string())
            .chain((0..5_000).map(|i| format!("{i},{},{}\n", 100 + i % 89, 1 + i % 97)))
            .collect();
        let columns = Columns {
            arrival: "arrival".into(),
            prompt_tokens: "prompt".into(),
            output_tokens: "output".into(),
            time_unit: TimeUnit::Ms,
        };
        for (name, text, columns) in [("cut.jsonl.gz", &jsonl, None), ("cut.csv.gz", &csv, Some(columns))] {
            let bytes = gzip(text);
            std::fs::write(dir.join(name), &bytes[..bytes.len() / 2]).unwrap();
            for on_bad_row in [BadRows::Skip, BadRows::Fail] {
                let mut spec = spec(name, on_bad_row);
                if columns.is_some() {
                    spec.format = Some(TraceFormat::Generic);
                    spec.columns = columns.clone();
                }
                let err = stats_within_seconds(spec, dir.clone()).expect_err("a cut trace is an error");
                assert!(err.file.ends_with(name), "{err}");
                assert!(err.line > 1, "{err}");
                assert!(err.message.contains("cannot read the trace past byte"), "{err}");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    // See: issue 14
    #[test]
    fn issue_14_a_huge_field_is_quoted_clipped() {
        let dir = scratch("huge");
        let huge = "9x".repeat(500_000);
        let columns = Columns {
            arrival: "arrival".into(),
            prompt_tokens: "prompt".into(),
            output_tokens: "output".into(),
            time_unit: TimeUnit::S,
        };
        std::fs::write(dir.join("t.csv"), format!("arrival,prompt,output\n0,{huge},5\n")).unwrap();
        std::fs::write(
            dir.join("t.jsonl"),
            format!("{{\"timestamp\": 0, \"input_length\": \"{huge}\", \"output_length\": 5, \"hash_ids\": []}}\n"),
        )
        .unwrap();
        std::fs::write(dir.join("h.csv"), format!("arrival,{huge},output\n0,1,5\n")).unwrap();
        for name in ["t.csv", "t.jsonl", "h.csv"] {
            let mut spec = spec(name, BadRows::Fail);
            if name.ends_with(".csv") {
                spec.format = Some(TraceFormat::Generic);
                spec.columns = Some(columns.clone());
            }
            let err = stats(&spec, &dir).expect_err("the row is bad").to_string();
            assert!(err.len() < 400, "{name}: a {} byte message", err.len());
            assert!(err.contains("bytes)"), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    // See: issue 14
    #[test]
    fn issue_14_lengths_and_times_beyond_the_limits_are_bad_rows() {
        let dir = scratch("limits");
        let columns = Columns {
            arrival: "arrival".into(),
            prompt_tokens: "prompt".into(),
            output_tokens: "output".into(),
            time_unit: TimeUnit::S,
        };
        // 4294967295 tokens wrapped the scheduler's sums; 1e12 s saturated the clock.
        for (name, row, words) in [
            ("long.csv", "0,4294967295,5", "4294967295 tokens, above the limit of 16777216"),
            ("late.csv", "1e12,10,5", "beyond the simulated clock's horizon"),
        ] {
            std::fs::write(dir.join(name), format!("arrival,prompt,output\n0,10,5\n{row}\n")).unwrap();
            let mut spec = spec(name, BadRows::Fail);
            spec.format = Some(TraceFormat::Generic);
            spec.columns = Some(columns.clone());
            let err = stats(&spec, &dir).expect_err("the row is bad").to_string();
            assert!(err.contains(words) && err.contains(&format!("{name}:3:")), "{name}: {err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
