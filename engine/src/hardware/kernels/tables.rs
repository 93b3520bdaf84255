//! The measured kernel tables under `models/kernels/` (AIConfigurator's vLLM 0.14.0 timings;
//! Apache-2.0, see that folder's README), embedded at build time, parsed once per process, and
//! the interpolation every lookup uses.
//!
//! Each file is a grid: key columns, then one column per point of an axis (`m=1`, `isl=16`,
//! ...), latency in milliseconds, an empty cell where nothing was measured. Parsing converts to
//! seconds and, for GEMMs, applies the splitting bound (see [`GemmTable`]); nothing else changes
//! a measured value.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::OnceLock;

/// The four files of one GPU's folder, gzipped as committed.
struct Source {
    dir: &'static str,
    /// Catalog GPUs the folder was measured on (the device column names the exact part).
    gpus: &'static [&'static str],
    gemm: &'static [u8],
    context: &'static [u8],
    generation: &'static [u8],
    allreduce: &'static [u8],
}

macro_rules! source {
    ($dir:literal, $gpus:expr) => {
        Source {
            dir: $dir,
            gpus: $gpus,
            gemm: include_bytes!(concat!("../../../../models/kernels/", $dir, "/gemm.csv.gz")),
            context: include_bytes!(concat!("../../../../models/kernels/", $dir, "/context_attention.csv.gz")),
            generation: include_bytes!(concat!("../../../../models/kernels/", $dir, "/generation_attention.csv.gz")),
            allreduce: include_bytes!(concat!("../../../../models/kernels/", $dir, "/custom_allreduce.csv.gz")),
        }
    };
}

/// `NVIDIA A100-SXM4-80GB`, `NVIDIA H100 80GB HBM3`, `NVIDIA H200`, `NVIDIA L40S` as the tables'
/// `device` column records them; no other catalog GPU borrows them (an A100-40GB or H100 PCIe
/// has other bandwidth and clocks).
const SOURCES: [Source; 4] = [
    source!("a100_sxm", &["a100-80gb"]),
    source!("h100_sxm", &["h100-80gb"]),
    source!("h200_sxm", &["h200"]),
    source!("l40s", &["l40s"]),
];

static PARSED: [OnceLock<KernelTables>; 4] = [const { OnceLock::new() }; 4];

/// The tables measured on the catalog GPU `gpu_name`, parsed on first use; `None` for a GPU
/// without tables.
pub fn for_gpu(gpu_name: &str) -> Option<&'static KernelTables> {
    let i = SOURCES.iter().position(|s| s.gpus.contains(&gpu_name))?;
    Some(PARSED[i].get_or_init(|| KernelTables::parse(&SOURCES[i])))
}

/// One GPU's tables.
#[derive(Debug)]
pub struct KernelTables {
    /// The folder under `models/kernels/`.
    pub dir: &'static str,
    /// By `gemm_dtype` (`bfloat16`, `fp8`).
    pub gemm: BTreeMap<String, GemmTable>,
    /// Prefill attention by `kv_cache_dtype` (`bfloat16`, `fp8`), along `isl`.
    pub context: BTreeMap<String, AttentionTable>,
    /// Decode attention by `kv_cache_dtype`, along `step` (KV tokens read).
    pub generation: BTreeMap<String, AttentionTable>,
    /// vLLM's all-reduce (CUDA-graph rows, 16-bit elements).
    pub allreduce: AllReduceTable,
}

/// GEMM seconds over an m x n x k grid, Y[m x n] = X[m x k] W^T.
///
/// Splitting bound: a GEMM of m rows can run as ceil(m / m') GEMMs of m' rows, so a point more
/// than twice `min over m' < m of t(m') x ceil(m / m')` is taken for a measurement fault and
/// replaced by that bound. It removes the isolated slow points of the H100 table (the source
/// README's quirk 4: 53 points at about 18% of peak, e.g. n 5120, k 8192 at m 2048 measured 10x
/// m 1024's time) and, on the L40S, 167 points (143 FP8; 141 of narrow shapes, n <= 2048, at
/// large m); the A100 and H200 tables have none. Smaller excesses (per-row cost rising with m by wave
/// quantisation or clocks, like the L40S's large bf16 GEMMs) are kept as measured.
#[derive(Debug)]
pub struct GemmTable {
    pub m: Vec<f64>,
    pub n: Vec<f64>,
    pub k: Vec<f64>,
    /// Seconds at `[(ni * k.len() + ki) * m.len() + mi]`.
    secs: Vec<f64>,
}

