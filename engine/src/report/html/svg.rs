//! The four chart kinds of report.html, drawn as inline SVG: horizontal bars (one per case, a
//! failed case drawn as a labelled marker such as `OOM`), percentile ladders, line charts
//! (CDFs and time series) and a heat map. Each returns `None` when it has nothing to draw, so
//! every chart on the page has data. Every drawn datum carries `class="data"` (what the tests
//! and the page's own check count) and a `<title>` tooltip with its exact value; every piece
//! of text, case names included, goes through [`escape`]. Long labels wrap onto up to three
//! lines and are cut with `…` beyond that (the tooltip keeps the whole name).
//!
//! Hand-written rather than drawn with `plotters`: the charts need labelled markers in place
//! of bars, wrapped user-supplied labels and byte-stable output, all of which sit at the
//! level of SVG elements either way, and the module stays one file with no dependency.

use super::scale::{format_tick, format_value, Scale, Unit};

/// HTML/XML text and attribute escaping: `& < > " '`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Twelve distinguishable colours (Tableau 10, then cyan and grey), for one line per case.
pub const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    "#17becf", "#555555",
];

/// A charted value, or why a case has none (`OOM`, `rejected`, `stalled`): drawn as a marker.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    Value(f64),
    Marker(String),
}

/// One bar: a case's mean over seeds and, with several seeds, their min..max.
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub datum: Datum,
    pub spread: Option<(f64, f64)>,
}

/// One row of a percentile ladder: `(name, value)` in increasing percentile order.
#[derive(Clone, Debug)]
pub struct Ladder {
    pub label: String,
    pub points: Vec<(String, f64)>,
    pub marker: Option<String>,
}

/// One line of a line chart.
#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A vertical target line on a line chart (an SLO threshold): drawn dashed at `x` with its
/// label, and, for a percentile target, a ring at `(x, fraction)` the CDF must pass above.
#[derive(Clone, Debug)]
pub struct Rule {
    pub x: f64,
    pub label: String,
    pub fraction: Option<f64>,
}

/// An axis of a line chart.
#[derive(Clone, Debug)]
pub struct Axis {
    pub title: String,
    pub unit: Unit,
    pub scale: Scale,
}

/// A grid of cells, `cells[row][col]`; `None` where no case sits.
#[derive(Clone, Debug)]
pub struct Heat {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub cells: Vec<Vec<Option<Datum>>>,
    pub unit: Unit,
}

const WIDTH: f64 = 900.0;
const LABEL_W: f64 = 250.0;
const PLOT_X: f64 = 260.0;
const PLOT_W: f64 = 400.0;
const LABEL_CHARS: usize = 32;
const LINE_H: f64 = 14.0;

/// Splits `text` into lines of at most `width` characters at spaces (a longer word is cut),
/// at most `max_lines` of them, the last ending in `…` when text was left out.
pub fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while !word.is_empty() {
            let used = current.chars().count();
            let room = if used == 0 { width } else { width.saturating_sub(used + 1) };
            if word.len() <= room {
                if used > 0 {
                    current.push(' ');
                }
                current.extend(word.drain(..));
            } else if used > 0 {
                lines.push(std::mem::take(&mut current));
            } else {
                current.extend(word.drain(..width.max(1)));
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        let last = &mut lines[max_lines - 1];
        let kept: String = last.chars().take(width.saturating_sub(1)).collect();
        *last = format!("{kept}…");
    }
    lines
}

/// A multi-line `<text>` at (x, y) for the first line's baseline, with a tooltip.
fn text_block(x: f64, y: f64, lines: &[String], anchor: &str, full: &str) -> String {
    let mut out = format!("<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\"><title>{}</title>", escape(full));
    for (i, line) in lines.iter().enumerate() {
        let dy = if i == 0 { 0.0 } else { LINE_H };
        out.push_str(&format!("<tspan x=\"{x:.1}\" dy=\"{dy:.0}\">{}</tspan>", escape(line)));
    }
    out.push_str("</text>");
    out
}

