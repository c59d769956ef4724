//! Hand-written SVG charts. Each chart is an image with a `<title>` and a `<desc>` that lists
//! every figure, so a screen reader gets the numbers; series differ by dash pattern, marker and
//! hatching as well as by colour (Okabe–Ito palette, safe for colour-blind readers). No script,
//! no external fonts or files.

use std::fmt::Write as _;

use crate::csv_render::column_key;
use crate::{Chart, ChartData, PartnerBar, Series, SeriesStyle};

const WIDTH: f64 = 760.0;
const FONT: &str = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif";
/// Okabe–Ito colours, chosen to stay distinct for the common forms of colour blindness.
const PALETTE: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9",
];
const DASHES: [&str; 6] = ["", "8 4", "2 3", "10 3 2 3", "14 4", "4 4"];
const TEXT_COLOUR: &str = "#1d1d1b";
const GRID_COLOUR: &str = "#d9d9d9";
/// A rough width of one character at 12px, for laying out labels without font metrics.
const CHAR_WIDTH: f64 = 6.6;

/// The chart as a standalone SVG document.
pub fn render_svg(chart: &Chart) -> String {
    let id = format!("chart-{}", column_key(&chart.name));
    match &chart.data {
        ChartData::Periods { periods, series } => period_chart(chart, &id, periods, series),
        ChartData::PartnerBars { value_label, bars } => {
            partner_chart(chart, &id, value_label, bars)
        }
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot hold most control characters at all.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The `<desc>` text: every figure, in the report's money style.
pub fn describe(chart: &Chart) -> String {
    match &chart.data {
        ChartData::Periods { periods, series } => {
            let mut parts = Vec::new();
            for s in series {
                let figures: Vec<String> = periods
                    .iter()
                    .zip(&s.values)
                    .map(|(p, v)| match v {
                        Some(money) => format!("{p} {money}"),
                        None => format!("{p} no figure"),
                    })
                    .collect();
                let style = match s.style {
                    SeriesStyle::Line => "line",
                    SeriesStyle::Bar => "bars",
                };
                parts.push(format!("{} ({style}): {}", s.name, figures.join(", ")));
            }
            parts.join(". ") + "."
        }
        ChartData::PartnerBars { value_label, bars } => {
            let figures: Vec<String> = bars
                .iter()
                .map(|b| format!("{} {}", b.partner, b.amount))
                .collect();
            format!("{value_label} by partner: {}.", figures.join(", "))
        }
    }
}

/// Round axis steps in pence: 1, 2, 2.5 or 5 times a power of ten, giving at most about
/// `target` intervals. Returns (axis minimum, axis maximum, step), all multiples of step.
fn nice_axis(min: i64, max: i64, target: i128) -> (i128, i128, i128) {
    let (min, max) = (min.min(0) as i128, max.max(0) as i128);
    let range = (max - min).max(100);
    let raw = (range + target - 1) / target;
    let mut magnitude: i128 = 1;
    let step = loop {
        let candidates = [magnitude, magnitude * 2, magnitude * 5 / 2, magnitude * 5];
        if let Some(step) = candidates
            .into_iter()
            .find(|s| *s >= raw && (magnitude >= 10 || *s != magnitude * 5 / 2))
        {
            break step;
        }
        magnitude *= 10;
    };
    let floor = min.div_euclid(step) * step;
    let ceil = -((-max).div_euclid(step) * step);
    (floor, ceil.max(floor + step), step)
}

/// An axis label such as `£250k`, `£1.25m`, `-£500`, with only as many decimals as the step
/// needs, so labels are exact.
fn axis_label(pence: i128, step: i128) -> String {
    let (unit, suffix) = if step >= 10_000_000 {
        (100_000_000, "m")
    } else if step >= 100_000 {
        (100_000, "k")
    } else {
        (100, "")
    };
    let decimals = (0..=2u32)
        .find(|d| (step * 10i128.pow(*d)) % unit == 0)
        .unwrap_or(2);
    // Pounds and pence always show both pence digits.
    let decimals = if suffix.is_empty() && decimals > 0 {
        2
    } else {
        decimals
    };
    if pence == 0 {
        return "£0".to_string();
    }
    let abs = pence.abs();
    let whole = abs / unit;
    let sign = if pence < 0 { "-" } else { "" };
    let whole = crate::grouped_integer(whole as i64);
    if decimals == 0 {
        format!("{sign}£{whole}{suffix}")
    } else {
        let frac = (abs % unit) * 10i128.pow(decimals) / unit;
        let mut frac = format!("{frac:0width$}", width = decimals as usize);
        if !suffix.is_empty() {
            // `£5k` beside `£2.5k` rather than `£5.0k`; pence stay as `£1.50`.
            while frac.ends_with('0') {
                frac.pop();
            }
        }
        if frac.is_empty() {
            format!("{sign}£{whole}{suffix}")
        } else {
            format!("{sign}£{whole}.{frac}{suffix}")
        }
    }
}

fn open_svg(out: &mut String, chart: &Chart, id: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="{FONT}" font-size="12" fill="{TEXT_COLOUR}">"#
    );
    let _ = write!(
        out,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape_xml(&chart.title),
        escape_xml(&describe(chart))
    );
    // Hatching so bar series differ by more than colour.
    out.push_str("<defs>");
    for (i, colour) in PALETTE.iter().enumerate() {
        let _ = write!(
            out,
            r#"<pattern id="{id}-hatch-{i}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="{colour}" fill-opacity="0.35"/><line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" stroke-width="3"/></pattern>"#
        );
    }
    out.push_str("</defs>");
    let _ = write!(
        out,
        r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/><text x="16" y="26" font-size="16" font-weight="bold">{}</text>"##,
        escape_xml(&chart.title)
    );
}

fn bar_fill(id: &str, series_index: usize, bar_index: usize) -> String {
    let colour = PALETTE[series_index % PALETTE.len()];
    if bar_index.is_multiple_of(2) {
        colour.to_string()
    } else {
        format!("url(#{id}-hatch-{})", series_index % PALETTE.len())
    }
}

fn marker(out: &mut String, series_index: usize, x: f64, y: f64, colour: &str) {
    match series_index % 4 {
        0 => {
            let _ = write!(
                out,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"/>"#
            );
        }
        1 => {
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{colour}"/>"#,
                x - 3.5,
                y - 3.5
            );
        }
        2 => {
            let _ = write!(
                out,
                r##"<path d="M{x:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z" fill="#ffffff" stroke="{colour}" stroke-width="1.5"/>"##,
                y - 4.5,
                x + 4.5,
                y + 3.5,
                x - 4.5,
                y + 3.5
            );
        }
        _ => {
            let _ = write!(
                out,
                r##"<path d="M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z" fill="#ffffff" stroke="{colour}" stroke-width="1.5"/>"##,
                y - 4.5,
                x + 4.5,
                y + 4.5,
                x - 4.5
            );
        }
    }
}

