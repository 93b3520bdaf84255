//! Per-run data beyond report.json that the charts use when a run wrote it: `timeline.csv`
//! (`--timeline`) and `requests.csv` (`--requests`, and the burstiness analysis), parsed from
//! their text into at most [`POINTS`] points per series. Pure: the caller reads the files.
//! A file that does not parse is left out of the page, not an error (the report stands
//! without it).

/// Points per time series or CDF: enough for an 800-pixel chart.
pub const POINTS: usize = 240;

/// The extra data of each case's first seed, by case index; missing where not captured.
#[derive(Clone, Debug, Default)]
pub struct RunSeries {
    pub cases: Vec<CaseSeries>,
}

#[derive(Clone, Debug, Default)]
pub struct CaseSeries {
    pub seed: u64,
    pub timeline: Option<Timeline>,
    pub requests: Option<Requests>,
}

/// A timeline's samples, bucketed: per bucket end time, the largest waiting and running
/// counts and KV use seen, and completions per second over the bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub time_s: Vec<f64>,
    pub waiting: Vec<f64>,
    pub running: Vec<f64>,
    pub kv_usage: Vec<f64>,
    pub completed_per_s: Vec<f64>,
}

/// What requests.csv tells: latency samples (sorted, ms) and, per time bucket, arrivals and
/// completions per second and the requests waiting (arrived, not yet scheduled) at its end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    pub ttft_ms: Vec<f64>,
    pub e2el_ms: Vec<f64>,
    pub time_s: Vec<f64>,
    pub arrivals_per_s: Vec<f64>,
    pub completions_per_s: Vec<f64>,
    pub waiting: Vec<f64>,
}

fn rows(text: &str, columns: &[&str]) -> Option<Vec<Vec<f64>>> {
    let mut reader = ::csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = reader.headers().ok()?.clone();
    let index: Vec<usize> = columns.iter().map(|c| headers.iter().position(|h| h == *c)).collect::<Option<_>>()?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.ok()?;
        let row: Vec<f64> = index.iter().map(|&i| record.get(i)?.parse::<f64>().ok()).collect::<Option<_>>()?;
        if row.iter().any(|v| !v.is_finite()) {
            return None;
        }
        out.push(row);
    }
    (!out.is_empty()).then_some(out)
}

/// The bucket width for a span of `seconds`: 1, 2 or 5 times a power of ten, giving at most
/// [`POINTS`] buckets.
fn bucket_width(seconds: f64) -> f64 {
    let raw = (seconds / POINTS as f64).max(1e-6);
    let decade = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * decade).find(|&w| w >= raw).unwrap_or(10.0 * decade)
}

fn bucket_of(t: f64, width: f64) -> usize {
    ((t / width).floor().max(0.0) as usize).min(100 * POINTS)
}

impl Timeline {
    pub fn parse(text: &str) -> Option<Timeline> {
        let rows = rows(text, &["time_s", "waiting", "running", "kv_usage", "completed"])?;
        let end = rows.iter().map(|r| r[0]).fold(0.0, f64::max);
        let width = bucket_width(end);
        let n = bucket_of(end, width) + 1;
        let mut t = Timeline::default();
        let (mut waiting, mut running, mut kv, mut done) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![None; n]);
        let mut seen = vec![false; n];
        for r in &rows {
            let b = bucket_of(r[0], width);
            seen[b] = true;
            waiting[b] = f64::max(waiting[b], r[1]);
            running[b] = f64::max(running[b], r[2]);
            kv[b] = f64::max(kv[b], r[3]);
            done[b] = Some(f64::max(done[b].unwrap_or(0.0), r[4]));
        }
        let mut last_done = 0.0;
        for b in (0..n).filter(|&b| seen[b]) {
            let now_done = done[b].unwrap_or(last_done);
            t.time_s.push((b as f64 + 1.0) * width);
            t.waiting.push(waiting[b]);
            t.running.push(running[b]);
            t.kv_usage.push(kv[b]);
            t.completed_per_s.push((now_done - last_done).max(0.0) / width);
            last_done = now_done;
        }
        Some(t)
    }
}

