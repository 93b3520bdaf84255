//! What a GPU-hour costs: the public list prices of the GPU catalog (`prices` in each
//! `models/gpu/*.json`, every quote with its provider, source page and date) and the user's
//! overrides from a `--prices FILE`, turned into one [`Price`] per GPU with the basis it rests on.
//!
//! The default rule is the lowest on-demand quote of the catalog: spot and reserved quotes are
//! kept for the reader but never chosen, because neither is a price anyone can count on paying
//! by the hour. An override names its GPU and wins over the catalog.
//!
//! Override files are JSON, either `{"h100-80gb": 2.49, "l4": 0.7}` or
//! `[{"gpu": "h100-80gb", "usd_per_gpu_hour": 2.49, "source": "our contract"}]`, or CSV with a
//! header, `gpu,usd_per_gpu_hour[,source]`. Unknown GPUs, a GPU given twice and prices that are
//! negative, not finite or above [`MAX_USD_PER_GPU_HOUR`] are errors naming the file, the line
//! or field, and the fix.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::catalog::GpuSpec;

/// The highest price per GPU-hour accepted: list prices sit below $15 (Azure's H100 is about
/// $12.29), so a figure beyond this is a unit mistake (per instance-month, in cents).
pub const MAX_USD_PER_GPU_HOUR: f64 = 1000.0;

/// One public price of a GPU-hour as a catalog file records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceQuote {
    /// The instance's hourly price divided by the GPUs in the instance.
    pub usd_per_gpu_hour: f64,
    pub provider: String,
    /// What is rented: instance type, GPU count, region, tier.
    pub offering: String,
    pub kind: PriceKind,
    /// The address of the page the price was copied from.
    pub source: String,
    /// When the price was published or read, `YYYY-MM-DD`.
    pub date: String,
    /// What was read (the instance price and GPU count) and where the page took it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    OnDemand,
    Spot,
    Reserved,
}

/// The price a report uses for one GPU-hour, and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Price {
    pub usd_per_gpu_hour: f64,
    /// `lowest on-demand list price of 3: Lambda 1x H100 SXM, 2026-09-20` or `--prices FILE`.
    pub basis: String,
}

/// The catalog's quotes plus any overrides, keyed by catalog GPU name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriceBook {
    overrides: BTreeMap<String, Override>,
    /// The override file's name as the basis shows it.
    label: String,
}

#[derive(Clone, Debug, PartialEq)]
struct Override {
    usd_per_gpu_hour: f64,
    source: Option<String>,
}

/// A problem in a `--prices` file: the file, where in it, and what to do.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}: {at}: {message}")]
pub struct PriceError {
    pub file: String,
    /// `line 3`, `h100-80gb`, `[2].usd_per_gpu_hour`, or `file` for the whole file.
    pub at: String,
    pub message: String,
}

/// One row of an override file before it is checked.
struct Row {
    at: String,
    gpu: String,
    usd_per_gpu_hour: f64,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    gpu: String,
    usd_per_gpu_hour: f64,
    #[serde(default)]
    source: Option<String>,
}

impl PriceBook {
    /// The catalog's quotes alone.
    pub fn builtin() -> PriceBook {
        PriceBook::default()
    }