/// Legend entries laid out left to right, wrapping; returns the height used.
fn legend(out: &mut String, id: &str, series: &[Series], top: f64) -> f64 {
    let (mut x, mut y) = (16.0, top);
    let mut bar_index = 0;
    for (i, s) in series.iter().enumerate() {
        let width = 34.0 + s.name.chars().count() as f64 * CHAR_WIDTH + 18.0;
        if x + width > WIDTH - 16.0 && x > 16.0 {
            x = 16.0;
            y += 20.0;
        }
        let colour = PALETTE[i % PALETTE.len()];
        match s.style {
            SeriesStyle::Bar => {
                let _ = write!(
                    out,
                    r#"<rect x="{x:.1}" y="{:.1}" width="24" height="11" fill="{}" stroke="{colour}"/>"#,
                    y - 9.0,
                    bar_fill(id, i, bar_index)
                );
                bar_index += 1;
            }
            SeriesStyle::Line => {
                let _ = write!(
                    out,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{}"/>"#,
                    y - 4.0,
                    x + 24.0,
                    y - 4.0,
                    DASHES[i % DASHES.len()]
                );
                marker(out, i, x + 12.0, y - 4.0, colour);
            }
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{y:.1}">{}</text>"#,
            x + 30.0,
            escape_xml(&s.name)
        );
        x += width;
    }
    y - top + 20.0
}