/// Attention seconds of one layer's call, per (query heads, KV heads, batch) along one axis.
#[derive(Debug)]
pub struct AttentionTable {
    pub batch: Vec<f64>,
    /// `isl` (prefill tokens per sequence) or `step` (KV tokens per sequence).
    pub axis: Vec<f64>,
    /// Seconds along `axis` per (heads, kv heads, batch); NaN where not measured.
    curves: Curves,
}

/// All-reduce seconds along the message size (elements), per GPU count.
#[derive(Debug)]
pub struct AllReduceTable {
    pub elements: Vec<f64>,
    pub by_gpus: BTreeMap<u32, Vec<f64>>,
}

/// A parsed grid file: the axis, and per row its key cells and seconds (NaN where empty).
type Rows = (Vec<f64>, Vec<(Vec<String>, Vec<f64>)>);

/// Attention curves by (query heads, KV heads, batch).
type Curves = BTreeMap<(u32, u32, u32), Vec<f64>>;

fn parse_grid(name: &str, gz: &[u8], keys: usize) -> Rows {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("embedded kernel table {name} is not gzipped text: {e}"));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_else(|| panic!("embedded kernel table {name} is empty"));
    let axis: Vec<f64> = header
        .split(',')
        .skip(keys)
        .map(|cell| {
            let value = cell.split_once('=').map_or(cell, |(_, v)| v);
            value.parse().unwrap_or_else(|_| panic!("{name}: bad axis cell {cell:?}"))
        })
        .collect();
    let rows = lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), keys + axis.len(), "{name}: row {line:?} has the wrong width");
            let ms = cells[keys..]
                .iter()
                .map(|c| if c.is_empty() { f64::NAN } else { c.parse::<f64>().expect("latency") * 1e-3 })
                .collect();
            (cells[..keys].iter().map(|s| s.to_string()).collect(), ms)
        })
        .collect();
    (axis, rows)
}

fn int(name: &str, cell: &str) -> u32 {
    cell.parse().unwrap_or_else(|_| panic!("{name}: bad integer key {cell:?}"))
}

impl KernelTables {
    fn parse(source: &Source) -> KernelTables {
        let gemm_name = format!("{}/gemm.csv.gz", source.dir);
        let (m, rows) = parse_grid(&gemm_name, source.gemm, 3);
        let mut by_dtype: BTreeMap<String, BTreeMap<(u32, u32), Vec<f64>>> = BTreeMap::new();
        for (key, secs) in rows {
            let (n, k) = (int(&gemm_name, &key[1]), int(&gemm_name, &key[2]));
            by_dtype.entry(key[0].clone()).or_default().insert((n, k), secs);
        }
        let gemm = by_dtype.into_iter().map(|(dtype, curves)| (dtype, GemmTable::new(m.clone(), curves))).collect();
        let attention = |file: &str, gz: &[u8]| {
            let name = format!("{}/{file}", source.dir);
            let (axis, rows) = parse_grid(&name, gz, 4);
            let mut by_dtype: BTreeMap<String, Curves> = BTreeMap::new();
            for (key, secs) in rows {
                let k = (int(&name, &key[1]), int(&name, &key[2]), int(&name, &key[3]));
                by_dtype.entry(key[0].clone()).or_default().insert(k, secs);
            }
            by_dtype
                .into_iter()
                .map(|(dtype, curves)| {
                    let mut batch: Vec<f64> = curves.keys().map(|k| k.2 as f64).collect();
                    batch.sort_by(f64::total_cmp);
                    batch.dedup();
                    (dtype, AttentionTable { batch, axis: axis.clone(), curves })
                })
                .collect()
        };
        let context = attention("context_attention.csv.gz", source.context);
        let generation = attention("generation_attention.csv.gz", source.generation);
        let ar_name = format!("{}/custom_allreduce.csv.gz", source.dir);
        let (elements, rows) = parse_grid(&ar_name, source.allreduce, 1);
        let by_gpus = rows.into_iter().map(|(key, secs)| (int(&ar_name, &key[0]), secs)).collect();
        KernelTables { dir: source.dir, gemm, context, generation, allreduce: AllReduceTable { elements, by_gpus } }
    }
}