    /// The catalog's quotes with the overrides of `path` (JSON or CSV, by extension or, failing
    /// that, by the first character).
    pub fn with_file(path: &Path) -> Result<PriceBook, PriceError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PriceError {
            file: shown.clone(),
            at: "file".into(),
            message: format!("cannot read it ({e}); give the path of a JSON or CSV price file"),
        })?;
        let label = path.file_name().map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
        let csv = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => true,
            Some(ext) if ext.eq_ignore_ascii_case("json") => false,
            _ => !matches!(text.trim_start().chars().next(), Some('{' | '[')),
        };
        PriceBook::parse(&text, &shown, &label, csv)
    }

    /// The catalog's quotes with the overrides in `text`; `file` names it in errors, `label`
    /// in the basis of every overridden price.
    pub fn parse(text: &str, file: &str, label: &str, csv: bool) -> Result<PriceBook, PriceError> {
        let error = |at: String, message: String| PriceError { file: file.to_string(), at, message };
        let rows = if csv { csv_rows(text) } else { json_rows(text) }.map_err(|(at, m)| error(at, m))?;
        let catalog = crate::hardware::active_catalog();
        let mut overrides = BTreeMap::new();
        for row in rows {
            let gpu = catalog.gpu(&row.gpu).map_err(|e| error(row.at.clone(), format!("{e}; use a catalog name")))?;
            check_price(row.usd_per_gpu_hour).map_err(|m| error(row.at.clone(), m))?;
            let entry = Override { usd_per_gpu_hour: row.usd_per_gpu_hour, source: row.source };
            if overrides.insert(gpu.name.clone(), entry).is_some() {
                return Err(error(row.at, format!("`{}` is priced twice; keep one", gpu.name)));
            }
        }
        Ok(PriceBook { overrides, label: label.to_string() })
    }

    /// Whether any price comes from a file rather than the catalog.
    pub fn has_overrides(&self) -> bool {
        !self.overrides.is_empty()
    }

    /// A fixed text of the overrides, for content hashes: the same overrides give the same text.
    pub fn fingerprint(&self) -> String {
        let rows: Vec<String> = self
            .overrides
            .iter()
            .map(|(gpu, o)| format!("{gpu}={}:{}", o.usd_per_gpu_hour, o.source.as_deref().unwrap_or("")))
            .collect();
        rows.join(";")
    }

    /// The price of one GPU-hour of `gpu`: the override if the file names it, else the lowest
    /// on-demand quote of the catalog; `None` when neither exists.
    pub fn price(&self, gpu: &GpuSpec) -> Option<Price> {
        if let Some(o) = self.overrides.get(&gpu.name) {
            let basis = match &o.source {
                Some(source) => format!("--prices {} ({source})", self.label),
                None => format!("--prices {}", self.label),
            };
            return Some(Price { usd_per_gpu_hour: o.usd_per_gpu_hour, basis });
        }
        lowest_on_demand(&gpu.prices)
    }
}

/// The cheapest on-demand quote; among equal prices the first listed.
fn lowest_on_demand(quotes: &[PriceQuote]) -> Option<Price> {
    let on_demand: Vec<&PriceQuote> = quotes.iter().filter(|q| q.kind == PriceKind::OnDemand).collect();
    let best = on_demand.iter().copied().reduce(|a, b| if b.usd_per_gpu_hour < a.usd_per_gpu_hour { b } else { a })?;
    Some(Price {
        usd_per_gpu_hour: best.usd_per_gpu_hour,
        basis: format!(
            "lowest on-demand list price of {}: {} {}, {}",
            on_demand.len(),
            best.provider,
            best.offering,
            best.date
        ),
    })
}

fn check_price(usd: f64) -> Result<(), String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!("price {usd} must be a finite number of dollars per GPU-hour, 0 or more"));
    }
    if usd > MAX_USD_PER_GPU_HOUR {
        return Err(format!(
            "${usd} per GPU-hour is above the limit of ${MAX_USD_PER_GPU_HOUR}; give the price of one GPU for one hour \
             (an instance's hourly price divided by its GPUs)"
        ));
    }
    Ok(())
}

fn json_rows(text: &str) -> Result<Vec<Row>, (String, String)> {
    let invalid =
        |e: serde_json::Error| (format!("line {} column {}", e.line(), e.column()), format!("not valid JSON: {e}"));
    serde_json::from_str::<super::catalog::NoDuplicateKeys>(text).map_err(invalid)?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
    let shape =
        "give {\"<gpu>\": <usd per GPU-hour>, ...} or [{\"gpu\": ..., \"usd_per_gpu_hour\": ..., \"source\": ...}]";
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(gpu, v)| match v.as_f64() {
                Some(usd) => Ok(Row { at: gpu.clone(), gpu, usd_per_gpu_hour: usd, source: None }),
                None => Err((gpu, format!("{v} is not a number; {shape}"))),
            })
            .collect(),
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let row: JsonRow =
                    serde_json::from_value(item).map_err(|e| (format!("[{i}]"), format!("{e}; {shape}")))?;
                Ok(Row {
                    at: format!("[{i}]"),
                    gpu: row.gpu,
                    usd_per_gpu_hour: row.usd_per_gpu_hour,
                    source: row.source,
                })
            })
            .collect(),
        other => Err(("file".into(), format!("the top level is {other}; {shape}"))),
    }
}

