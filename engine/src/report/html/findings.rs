//! The phase findings (`Findings::markdown`, written for report.md) as HTML: paragraphs,
//! pipe tables with their column alignment, `- ` lists and `#` headings, with `` `code` ``
//! and `**bold**` spans. The subset the phase analyses write, converted so that no markdown
//! syntax reaches the page; every piece of text is escaped before any tag is added.

use super::svg::escape;

/// Converts the findings' markdown to HTML.
pub fn to_html(markdown: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        let kind = block_kind(line);
        while i < lines.len() && !lines[i].trim().is_empty() && block_kind(lines[i]) == kind {
            i += 1;
            if kind == Block::Heading {
                break;
            }
        }
        let block = &lines[start..i];
        out.push_str(&match kind {
            Block::Table => table(block),
            Block::List => {
                let items: String =
                    block.iter().map(|l| format!("<li>{}</li>\n", inline(l.trim_start()[2..].trim()))).collect();
                format!("<ul>\n{items}</ul>\n")
            }
            Block::Heading => {
                let text = line.trim_start_matches('#').trim();
                format!("<h4>{}</h4>\n", inline(text))
            }
            Block::Paragraph => format!("<p>{}</p>\n", inline(&block.join(" "))),
        });
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Table,
    List,
    Heading,
    Paragraph,
}

fn block_kind(line: &str) -> Block {
    let t = line.trim_start();
    if t.starts_with('|') {
        Block::Table
    } else if t.starts_with("- ") || t.starts_with("* ") {
        Block::List
    } else if t.starts_with('#') {
        Block::Heading
    } else {
        Block::Paragraph
    }
}

fn cells(line: &str) -> Vec<&str> {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = t.strip_suffix('|').unwrap_or(t);
    t.split('|').map(str::trim).collect()
}

fn is_rule(line: &str) -> bool {
    let c = cells(line);
    !c.is_empty() && c.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
}

/// A pipe table: header, `|---|---:|` alignment row, body rows.
fn table(block: &[&str]) -> String {
    let has_rule = block.len() > 1 && is_rule(block[1]);
    let aligns: Vec<bool> =
        if has_rule { cells(block[1]).iter().map(|c| c.ends_with(':')).collect() } else { Vec::new() };
    let right = |j: usize| aligns.get(j).copied().unwrap_or(false);
    let mut out = String::from("<table class=\"findings\">\n");
    for (i, line) in block.iter().enumerate() {
        if has_rule && i == 1 {
            continue;
        }
        let tag = if has_rule && i == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for (j, cell) in cells(line).iter().enumerate() {
            let class = if right(j) { " class=\"num\"" } else { "" };
            out.push_str(&format!("<{tag}{class}>{}</{tag}>", inline(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// Escapes `text`, then turns `` `code` `` into `<code>` and `**bold**` into `<b>`; an
/// unmatched backtick or `**` is dropped rather than shown.
pub fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            for (j, piece) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    out.push_str(&format!("<b>{}</b>", escape(piece)));
                } else {
                    out.push_str(&escape(piece));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: issue 16
    /// The findings reach the page as HTML: no backticks, pipes or rules of markdown left.
    #[test]
    fn findings_markdown_becomes_html() {
        let md = "Best: `high concurrency bs=256 c=16` at **36080** tok/s.\nSecond line.\n\n| case | out tok/s |\n|---|---:|\n| a <b> | 12 |\n| `x` | 3 |\n\n- one\n- two\n";
        let html = to_html(md);
        assert_eq!(
            html,
            "<p>Best: <code>high concurrency bs=256 c=16</code> at <b>36080</b> tok/s. Second line.</p>\n\
             <table class=\"findings\">\n<tr><th>case</th><th class=\"num\">out tok/s</th></tr>\n\
             <tr><td>a &lt;b&gt;</td><td class=\"num\">12</td></tr>\n\
             <tr><td><code>x</code></td><td class=\"num\">3</td></tr>\n</table>\n\
             <ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        );
        assert!(!html.contains('`') && !html.contains("---") && !html.contains("**"));
        assert_eq!(inline("`<script>` \"q\""), "<code>&lt;script&gt;</code> &quot;q&quot;");
        assert_eq!(inline("a ` b"), "a <code> b</code>");
    }
}