impl GemmTable {
    fn new(m: Vec<f64>, curves: BTreeMap<(u32, u32), Vec<f64>>) -> GemmTable {
        let axis = |f: fn(&(u32, u32)) -> u32| {
            let mut v: Vec<f64> = curves.keys().map(|key| f(key) as f64).collect();
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        };
        let (n, k) = (axis(|key| key.0), axis(|key| key.1));
        let mut secs = vec![f64::NAN; n.len() * k.len() * m.len()];
        for (ni, &nv) in n.iter().enumerate() {
            for (ki, &kv) in k.iter().enumerate() {
                // A shape the grid skips (n = k = 65536) takes its lower-k neighbour's time
                // scaled by k, so every corner of the bilinear lookup exists.
                let curve = match curves.get(&(nv as u32, kv as u32)) {
                    Some(c) if c.iter().all(|x| x.is_finite()) => c.clone(),
                    _ => {
                        assert!(ki > 0, "gemm table has no curve at n {nv}, k {kv} nor a lower k");
                        let base = (ni * k.len() + ki - 1) * m.len();
                        secs[base..base + m.len()].iter().map(|t| t * kv / k[ki - 1]).collect()
                    }
                };
                let base = (ni * k.len() + ki) * m.len();
                secs[base..base + m.len()].copy_from_slice(&splitting_bound(&m, &curve));
            }
        }
        GemmTable { m, n, k, secs }
    }

    fn curve(&self, ni: usize, ki: usize) -> &[f64] {
        let base = (ni * self.k.len() + ki) * self.m.len();
        &self.secs[base..base + self.m.len()]
    }

    /// Seconds of one (n, k) GEMM at each of the table's m. Off the grid the time per weight
    /// (t / (n k)) is interpolated bilinearly in (log2 n, log2 k) between the four measured
    /// neighbours at the same m, then multiplied by n k: at a given m both the FLOPs and the
    /// weight bytes grow as n k, so this is the shape's utilisation borrowed from its
    /// neighbours. Above the largest n or k the time per weight of the edge is kept (time grows
    /// as n k); below the smallest the edge's time is kept (a narrower GEMM is not faster than
    /// a launch).
    pub fn curve_for(&self, n: f64, k: f64) -> Vec<f64> {
        let (ni, nw) = bracket_log(&self.n, n);
        let (ki, kw) = bracket_log(&self.k, k);
        let nk = n.max(self.n[0]) * k.max(self.k[0]);
        let per_weight = |a: usize, b: usize, mi: usize| self.curve(a, b)[mi] / (self.n[a] * self.k[b]);
        (0..self.m.len())
            .map(|mi| {
                let low = per_weight(ni, ki, mi) * (1.0 - kw) + per_weight(ni, ki + 1, mi) * kw;
                let high = per_weight(ni + 1, ki, mi) * (1.0 - kw) + per_weight(ni + 1, ki + 1, mi) * kw;
                (low * (1.0 - nw) + high * nw) * nk
            })
            .collect()
    }

    /// The measured seconds at a grid point (after the splitting bound), for tests.
    pub fn at(&self, m: f64, n: f64, k: f64) -> Option<f64> {
        let find = |axis: &[f64], x: f64| axis.iter().position(|&a| a == x);
        Some(self.curve(find(&self.n, n)?, find(&self.k, k)?)[find(&self.m, m)?])
    }
}

/// The splitting bound over one curve along m (see [`GemmTable`]).
fn splitting_bound(m: &[f64], curve: &[f64]) -> Vec<f64> {
    let mut out = curve.to_vec();
    for i in 1..out.len() {
        let bound = (0..i).map(|j| out[j] * (m[i] / m[j]).ceil()).fold(f64::INFINITY, f64::min);
        if out[i] > 2.0 * bound {
            out[i] = bound;
        }
    }
    out
}

