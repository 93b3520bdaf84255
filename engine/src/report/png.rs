//! PNG images of report.html's charts, for slides (`--png`): each `<svg class="chart">` of the
//! page, made a standalone SVG (its CSS inlined, a white background, its caption as a title)
//! and rasterised by resvg at twice its size.
//!
//! Text is shaped from DejaVu Sans compiled into the binary (the `dejavu` crate) and no
//! system font is ever looked up, so the images need nothing installed and come out the same
//! on every machine. A pure function of the page: the caller writes the files.

use std::sync::{Arc, OnceLock};

/// Pixels per SVG unit: the charts are 900 units wide, 1800 pixels makes a sharp slide.
const ZOOM: f32 = 2.0;

/// The page's chart rules that a standalone SVG needs (report.html's stylesheet, less what
/// concerns HTML), with the font the images embed.
const CHART_STYLE: &str = "svg{font-family:'DejaVu Sans';font-size:12px;fill:#222}.grid{stroke:#e3e3e3}\
.tick{fill:#555;font-size:11px}.bar{fill:#4e79a7}.spread{stroke:#222;fill:none}.marker{fill:#b00;font-weight:bold}\
rect.marker{fill:#bbb}.line{fill:none;stroke-width:1.8}.ladder{stroke:#6baed6;stroke-width:3}.value{fill:#333}\
.axis{fill:#333}.caption{font-size:14px;font-weight:bold;fill:#222}";

/// Height added above each chart for its caption, in SVG units.
const CAPTION_H: f64 = 24.0;

/// One chart as an image: the SVG element's `id` (`cdf-ttft`, `bars-0`, ...) and PNG bytes.
#[derive(Clone, Debug)]
pub struct ChartPng {
    pub id: String,
    pub png: Vec<u8>,
}

/// Every chart of a report.html page as a PNG, in page order.
pub fn charts(html: &str) -> Result<Vec<ChartPng>, String> {
    figures(html).into_iter().map(|(id, svg)| rasterise(&svg).map(|png| ChartPng { id, png })).collect()
}

/// Each `<figure>`'s chart as a standalone SVG document, with its id.
fn figures(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for figure in html.split("<figure>").skip(1) {
        let Some(figure) = figure.split("</figure>").next() else { continue };
        let Some(start) = figure.find("<svg class=\"chart\"") else { continue };
        let Some(end) = figure.find("</svg>") else { continue };
        let caption =
            figure.split("<figcaption><b>").nth(1).and_then(|c| c.split("</b>").next()).unwrap_or("").to_string();
        let svg = &figure[start..end];
        let attr = |name: &str| svg.split(&format!(" {name}=\"")).nth(1).and_then(|s| s.split('"').next());
        let (Some(id), Some(width), Some(height)) = (attr("id"), attr("width"), attr("height")) else { continue };
        let (Ok(width), Ok(height)) = (width.parse::<f64>(), height.parse::<f64>()) else { continue };
        let body = &svg[svg.find('>').map_or(svg.len(), |i| i + 1)..];
        out.push((id.to_string(), standalone(&caption, width, height, body)));
    }
    out
}

/// A chart's inner SVG as a document of its own: the caption (already escaped in the page)
/// above it, on white.
fn standalone(caption: &str, width: f64, height: f64, body: &str) -> String {
    let total = height + CAPTION_H;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{total:.0}\" viewBox=\"0 0 {width:.0} {total:.0}\">\
<style>{CHART_STYLE}</style><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
<text class=\"caption\" x=\"8\" y=\"17\">{caption}</text><g transform=\"translate(0 {CAPTION_H})\">{body}</g></svg>"
    )
}

fn options() -> &'static resvg::usvg::Options<'static> {
    static OPTIONS: OnceLock<resvg::usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut fonts = resvg::usvg::fontdb::Database::new();
        fonts.load_font_data(dejavu::sans::regular().to_vec());
        fonts.load_font_data(dejavu::sans::bold().to_vec());
        // Whatever family the SVG asks for (sans-serif, system-ui), DejaVu Sans answers.
        fonts.set_sans_serif_family("DejaVu Sans");
        fonts.set_serif_family("DejaVu Sans");
        resvg::usvg::Options {
            font_family: "DejaVu Sans".into(),
            fontdb: Arc::new(fonts),
            ..resvg::usvg::Options::default()
        }
    })
}

fn rasterise(svg: &str) -> Result<Vec<u8>, String> {
    let tree = resvg::usvg::Tree::from_str(svg, options()).map_err(|e| format!("chart SVG does not parse: {e}"))?;
    let size = tree.size().to_int_size().scale_by(ZOOM).ok_or("chart has no size")?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("chart too large")?;
    resvg::render(&tree, resvg::tiny_skia::Transform::from_scale(ZOOM, ZOOM), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| format!("encoding PNG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bar chart with text: the PNG decodes at twice the SVG's size, and the text was drawn
    /// (some pixels are dark, not only the bar's blue and the white page): the embedded font
    /// works without any font on the system.
    #[test]
    fn a_chart_becomes_a_png_with_its_text() {
        let page = "<figure>\n<figcaption><b>Request throughput</b></figcaption>\n<svg class=\"chart\" id=\"bars-0\" viewBox=\"0 0 200 60\" width=\"200\" height=\"60\" role=\"img\">\n<rect class=\"data bar\" x=\"10\" y=\"10\" width=\"100\" height=\"20\"/><text x=\"10\" y=\"50\">case &amp; 12 req/s</text></svg>\n</figure>\n";
        let pngs = charts(page).unwrap();
        assert_eq!(pngs.len(), 1);
        assert_eq!(pngs[0].id, "bars-0");
        let png = &pngs[0].png;
        assert_eq!(&png[1..4], b"PNG");
        // IHDR: width and height, big-endian, at bytes 16..24.
        let (w, h) =
            (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
        assert_eq!((w, h), (400, (60.0 + CAPTION_H) as u32 * 2));
        let tree = resvg::usvg::Tree::from_str(&figures(page)[0].1, options()).unwrap();
        let texts = count_text(tree.root());
        assert_eq!(texts, 2, "caption and label become text nodes with glyphs");
        // The same page gives the same bytes.
        assert_eq!(charts(page).unwrap()[0].png, *png);
    }

    /// Text nodes that resvg laid out with at least one glyph span (none without a font).
    fn count_text(group: &resvg::usvg::Group) -> usize {
        group
            .children()
            .iter()
            .map(|node| match node {
                resvg::usvg::Node::Group(g) => count_text(g),
                resvg::usvg::Node::Text(t) => {
                    t.layouted().iter().any(|span| !span.positioned_glyphs.is_empty()) as usize
                }
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn a_page_without_charts_gives_no_images() {
        assert!(charts("<html><body><p>no charts</p></body></html>").unwrap().is_empty());
    }
}