fn csv_rows(text: &str) -> Result<Vec<Row>, (String, String)> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ("line 1".to_string(), format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let expected = ["gpu", "usd_per_gpu_hour", "source"];
    if header.len() < 2 || header.len() > 3 || header.iter().zip(expected).any(|(h, e)| h != e) {
        return Err((
            "line 1".into(),
            format!(
                "the header is `{}`; it must be `gpu,usd_per_gpu_hour` or `gpu,usd_per_gpu_hour,source`",
                header.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            (format!("line {line}"), format!("cannot read the row: {e}"))
        })?;
        let at = format!("line {}", record.position().map_or(0, |p| p.line()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() < 2 || record.len() > header.len() {
            return Err((at, format!("{} fields; the header has {}", record.len(), header.len())));
        }
        let usd = record[1]
            .parse::<f64>()
            .map_err(|_| (at.clone(), format!("`{}` is not a number of dollars per GPU-hour", &record[1])))?;
        let source = record.get(2).filter(|s| !s.is_empty()).map(str::to_string);
        rows.push(Row { at, gpu: record[0].to_string(), usd_per_gpu_hour: usd, source });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Catalog;

    fn quote(usd: f64, provider: &str, kind: PriceKind) -> PriceQuote {
        PriceQuote {
            usd_per_gpu_hour: usd,
            provider: provider.into(),
            offering: format!("{provider} box"),
            kind,
            source: "https://example.com/pricing".into(),
            date: "2026-01-02".into(),
            note: None,
        }
    }

    fn gpu_with(quotes: Vec<PriceQuote>) -> GpuSpec {
        let mut gpu = Catalog::builtin().gpu("h100-80gb").unwrap().clone();
        gpu.prices = quotes;
        gpu
    }

    fn parse(text: &str, csv: bool) -> Result<PriceBook, PriceError> {
        PriceBook::parse(text, "p.file", "p.file", csv)
    }

    #[test]
    fn the_default_is_the_lowest_on_demand_quote_never_spot_or_reserved() {
        let gpu = gpu_with(vec![
            quote(3.0, "A", PriceKind::OnDemand),
            quote(1.0, "S", PriceKind::Spot),
            quote(2.5, "B", PriceKind::OnDemand),
            quote(0.9, "R", PriceKind::Reserved),
            quote(2.5, "C", PriceKind::OnDemand),
        ]);
        let price = PriceBook::builtin().price(&gpu).unwrap();
        assert_eq!(price.usd_per_gpu_hour, 2.5);
        assert_eq!(price.basis, "lowest on-demand list price of 3: B B box, 2026-01-02");
        assert_eq!(PriceBook::builtin().price(&gpu_with(vec![quote(1.0, "S", PriceKind::Spot)])), None);
        assert_eq!(PriceBook::builtin().price(&gpu_with(Vec::new())), None);
    }

    #[test]
    fn an_override_wins_over_the_catalog_in_every_format() {
        let gpu = gpu_with(vec![quote(3.0, "A", PriceKind::OnDemand)]);
        for (text, csv) in [
            (r#"{"H100": 2.25}"#, false),
            (r#"[{"gpu": "h100-80gb", "usd_per_gpu_hour": 2.25}]"#, false),
            ("gpu,usd_per_gpu_hour\nh100-sxm,2.25\n", true),
        ] {
            let price = parse(text, csv).unwrap().price(&gpu).unwrap();
            assert_eq!((price.usd_per_gpu_hour, price.basis.as_str()), (2.25, "--prices p.file"), "{text}");
        }
        let book =
            parse("gpu,usd_per_gpu_hour,source\nh100-80gb,2.0,\"our contract, 2026\"\n\nl4,0.5\n", true).unwrap();
        assert_eq!(book.price(&gpu).unwrap().basis, "--prices p.file (our contract, 2026)");
        // A GPU the file does not name keeps the catalog's price.
        let l4 = parse(r#"{"l4": 0.5}"#, false).unwrap().price(&gpu).unwrap();
        assert_eq!(l4.usd_per_gpu_hour, 3.0);
        assert_eq!(book.fingerprint(), "h100-80gb=2:our contract, 2026;l4=0.5:");
    }

    #[test]
    fn bad_files_name_the_place_and_the_fix() {
        let err = |text: &str, csv: bool| parse(text, csv).unwrap_err().to_string();
        assert!(err(r#"{"a100": 1.0}"#, false).starts_with("p.file: a100: unknown gpu `a100`; known: "));
        assert!(err(r#"{"l4": -1}"#, false).contains("p.file: l4: price -1 must be a finite number"));
        assert!(err(r#"{"l4": 1500}"#, false).contains("above the limit of $1000"));
        assert!(err(r#"{"l4": "cheap"}"#, false).starts_with("p.file: l4: \"cheap\" is not a number"));
        assert!(err(r#"[{"gpu": "l4", "usd": 1}]"#, false).starts_with("p.file: [0]: unknown field `usd`"));
        assert!(err(r#"{"l4": 1, "L4": 2}"#, false).contains("`l4` is priced twice"));
        assert!(err(r#"{"l4": 1, "l4": 2}"#, false).contains("`l4` is given twice in one object"));
        assert!(err("{\"l4\": 1,\n}", false).starts_with("p.file: line 2 column 1: not valid JSON"));
        assert!(err("42", false).contains("the top level is 42"));
        assert!(err("name,price\nl4,1\n", true).starts_with("p.file: line 1: the header is `name,price`"));
        assert_eq!(
            err("gpu,usd_per_gpu_hour\nl4,1\nh100,NaN\n", true),
            "p.file: line 3: price NaN must be a finite number of dollars per GPU-hour, 0 or more"
        );
        assert!(err("gpu,usd_per_gpu_hour\nl4,one\n", true).starts_with("p.file: line 2: `one` is not a number"));
        assert!(err("gpu,usd_per_gpu_hour\nl4,1,extra\n", true).starts_with("p.file: line 2: 3 fields"));
    }

    #[test]
    fn with_file_reads_json_or_csv_and_names_a_missing_file() {
        let dir = std::env::temp_dir().join(format!("symbiote-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("mine.csv");
        std::fs::write(&csv, "gpu,usd_per_gpu_hour\nl4,0.5\n").unwrap();
        let json = dir.join("mine.txt");
        std::fs::write(&json, " {\"l4\": 0.25}").unwrap();
        let l4 = Catalog::builtin().gpu("l4").unwrap();
        assert_eq!(PriceBook::with_file(&csv).unwrap().price(l4).unwrap().basis, "--prices mine.csv");
        assert_eq!(PriceBook::with_file(&json).unwrap().price(l4).unwrap().usd_per_gpu_hour, 0.25);
        let missing = PriceBook::with_file(&dir.join("none.json")).unwrap_err();
        assert_eq!(missing.at, "file");
        assert!(missing.message.starts_with("cannot read it"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every catalog quote is sane, and the GPUs with an on-demand quote get a price.
    #[test]
    fn catalog_quotes_are_sane_and_priced() {
        for gpu in &Catalog::builtin().gpus {
            for q in &gpu.prices {
                assert!(check_price(q.usd_per_gpu_hour).is_ok() && q.usd_per_gpu_hour > 0.0, "{}: {q:?}", gpu.name);
                assert!(q.source.starts_with("https://"), "{}: {q:?}", gpu.name);
                let date = q.date.as_bytes();
                assert!(date.len() == 10 && date[4] == b'-' && date[7] == b'-', "{}: {q:?}", gpu.name);
            }
            let has_on_demand = gpu.prices.iter().any(|q| q.kind == PriceKind::OnDemand);
            assert_eq!(PriceBook::builtin().price(gpu).is_some(), has_on_demand, "{}", gpu.name);
        }
        let h100 = PriceBook::builtin().price(Catalog::builtin().gpu("h100-80gb").unwrap()).unwrap();
        assert_eq!(h100.usd_per_gpu_hour, 2.69);
        assert!(h100.basis.starts_with("lowest on-demand list price of 8: RunPod"), "{}", h100.basis);
    }
}