fn figure(id: &str, title: &str, note: &str, height: f64, body: &str) -> String {
    format!(
        "<figure>\n<figcaption><b>{}</b>{}</figcaption>\n<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {WIDTH:.0} {height:.0}\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"{}\">\n{body}</svg>\n</figure>\n",
        escape(title),
        if note.is_empty() { String::new() } else { format!(" <span class=\"note\">{}</span>", escape(note)) },
        escape(id),
        escape(title)
    )
}

/// Vertical grid lines and tick labels of a horizontal value axis from `top` to `bottom`.
fn x_axis(scale: &Scale, unit: Unit, x0: f64, width: f64, top: f64, bottom: f64) -> String {
    let mut out = String::new();
    for tick in scale.ticks() {
        let x = x0 + scale.fraction(tick) * width;
        out.push_str(&format!(
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            bottom + 14.0,
            escape(&format_tick(tick, unit))
        ));
    }
    out
}

fn scale_note(scale: &Scale) -> &'static str {
    if scale.log {
        "log scale"
    } else {
        "linear scale"
    }
}

/// Horizontal bars, one per case, on the scale the values need; a case without a value
/// gets a grey stub and its marker text in place of a bar.
pub fn bars(id: &str, title: &str, unit: Unit, bars: &[Bar]) -> Option<String> {
    let mut values: Vec<f64> = Vec::new();
    for bar in bars {
        if let Datum::Value(v) = bar.datum {
            values.push(v);
            values.extend(bar.spread.map(|(lo, hi)| [lo, hi]).into_iter().flatten());
        }
    }
    if !values.iter().any(|v| v.is_finite()) {
        return None;
    }
    let scale = Scale::choose(&values);
    let mut body = String::new();
    let mut y = 8.0;
    let mut rows = String::new();
    for bar in bars {
        let lines = wrap(&bar.label, LABEL_CHARS, 3);
        let row_h = (lines.len() as f64 * LINE_H + 10.0).max(24.0);
        rows.push_str(&text_block(LABEL_W, y + 16.0, &lines, "end", &bar.label));
        rows.push('\n');
        let mid = y + row_h / 2.0;
        match &bar.datum {
            Datum::Value(v) => {
                let w = (scale.fraction(*v) * PLOT_W).max(1.0);
                let text = format_value(*v, unit);
                rows.push_str(&format!(
                    "<rect class=\"data bar\" x=\"{PLOT_X:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"14\"><title>{}: {}</title></rect>",
                    mid - 7.0,
                    escape(&bar.label),
                    escape(&text)
                ));
                if let Some((lo, hi)) = bar.spread.filter(|(lo, hi)| hi > lo) {
                    let (x1, x2) = (PLOT_X + scale.fraction(lo) * PLOT_W, PLOT_X + scale.fraction(hi) * PLOT_W);
                    rows.push_str(&format!(
                        "<path class=\"spread\" d=\"M{x1:.1} {:.1}V{:.1}M{x1:.1} {mid:.1}H{x2:.1}M{x2:.1} {:.1}V{:.1}\"><title>seeds: {} to {}</title></path>",
                        mid - 4.0,
                        mid + 4.0,
                        mid - 4.0,
                        mid + 4.0,
                        escape(&format_value(lo, unit)),
                        escape(&format_value(hi, unit))
                    ));
                }
                let end = PLOT_X + w.max(bar.spread.map_or(0.0, |(_, hi)| scale.fraction(hi) * PLOT_W));
                rows.push_str(&format!(
                    "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                    end + 5.0,
                    mid + 4.0,
                    escape(&text)
                ));
            }
            Datum::Marker(why) => rows.push_str(&marker(PLOT_X, mid, why, &bar.label)),
        }
        y += row_h;
    }
    body.push_str(&x_axis(&scale, unit, PLOT_X, PLOT_W, 4.0, y + 2.0));
    body.push_str(&rows);
    let note = format!("{}; bars are means over seeds, whiskers their range", scale_note(&scale));
    Some(figure(id, title, &note, y + 24.0, &body))
}