impl Requests {
    pub fn parse(text: &str) -> Option<Requests> {
        let rows = rows(text, &["arrival_s", "first_scheduled_s", "first_token_s", "finish_s"])?;
        let mut r = Requests {
            ttft_ms: rows.iter().map(|x| (x[2] - x[0]) * 1e3).collect(),
            e2el_ms: rows.iter().map(|x| (x[3] - x[0]) * 1e3).collect(),
            ..Requests::default()
        };
        r.ttft_ms.sort_by(f64::total_cmp);
        r.e2el_ms.sort_by(f64::total_cmp);
        let end = rows.iter().map(|x| x[3]).fold(0.0, f64::max);
        let width = bucket_width(end);
        let n = bucket_of(end, width) + 1;
        let (mut arrivals, mut finishes, mut queue_delta) = (vec![0.0; n], vec![0.0; n], vec![0.0; n + 1]);
        for x in &rows {
            arrivals[bucket_of(x[0], width)] += 1.0;
            finishes[bucket_of(x[3], width)] += 1.0;
            // Waiting at a bucket's end: arrived in or before it, scheduled after it.
            let (a, s) = (bucket_of(x[0], width), bucket_of(x[1], width));
            if s > a {
                queue_delta[a] += 1.0;
                queue_delta[s] -= 1.0;
            }
        }
        let mut waiting = 0.0;
        for b in 0..n {
            waiting += queue_delta[b];
            r.time_s.push((b as f64 + 1.0) * width);
            r.arrivals_per_s.push(arrivals[b] / width);
            r.completions_per_s.push(finishes[b] / width);
            r.waiting.push(waiting);
        }
        Some(r)
    }
}

/// The empirical CDF of sorted `values` as at most about [`POINTS`] (value, fraction)
/// points, denser in the tail (p99 and above).
pub fn cdf(sorted: &[f64]) -> Vec<(f64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let n = sorted.len();
    let mut qs: Vec<f64> = (0..=200).map(|k| k as f64 / 200.0).collect();
    qs.extend([0.991, 0.992, 0.994, 0.996, 0.998, 0.999, 0.9995, 0.9999]);
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    qs.iter()
        .map(|&q| {
            let i = ((q * (n - 1) as f64).round() as usize).min(n - 1);
            (sorted[i], (i + 1) as f64 / n as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_buckets_keep_peaks_and_rates() {
        let text = "time_s,replica,waiting,running,scheduled_tokens,kv_usage,preemptions,completed\n\
                    0.0,0,5,2,10,0.1,0,0\n0.5,0,9,3,10,0.2,0,4\n1.5,0,1,1,10,0.3,0,10\n";
        let t = Timeline::parse(text).unwrap();
        assert!(t.time_s.len() <= POINTS && !t.time_s.is_empty());
        assert_eq!(t.waiting.iter().copied().fold(0.0, f64::max), 9.0);
        let total: f64 = t.completed_per_s.iter().sum::<f64>() * bucket_width(1.5);
        assert!((total - 10.0).abs() < 1e-9, "{t:?}");
        assert!(Timeline::parse("time_s\n1\n").is_none(), "missing columns");
        assert!(Timeline::parse("").is_none());
    }

    #[test]
    fn requests_give_latencies_rates_and_the_queue() {
        let text = "id,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,output_tokens,cached_tokens,preemptions,replica\n\
                    0,0.0,0.0,0.01,1.0,1,1,0,0,0\n1,0.0,2.0,2.05,3.0,1,1,0,0,0\n";
        let r = Requests::parse(text).unwrap();
        assert_eq!(r.ttft_ms.len(), 2);
        assert!((r.ttft_ms[1] - 2050.0).abs() < 1e-6);
        assert!((r.arrivals_per_s.iter().sum::<f64>() * bucket_width(3.0) - 2.0).abs() < 1e-9);
        assert_eq!(r.waiting.iter().copied().fold(0.0, f64::max), 1.0);
        assert_eq!(*r.waiting.last().unwrap(), 0.0);
        let c = cdf(&r.e2el_ms);
        assert_eq!(c.last().unwrap().1, 1.0);
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