/// The lower index `i` and weight `w` in [0, 1] of `x` between `axis[i]` and `axis[i + 1]`, in
/// log2 space, clamped to the axis (at least two points).
fn bracket_log(axis: &[f64], x: f64) -> (usize, f64) {
    let last = axis.len() - 1;
    let i = axis.partition_point(|&a| a <= x).clamp(1, last) - 1;
    let w = ((x.log2() - axis[i].log2()) / (axis[i + 1].log2() - axis[i].log2())).clamp(0.0, 1.0);
    (i, w)
}

impl AttentionTable {
    /// Query-head counts measured with `kv_heads` KV heads; `mha` selects the rows whose KV
    /// heads equal their query heads (then `kv_heads` is ignored).
    pub fn heads(&self, kv_heads: u32, mha: bool) -> Vec<u32> {
        let mut heads: Vec<u32> =
            self.curves.keys().filter(|k| if mha { k.0 == k.1 } else { k.1 == kv_heads }).map(|k| k.0).collect();
        heads.dedup();
        heads
    }

    /// The full grid (batch x axis) for one (heads, kv heads), holes filled: along the axis a
    /// missing point is interpolated between the measured ones, or beyond the last one scaled
    /// by (x / x_last)^`axis_power`; a batch with no row is the previous batch scaled by the
    /// batch ratio. `None` when nothing was measured for the pair.
    pub fn grid(&self, heads: u32, kv_heads: u32, axis_power: f64) -> Option<Grid2> {
        let mut values = vec![f64::NAN; self.batch.len() * self.axis.len()];
        let mut any = false;
        for (bi, &b) in self.batch.iter().enumerate() {
            let row = &mut values[bi * self.axis.len()..(bi + 1) * self.axis.len()];
            let Some(curve) = self.curves.get(&(heads, kv_heads, b as u32)) else { continue };
            let (xs, ys): (Vec<f64>, Vec<f64>) =
                self.axis.iter().zip(curve).filter(|(_, y)| y.is_finite()).map(|(x, y)| (*x, *y)).unzip();
            if xs.is_empty() {
                continue;
            }
            any = true;
            for (slot, &x) in row.iter_mut().zip(&self.axis) {
                *slot = interp(&xs, &ys, x, axis_power);
            }
        }
        if !any {
            return None;
        }
        let n = self.axis.len();
        let first = (0..self.batch.len()).find(|&bi| values[bi * n].is_finite()).expect("some row");
        for bi in (0..first).rev().chain(first + 1..self.batch.len()) {
            if values[bi * n].is_finite() {
                continue;
            }
            let from = if bi < first { bi + 1 } else { bi - 1 };
            let scale = self.batch[bi] / self.batch[from];
            for j in 0..n {
                values[bi * n + j] = values[from * n + j] * scale;
            }
        }
        Some(Grid2 { xs: self.batch.clone(), ys: self.axis.clone(), values, x_power: 1.0, y_power: axis_power })
    }

    /// The measured seconds at one row and axis point, for tests.
    pub fn at(&self, heads: u32, kv_heads: u32, batch: u32, x: f64) -> Option<f64> {
        let j = self.axis.iter().position(|&a| a == x)?;
        self.curves.get(&(heads, kv_heads, batch)).map(|c| c[j]).filter(|t| t.is_finite())
    }
}

/// Piecewise-linear y(x) through the points `(xs, ys)` (xs ascending): below the first point
/// the first y, beyond the last `y_last x (x / x_last)^power`.
pub fn interp(xs: &[f64], ys: &[f64], x: f64, power: f64) -> f64 {
    Bracket::of(xs, x, power).apply(ys)
}

/// Where `x` falls on an axis, found once and applied to any curve over that axis: the
/// arithmetic of [`interp`], split so that several curves share one search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bracket {
    /// At or below the first point.
    Below,
    /// Beyond the last point, scaled by this factor.
    Beyond(f64),
    /// Between points `i - 1` and `i`, at weight `w` toward `i`.
    Between(usize, f64),
}

impl Bracket {
    pub fn of(xs: &[f64], x: f64, power: f64) -> Bracket {
        let last = xs.len() - 1;
        if x <= xs[0] {
            return Bracket::Below;
        }
        if x >= xs[last] {
            return Bracket::Beyond((x / xs[last]).powf(power));
        }
        let i = xs.partition_point(|&p| p <= x);
        Bracket::Between(i, (x - xs[i - 1]) / (xs[i] - xs[i - 1]))
    }