/// A grey stub at `x` with `why` beside it in place of a bar.
fn marker(x: f64, mid: f64, why: &str, label: &str) -> String {
    format!(
        "<rect class=\"data marker\" x=\"{x:.1}\" y=\"{:.1}\" width=\"6\" height=\"14\"><title>{}: {}</title></rect><text class=\"marker\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
        mid - 7.0,
        escape(label),
        escape(why),
        x + 10.0,
        mid + 4.0,
        escape(why)
    )
}

/// Percentile ladders: per case a line from its lowest to its highest percentile with a dot
/// per percentile (darker for higher), the values written at the right.
pub fn ladders(id: &str, title: &str, unit: Unit, rows: &[Ladder]) -> Option<String> {
    let values: Vec<f64> = rows.iter().flat_map(|r| r.points.iter().map(|p| p.1)).collect();
    if values.is_empty() {
        return None;
    }
    let scale = Scale::choose(&values);
    let names: Vec<&str> = {
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in rows.iter().flat_map(|r| &r.points) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        names
    };
    let shade = |name: &str| {
        let i = names.iter().position(|n| *n == name).unwrap_or(0);
        LADDER_SHADES[(i * (LADDER_SHADES.len() - 1)) / (names.len().max(2) - 1)]
    };
    let mut legend = String::new();
    for (i, name) in names.iter().enumerate() {
        let x = PLOT_X + 70.0 * i as f64;
        legend.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"12\" r=\"5\" fill=\"{}\"/><text x=\"{:.1}\" y=\"16\">{}</text>",
            x + 5.0,
            shade(name),
            x + 14.0,
            escape(name)
        ));
    }
    let mut y = 28.0;
    let mut body_rows = String::new();
    for row in rows {
        let lines = wrap(&row.label, LABEL_CHARS, 3);
        let row_h = (lines.len() as f64 * LINE_H + 10.0).max(24.0);
        let mid = y + row_h / 2.0;
        body_rows.push_str(&text_block(LABEL_W, y + 16.0, &lines, "end", &row.label));
        if row.points.is_empty() {
            let why = row.marker.clone().unwrap_or_else(|| "no data".into());
            body_rows.push_str(&marker(PLOT_X, mid, &why, &row.label));
        } else {
            let xs: Vec<f64> = row.points.iter().map(|(_, v)| PLOT_X + scale.fraction(*v) * PLOT_W).collect();
            let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            let all: Vec<String> = row.points.iter().map(|(n, v)| format!("{n} {}", format_value(*v, unit))).collect();
            body_rows.push_str(&format!(
                "<path class=\"data ladder\" d=\"M{lo:.1} {mid:.1}H{:.1}\"><title>{}: {}</title></path>",
                hi.max(lo + 0.5),
                escape(&row.label),
                escape(&all.join(", "))
            ));
            for ((name, v), x) in row.points.iter().zip(&xs) {
                body_rows.push_str(&format!(
                        "<circle class=\"data\" cx=\"{x:.1}\" cy=\"{mid:.1}\" r=\"4.5\" fill=\"{}\"><title>{}: {name} {}</title></circle>",
                        shade(name),
                        escape(&row.label),
                        escape(&format_value(*v, unit))
                    ));
            }
            let first = row.points.first().map(|(n, v)| format!("{n} {}", format_value(*v, unit)));
            let last = row.points.last().map(|(n, v)| format!("{n} {}", format_value(*v, unit)));
            let summary = match (first, last) {
                (Some(a), Some(b)) if row.points.len() > 1 => format!("{a} … {b}"),
                (Some(a), _) => a,
                _ => String::new(),
            };
            body_rows.push_str(&format!(
                "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                PLOT_X + PLOT_W + 10.0,
                mid + 4.0,
                escape(&summary)
            ));
        }
        body_rows.push('\n');
        y += row_h;
    }
    let mut body = legend;
    body.push('\n');
    body.push_str(&x_axis(&scale, unit, PLOT_X, PLOT_W, 24.0, y + 2.0));
    body.push_str(&body_rows);
    let note = format!("{}; means over seeds of each percentile", scale_note(&scale));
    Some(figure(id, title, &note, y + 24.0, &body))
}

