//! A hand-written SVG of cost against fleet size: CPU-s per cycle (left) and steady RSS
//! (right), ours against upstream's reference numbers, nodes on a log scale.

use std::fmt::Write as _;

use crate::report::{Row, UPSTREAM};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 380.0;
const PANEL: f64 = 360.0;
const PLOT_H: f64 = 260.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 50.0;
const OURS: &str = "#1f77b4";
const THEIRS: &str = "#d62728";

/// One panel's series: (nodes, value) points.
struct Panel<'a> {
    title: &'a str,
    unit: &'a str,
    ours: Vec<(f64, f64)>,
    upstream: Vec<(f64, f64)>,
}

pub(crate) fn plot(rows: &[Row]) -> String {
    let panels = [
        Panel {
            title: "CPU seconds per scrape cycle",
            unit: "CPU-s",
            ours: rows.iter().map(|r| (r.nodes as f64, r.cpu_per_cycle)).collect(),
            upstream: UPSTREAM.iter().map(|u| (u.0 as f64, u.1)).collect(),
        },
        Panel {
            title: "Steady RSS",
            unit: "MiB",
            ours: rows
                .iter()
                .map(|r| (r.nodes as f64, r.steady_rss / (1024.0 * 1024.0)))
                .collect(),
            upstream: UPSTREAM.iter().map(|u| (u.0 as f64, u.2)).collect(),
        },
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="15">metrics-server-rs fleet bench: cost against fleet size</text>"#,
        WIDTH / 2.0
    );
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut out, panel, LEFT + i as f64 * (PANEL + 90.0));
    }
    // Legend.
    let y = HEIGHT - 14.0;
    let _ = writeln!(
        out,
        r#"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="{OURS}" stroke-width="2"/><text x="{}" y="{}">metrics-server-rs (this run)</text>"#,
        LEFT + 24.0,
        LEFT + 30.0,
        y + 4.0
    );
    let _ = writeln!(
        out,
        r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{THEIRS}" stroke-width="2" stroke-dasharray="5,4"/><text x="{}" y="{}">upstream v0.6.4 (issue 7)</text>"#,
        LEFT + 240.0,
        LEFT + 264.0,
        LEFT + 270.0,
        y + 4.0
    );
    out.push_str("</svg>\n");
    out
}

fn draw_panel(out: &mut String, panel: &Panel<'_>, x0: f64) {
    let all = panel.ours.iter().chain(&panel.upstream);
    let (min_n, max_n) = all
        .clone()
        .fold((f64::MAX, f64::MIN), |(lo, hi), (n, _)| (lo.min(*n), hi.max(*n)));
    let (lo, hi) = ((min_n * 0.7).log10(), (max_n * 1.4).log10());
    let top = nice_ceiling(
        all.map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-6),
    );
    let x = |n: f64| x0 + (n.log10() - lo) / (hi - lo) * PANEL;
    let y = |v: f64| TOP + PLOT_H - v / top * PLOT_H;

    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{}</text>"#,
        x0 + PANEL / 2.0,
        TOP - 10.0,
        panel.title
    );
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{TOP}" width="{PANEL}" height="{PLOT_H}" fill="none" stroke="#888"/>"##
    );
    // Y grid: five steps from zero.
    for step in 0..=5 {
        let v = top * step as f64 / 5.0;
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 + PANEL,
            x0 - 6.0,
            y(v) + 4.0,
            short(v),
            y = y(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        x0 - 52.0,
        TOP + PLOT_H / 2.0,
        panel.unit
    );
    // X ticks at the fleet sizes measured or referenced.
    let mut ticks: Vec<f64> = panel.ours.iter().chain(&panel.upstream).map(|(n, _)| *n).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for n in ticks {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(n),
            TOP + PLOT_H + 16.0,
            n
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">nodes (log scale)</text>"#,
        x0 + PANEL / 2.0,
        TOP + PLOT_H + 34.0
    );
    for (series, colour, dash) in [(&panel.upstream, THEIRS, "5,4"), (&panel.ours, OURS, "")] {
        let points: Vec<String> = series
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(n, v)| format!("{:.1},{:.1}", x(*n), y(*v)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
            points.join(" ")
        );
        for (n, v) in series.iter().filter(|(_, v)| v.is_finite()) {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{n} nodes: {}</title></circle>"#,
                x(*n),
                y(*v),
                short(*v)
            );
        }
    }
}

/// The smallest of 1, 2, 2.5 and 5 × 10^k at or above `v`, so the five grid steps are round.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|candidate| *candidate >= v)
        .unwrap_or(10.0 * magnitude)
}

/// A compact number for axis labels and tooltips.
fn short(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