    pub fn apply(self, ys: &[f64]) -> f64 {
        match self {
            Bracket::Below => ys[0],
            Bracket::Beyond(scale) => ys[ys.len() - 1] * scale,
            Bracket::Between(i, w) => ys[i - 1] + w * (ys[i] - ys[i - 1]),
        }
    }
}

/// A full grid over (x, y), bilinear inside, clamped below, scaled by a power beyond.
#[derive(Clone, Debug)]
pub struct Grid2 {
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// `values[xi * ys.len() + yi]`.
    pub values: Vec<f64>,
    pub x_power: f64,
    pub y_power: f64,
}

impl Grid2 {
    fn row(&self, xi: usize, y: Bracket) -> f64 {
        let n = self.ys.len();
        y.apply(&self.values[xi * n..(xi + 1) * n])
    }

    pub fn at(&self, x: f64, y: f64) -> f64 {
        self.at_x(self.x_bracket(x), y)
    }

    /// Where `x` falls on the grid's x axis, for [`Self::at_x`].
    pub fn x_bracket(&self, x: f64) -> Bracket {
        Bracket::of(&self.xs, x, self.x_power)
    }

    /// [`Self::at`] with the x search done beforehand: one search along y, shared by both rows.
    pub fn at_x(&self, x: Bracket, y: f64) -> f64 {
        let y = Bracket::of(&self.ys, y, self.y_power);
        match x {
            Bracket::Below => self.row(0, y),
            Bracket::Beyond(scale) => self.row(self.xs.len() - 1, y) * scale,
            Bracket::Between(i, w) => {
                let (a, b) = (self.row(i - 1, y), self.row(i, y));
                a + w * (b - a)
            }
        }
    }

    /// This grid and `other` (same axes) blended: `self + w (other - self)`.
    pub fn blend(&self, other: &Grid2, w: f64) -> Grid2 {
        let mut out = self.clone();
        for (v, o) in out.values.iter_mut().zip(&other.values) {
            *v += w * (o - *v);
        }
        out
    }

    /// Every value scaled.
    pub fn scaled(mut self, factor: f64) -> Grid2 {
        self.values.iter_mut().for_each(|v| *v *= factor);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses_with_the_expected_grids() {
        for (gpu, dtypes) in [("a100-80gb", 1), ("h100-80gb", 2), ("h200", 2), ("l40s", 2)] {
            let t = for_gpu(gpu).unwrap();
            assert_eq!(t.gemm.len(), dtypes, "{gpu}");
            for g in t.gemm.values() {
                assert_eq!((g.n.len(), g.k.len()), (19, 19), "{gpu}");
                assert!(g.secs.iter().all(|s| s.is_finite() && *s > 0.0), "{gpu}");
            }
            assert_eq!(t.context.len(), dtypes);
            assert_eq!(t.generation.len(), dtypes);
            assert_eq!(t.allreduce.by_gpus.keys().copied().collect::<Vec<_>>(), vec![2, 4, 8]);
        }
        assert!(for_gpu("a100-40gb").is_none());
    }

    #[test]
    fn interpolation_is_exact_at_points_linear_between_and_scaled_beyond() {
        let (xs, ys) = ([1.0, 2.0, 4.0], [10.0, 20.0, 30.0]);
        assert_eq!(interp(&xs, &ys, 2.0, 1.0), 20.0);
        assert_eq!(interp(&xs, &ys, 3.0, 1.0), 25.0);
        assert_eq!(interp(&xs, &ys, 0.5, 1.0), 10.0);
        assert_eq!(interp(&xs, &ys, 8.0, 2.0), 120.0);
    }

    #[test]
    fn the_splitting_bound_caps_only_points_above_it() {
        let m = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(splitting_bound(&m, &[1.0, 1.5, 9.0, 2.5]), vec![1.0, 1.5, 3.0, 2.5]);
        assert_eq!(splitting_bound(&m, &[1.0, 1.5, 5.0, 2.5]), vec![1.0, 1.5, 5.0, 2.5]);
    }
}