/// From light to dark: lower to higher percentiles.
const LADDER_SHADES: [&str; 5] = ["#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b"];

/// A line chart: one line per entry, coloured from [`PALETTE`], with a legend below.
pub fn lines(id: &str, title: &str, note: &str, x: &Axis, y: &Axis, lines: &[Line], rules: &[Rule]) -> Option<String> {
    let drawn: Vec<&Line> = lines.iter().filter(|l| !l.points.is_empty()).take(PALETTE.len()).collect();
    if drawn.is_empty() {
        return None;
    }
    let (x0, top, w, h) = (80.0, 12.0, 680.0, 240.0);
    let bottom = top + h;
    let mut body = x_axis(&x.scale, x.unit, x0, w, top, bottom);
    for tick in y.scale.ticks() {
        let py = bottom - y.scale.fraction(tick) * h;
        body.push_str(&format!(
            "<line class=\"grid\" x1=\"{x0:.1}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            x0 + w,
            x0 - 6.0,
            py + 4.0,
            escape(&format_tick(tick, y.unit))
        ));
    }
    body.push_str(&format!(
        "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text class=\"axis\" x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">{}</text>\n",
        x0 + w / 2.0,
        bottom + 32.0,
        escape(&x.title),
        top + h / 2.0,
        top + h / 2.0,
        escape(&y.title)
    ));
    for (i, line) in drawn.iter().enumerate() {
        let mut d = String::new();
        for (j, (px, py)) in line.points.iter().enumerate() {
            let sx = x0 + x.scale.fraction(*px) * w;
            let sy = bottom - y.scale.fraction(*py) * h;
            d.push_str(&format!("{}{sx:.1} {sy:.1}", if j == 0 { "M" } else { "L" }));
        }
        body.push_str(&format!(
            "<path class=\"data line\" stroke=\"{}\" d=\"{d}\"><title>{}</title></path>\n",
            PALETTE[i],
            escape(&line.name)
        ));
        // A path through one point draws nothing: mark the point itself.
        if let [(px, py)] = line.points[..] {
            body.push_str(&format!(
                "<circle class=\"data\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>\n",
                x0 + x.scale.fraction(px) * w,
                bottom - y.scale.fraction(py) * h,
                PALETTE[i],
                escape(&line.name)
            ));
        }
    }
    body.push_str(&rule_lines(rules, x, y, (x0, top, w, h)));
    let mut ly = bottom + 52.0;
    for (i, line) in drawn.iter().enumerate() {
        let col = (i % 2) as f64;
        if i > 0 && i % 2 == 0 {
            ly += 18.0;
        }
        let lx = x0 + col * 340.0;
        let label = wrap(&line.name, 48, 1).remove(0);
        body.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{ly:.1}\"><title>{}</title>{}</text>\n",
            ly - 6.0,
            PALETTE[i],
            lx + 20.0,
            escape(&line.name),
            escape(&label)
        ));
    }
    let mut note = format!("{note}{}x: {}", if note.is_empty() { "" } else { "; " }, scale_note(&x.scale));
    if lines.iter().filter(|l| !l.points.is_empty()).count() > drawn.len() {
        note.push_str(&format!("; the first {} cases shown", drawn.len()));
    }
    Some(figure(id, title, &note, ly + 12.0, &body))
}