fn period_chart(chart: &Chart, id: &str, periods: &[String], series: &[Series]) -> String {
    let mut body = String::new();
    let legend_height = legend(&mut body, id, series, 52.0);
    let height = 360.0 + legend_height;
    let (left, right) = (96.0, WIDTH - 20.0);
    let (top, bottom) = (52.0 + legend_height + 8.0, height - 40.0);
    let values = series.iter().flat_map(|s| s.values.iter().flatten());
    let min = values.clone().map(|m| m.pence()).min().unwrap_or(0);
    let max = values.map(|m| m.pence()).max().unwrap_or(0);
    let (axis_min, axis_max, step) = nice_axis(min, max, 6);
    let y_of = |pence: i128| -> f64 {
        bottom - (pence - axis_min) as f64 / (axis_max - axis_min) as f64 * (bottom - top)
    };

    let mut out = String::new();
    open_svg(&mut out, chart, id, height);
    out.push_str(&body);
    // Grid and £ labels at round steps.
    let mut tick = axis_min;
    while tick <= axis_max {
        let y = y_of(tick);
        let stroke = if tick == 0 { "#505a5f" } else { GRID_COLOUR };
        let _ = write!(
            out,
            r#"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="{stroke}" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 4.0,
            escape_xml(&axis_label(tick, step))
        );
        tick += step;
    }
    let count = periods.len().max(1) as f64;
    let band = (right - left) / count;
    let x_of = |i: usize| left + (i as f64 + 0.5) * band;
    for (i, period) in periods.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x_of(i),
            bottom + 18.0,
            escape_xml(period)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{top:.1}" x2="{left}" y2="{bottom:.1}" stroke="#505a5f"/>"##
    );

    // Bars first, so lines are drawn over them.
    let bar_series: Vec<usize> = (0..series.len())
        .filter(|i| series[*i].style == SeriesStyle::Bar)
        .collect();
    let group = band * 0.7;
    let bar_width = group / bar_series.len().max(1) as f64;
    for (bar_index, &si) in bar_series.iter().enumerate() {
        let colour = PALETTE[si % PALETTE.len()];
        let fill = bar_fill(id, si, bar_index);
        out.push_str("<g>");
        for (pi, value) in series[si].values.iter().enumerate() {
            let Some(value) = value else { continue };
            let x = x_of(pi) - group / 2.0 + bar_index as f64 * bar_width;
            let (y0, y1) = (y_of(0), y_of(value.pence() as i128));
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="{colour}" stroke-width="1"><title>{} {}: {}</title></rect>"#,
                y0.min(y1),
                (bar_width - 2.0).max(1.0),
                (y0 - y1).abs(),
                escape_xml(&series[si].name),
                escape_xml(&periods[pi]),
                value
            );
        }
        out.push_str("</g>");
    }
    for (si, s) in series.iter().enumerate() {
        if s.style != SeriesStyle::Line {
            continue;
        }
        let colour = PALETTE[si % PALETTE.len()];
        out.push_str("<g>");
        // A missing figure breaks the line rather than drawing it through zero.
        let mut segment: Vec<(f64, f64)> = Vec::new();
        let mut segments = Vec::new();
        for (pi, value) in s.values.iter().enumerate() {
            match value {
                Some(v) => segment.push((x_of(pi), y_of(v.pence() as i128))),
                None => segments.push(std::mem::take(&mut segment)),
            }
        }
        segments.push(segment);
        for points in segments.iter().filter(|p| p.len() > 1) {
            let list: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{}" stroke-linejoin="round"/>"#,
                list.join(" "),
                DASHES[si % DASHES.len()]
            );
        }
        for points in &segments {
            for (x, y) in points {
                marker(&mut out, si, *x, *y, colour);
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max_chars - 1).collect();
        short.push('…');
        short
    }
}

/// A partner's name on one line, or two split at a space, shortened with `…` only if even
/// two lines cannot hold it (the full name is always in the bar's tooltip and the `<desc>`).
fn name_lines(name: &str, max_chars: usize) -> Vec<String> {
    if name.chars().count() <= max_chars {
        return vec![name.to_string()];
    }
    let chars: Vec<char> = name.chars().collect();
    let split = (1..=max_chars.min(chars.len() - 1))
        .rev()
        .find(|&i| chars[i] == ' ')
        .unwrap_or(max_chars);
    let first: String = chars[..split].iter().collect();
    let rest: String = chars[split..].iter().collect();
    vec![
        first.trim_end().to_string(),
        truncate(rest.trim_start(), max_chars),
    ]
}

