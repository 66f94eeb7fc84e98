//! Horizontal bar charts as inline SVG: the HTML page's plots, drawn without any script
//! or external file so the page works offline.

use std::fmt::Write as _;

/// Chart geometry, in SVG user units (pixels at 100% zoom).
const WIDTH: u32 = 640;
const LABEL_WIDTH: u32 = 220;
const VALUE_WIDTH: u32 = 90;
const BAR_HEIGHT: u32 = 18;
const BAR_GAP: u32 = 6;

/// A bar chart of `bars` (label, value, value as shown), longest bar scaled to the width.
pub fn bar_chart(title: &str, bars: &[(String, f64, String)]) -> String {
    let height = bars.len() as u32 * (BAR_HEIGHT + BAR_GAP) + BAR_GAP;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let room = (WIDTH - LABEL_WIDTH - VALUE_WIDTH) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(title)
    );
    for (i, (label, value, shown)) in bars.iter().enumerate() {
        let y = BAR_GAP + i as u32 * (BAR_HEIGHT + BAR_GAP);
        let width = if max > 0.0 { value / max * room } else { 0.0 };
        let text_y = y + BAR_HEIGHT - 5;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{text_y}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL_WIDTH}\" y=\"{y}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT}\"/>\
             <text x=\"{:.1}\" y=\"{text_y}\">{}</text>",
            LABEL_WIDTH - 6,
            escape(label),
            LABEL_WIDTH as f64 + width + 6.0,
            escape(shown)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Text safe inside HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