/// The SLO rules of a line chart in the plot box `(x0, top, w, h)`, labels stacked from the
/// top so that two targets close together stay readable; rules off the x scale are left out.
fn rule_lines(rules: &[Rule], x: &Axis, y: &Axis, (x0, top, w, h): (f64, f64, f64, f64)) -> String {
    let mut out = String::new();
    let on_scale = rules.iter().filter(|r| r.x.is_finite() && r.x >= x.scale.min && r.x <= x.scale.max);
    for (i, rule) in on_scale.enumerate() {
        let sx = x0 + x.scale.fraction(rule.x) * w;
        let full = format!("{}: {}", rule.label, format_value(rule.x, x.unit));
        // Labels sit left of the line when it is in the right half, so they stay in the box.
        let (lx, anchor) = if sx > x0 + w / 2.0 { (sx - 4.0, "end") } else { (sx + 4.0, "start") };
        out.push_str(&format!(
            "<g class=\"slo\"><line x1=\"{sx:.1}\" y1=\"{top:.1}\" x2=\"{sx:.1}\" y2=\"{:.1}\" stroke=\"#b00\" stroke-width=\"1.2\" stroke-dasharray=\"5 3\"/><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#b00\"><title>{}</title>{}</text>",
            top + h,
            top + 24.0 + 14.0 * i as f64,
            escape(&full),
            escape(&full)
        ));
        if let Some(fraction) = rule.fraction {
            let sy = top + h - y.scale.fraction(fraction) * h;
            out.push_str(&format!(
                "<circle cx=\"{sx:.1}\" cy=\"{sy:.1}\" r=\"4\" fill=\"none\" stroke=\"#b00\" stroke-width=\"1.5\"/>"
            ));
        }
        out.push_str("</g>\n");
    }
    out
}

/// A heat map: rows x columns of cells coloured by value (on the scale the values need),
/// each cell written with its value or its marker.
pub fn heatmap(id: &str, title: &str, heat: &Heat) -> Option<String> {
    let values: Vec<f64> = heat
        .cells
        .iter()
        .flatten()
        .filter_map(|c| match c {
            Some(Datum::Value(v)) if *v > 0.0 => Some(*v),
            _ => None,
        })
        .collect();
    if heat.rows.is_empty() || heat.cols.is_empty() || heat.cells.iter().flatten().all(Option::is_none) {
        return None;
    }
    let scale = Scale::choose(&values);
    let (x0, cw, ch, top) =
        (LABEL_W + 10.0, ((WIDTH - LABEL_W - 20.0) / heat.cols.len() as f64).min(110.0), 24.0, 36.0);
    let mut body = String::new();
    for (j, col) in heat.cols.iter().enumerate() {
        let lines = wrap(col, (cw / 7.0) as usize, 2);
        body.push_str(&text_block(x0 + cw * (j as f64 + 0.5), 14.0, &lines, "middle", col));
    }
    body.push('\n');
    for (i, row) in heat.rows.iter().enumerate() {
        let y = top + ch * i as f64;
        body.push_str(&text_block(LABEL_W, y + 16.0, &wrap(row, LABEL_CHARS, 1), "end", row));
        for (j, cell) in heat.cells[i].iter().enumerate() {
            let x = x0 + cw * j as f64;
            let Some(cell) = cell else { continue };
            let (fill, text, ink) = match cell {
                Datum::Value(v) if *v > 0.0 => {
                    let f = scale.fraction(*v);
                    (blues(f), format_value(*v, heat.unit), if f > 0.55 { "#fff" } else { "#000" })
                }
                Datum::Value(v) => ("#f0f0f0".to_string(), format_value(*v, heat.unit), "#000"),
                Datum::Marker(why) => ("#f0f0f0".to_string(), why.clone(), "#b00"),
            };
            body.push_str(&format!(
                "<rect class=\"data cell\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{} on {}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{ink}\">{}</text>",
                cw - 2.0,
                ch - 2.0,
                escape(row),
                escape(&heat.cols[j]),
                escape(&text),
                x + cw / 2.0 - 1.0,
                y + 16.0,
                escape(&text)
            ));
        }
        body.push('\n');
    }
    let height = top + ch * heat.rows.len() as f64 + 10.0;
    Some(figure(id, title, &format!("colour on a {}", scale_note(&scale)), height, &body))
}