fn partner_chart(chart: &Chart, id: &str, value_label: &str, bars: &[PartnerBar]) -> String {
    const ROW: f64 = 34.0;
    const NAME_CHARS: usize = 34;
    let top = 64.0;
    let height = top + bars.len().max(1) as f64 * ROW + 56.0;
    let bottom = height - 44.0;
    let longest = bars
        .iter()
        .map(|b| b.partner.chars().count().min(NAME_CHARS))
        .max()
        .unwrap_or(0);
    let name_width = (longest as f64 * CHAR_WIDTH + 24.0).clamp(80.0, 260.0);
    // Room for the amount written beyond the end of each bar, on both sides.
    let (left, right) = (name_width + 96.0, WIDTH - 104.0);
    let min = bars.iter().map(|b| b.amount.pence()).min().unwrap_or(0);
    let max = bars.iter().map(|b| b.amount.pence()).max().unwrap_or(0);
    let (axis_min, axis_max, step) = nice_axis(min, max, 5);
    let x_of = |pence: i128| -> f64 {
        left + (pence - axis_min) as f64 / (axis_max - axis_min) as f64 * (right - left)
    };

    let mut out = String::new();
    open_svg(&mut out, chart, id, height);
    let _ = write!(
        out,
        r#"<text x="16" y="48">{} — positive to the right, negative to the left (hatched)</text>"#,
        escape_xml(value_label)
    );
    let mut tick = axis_min;
    while tick <= axis_max {
        let x = x_of(tick);
        let stroke = if tick == 0 { "#505a5f" } else { GRID_COLOUR };
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom:.1}" stroke="{stroke}" stroke-width="1"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 18.0,
            escape_xml(&axis_label(tick, step))
        );
        tick += step;
    }
    let zero = x_of(0);
    for (i, bar) in bars.iter().enumerate() {
        let y = top + i as f64 * ROW + 6.0;
        let x1 = x_of(bar.amount.pence() as i128);
        let negative = bar.amount.is_negative();
        let (colour, fill) = if negative {
            (PALETTE[0], format!("url(#{id}-hatch-0)"))
        } else {
            (PALETTE[4], PALETTE[4].to_string())
        };
        let lines = name_lines(&bar.partner, NAME_CHARS);
        let first_baseline = if lines.len() == 1 { y + 15.0 } else { y + 8.0 };
        out.push_str("<text>");
        for (n, line) in lines.iter().enumerate() {
            let _ = write!(
                out,
                r#"<tspan x="16" y="{:.1}">{}</tspan>"#,
                first_baseline + n as f64 * 14.0,
                escape_xml(line)
            );
        }
        out.push_str("</text>");
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="{colour}" stroke-width="1"><title>{}: {}</title></rect>"#,
            zero.min(x1),
            (x1 - zero).abs(),
            ROW - 12.0,
            escape_xml(&bar.partner),
            bar.amount
        );
        let (label_x, anchor) = if negative {
            (x1 - 6.0, "end")
        } else {
            (x1 + 6.0, "start")
        };
        let _ = write!(
            out,
            r#"<text x="{label_x:.1}" y="{:.1}" text-anchor="{anchor}" font-weight="bold">{}</text>"#,
            y + 15.0,
            escape_xml(&bar.amount.to_string())
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
// Pence written pounds_pence, as money reads.
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round_and_cover_the_values() {
        assert_eq!(nice_axis(0, 1_234_567_89, 6), (0, 1_250_000_00, 250_000_00));
        assert_eq!(
            nice_axis(-50_000_00, 120_000_00, 6),
            (-50_000_00, 150_000_00, 50_000_00)
        );
        assert_eq!(nice_axis(0, 0, 6), (0, 20, 20));
    }

    #[test]
    fn long_partner_names_wrap_onto_two_lines() {
        assert_eq!(name_lines("Short name", 34), ["Short name"]);
        assert_eq!(
            name_lines("Northshire and District Hospitals NHS Foundation Trust", 34),
            ["Northshire and District Hospitals", "NHS Foundation Trust"]
        );
        assert_eq!(name_lines("abcdefghij", 4), ["abcd", "efg…"]);
    }

    #[test]
    fn axis_labels_are_exact() {
        assert_eq!(axis_label(125_000_000, 25_000_000), "£1.25m");
        assert_eq!(axis_label(-25_000_000, 25_000_000), "-£0.25m");
        assert_eq!(axis_label(-500_000, 250_000), "-£5k");
        assert_eq!(axis_label(150_000, 50_000), "£1,500");
        assert_eq!(axis_label(200_000_000, 100_000_000), "£2m");
        assert_eq!(axis_label(5_000, 2_500), "£50");
        assert_eq!(axis_label(0, 100_000), "£0");
        assert_eq!(axis_label(150, 50), "£1.50");
    }
}