/// A light-to-dark blue for `f` in 0..1.
fn blues(f: f64) -> String {
    let (a, b) = ([222.0, 235.0, 247.0], [8.0, 48.0, 107.0]);
    let mix = |i: usize| (a[i] + (b[i] - a[i]) * f.clamp(0.0, 1.0)).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(0), mix(1), mix(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 16
    /// Case names are user input: they reach the page only escaped, in labels and tooltips.
    #[test]
    fn names_are_escaped_everywhere() {
        let name = "<script>alert(\"x\")</script> & 'quoted'";
        assert_eq!(escape(name), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;");
        let bar = Bar { label: name.into(), datum: Datum::Value(3.0), spread: None };
        let svg = bars("id\"x", name, Unit::Ms, &[bar]).unwrap();
        assert!(!svg.contains("<script") && !svg.contains("\"x\")") && !svg.contains("'quoted'"), "{svg}");
        let line = Line { name: name.into(), points: vec![(1.0, 0.5)] };
        let axis = Axis { title: name.into(), unit: Unit::Ms, scale: Scale::linear(0.0, 1.0) };
        let svg = lines("l", name, name, &axis, &axis, &[line], &[]).unwrap();
        assert!(!svg.contains("<script") && !svg.contains("'quoted'"), "{svg}");
        assert!(svg.contains("<circle class=\"data\""), "a one-point line is drawn as a dot");
    }

    // See: issue 16
    /// A case that ran out of memory is drawn as a labelled marker, never as a zero bar.
    #[test]
    fn failed_cases_are_markers_not_zero_bars() {
        let rows = [
            Bar { label: "fits".into(), datum: Datum::Value(14.3), spread: Some((14.0, 14.6)) },
            Bar { label: "batch 512 static".into(), datum: Datum::Marker("OOM".into()), spread: None },
        ];
        let svg = bars("b", "rows/s", Unit::Count("rows/s"), &rows).unwrap();
        assert_eq!(svg.matches("class=\"data bar\"").count(), 1);
        assert_eq!(svg.matches("class=\"data marker\"").count(), 1);
        assert!(svg.contains(">OOM</text>") && svg.contains("14.3 rows/s") && !svg.contains(">0.00<"), "{svg}");
        let ladder = Ladder { label: "x".into(), points: vec![], marker: Some("rejected".into()) };
        assert!(ladders("l", "TTFT", Unit::Ms, &[ladder]).is_none(), "no value at all: no chart");
        let rows = [
            Ladder { label: "ok".into(), points: vec![("p50".into(), 5.0), ("p99".into(), 9.0)], marker: None },
            Ladder { label: "oom".into(), points: vec![], marker: Some("OOM".into()) },
        ];
        let svg = ladders("l", "TTFT", Unit::Ms, &rows).unwrap();
        assert!(svg.contains(">OOM</text>") && svg.contains("p50 5 ms … p99 9 ms"), "{svg}");
    }

    #[test]
    fn labels_wrap_instead_of_clipping() {
        assert_eq!(wrap("high concurrency bs=64 c=16 mcb=16", 20, 3), vec!["high concurrency", "bs=64 c=16 mcb=16"]);
        assert_eq!(wrap("abcdefghij", 4, 3), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one two three four", 5, 2), vec!["one", "two…"]);
        assert_eq!(wrap("", 5, 2), vec![""]);
    }

    #[test]
    fn a_log_axis_keeps_small_bars_visible() {
        let rows: Vec<Bar> = [5.3, 258_569.3]
            .iter()
            .map(|&v| Bar { label: format!("{v}"), datum: Datum::Value(v), spread: None })
            .collect();
        let svg = bars("t", "TTFT p99", Unit::Ms, &rows).unwrap();
        assert!(svg.contains("log scale"));
        let widths: Vec<f64> = svg
            .split("class=\"data bar\"")
            .skip(1)
            .map(|s| s.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap())
            .collect();
        assert!(widths[0] > 40.0 && widths[1] > widths[0], "{widths:?}");
    }
}
