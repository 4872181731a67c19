//! A small SVG plot: the cumulative distribution of each series' failover times.

use std::fmt::Write;
use std::time::Duration;

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];

pub fn write_cdf(path: &str, series: &[(&str, &[Duration])]) {
    let (w, h, left, bottom) = (720.0, 420.0, 60.0, 50.0);
    let max_ms = series.iter().flat_map(|(_, s)| s.iter()).map(|d| d.as_secs_f64() * 1000.0).fold(100.0, f64::max).min(2000.0);
    let x = |ms: f64| left + (ms / max_ms) * (w - left - 20.0);
    let y = |p: f64| h - bottom - p * (h - bottom - 20.0);
    let mut svg = format!("<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n");
    writeln!(svg, "<text x='{}' y='15' text-anchor='middle'>Leaderless time after a leader crash: cumulative share of trials</text>", w / 2.0).unwrap();
    for i in 0..=5 {
        let ms = max_ms * f64::from(i) / 5.0;
        writeln!(svg, "<line x1='{0}' y1='{1}' x2='{0}' y2='20' stroke='#ddd'/><text x='{0}' y='{2}' text-anchor='middle'>{ms:.0} ms</text>", x(ms), y(0.0), y(0.0) + 18.0).unwrap();
        let p = f64::from(i) / 5.0;
        writeln!(svg, "<line x1='{left}' y1='{0}' x2='{1}' y2='{0}' stroke='#ddd'/><text x='{2}' y='{3}' text-anchor='end'>{4:.0}%</text>", y(p), w - 20.0, left - 5.0, y(p) + 4.0, p * 100.0).unwrap();
    }
    for (k, (label, sample)) in series.iter().enumerate() {
        let mut sorted: Vec<f64> = sample.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        sorted.sort_by(f64::total_cmp);
        let points: Vec<String> = sorted.iter().enumerate().map(|(i, ms)| format!("{:.1},{:.1}", x(ms.min(max_ms)), y((i + 1) as f64 / sorted.len() as f64))).collect();
        let color = COLORS[k % COLORS.len()];
        writeln!(svg, "<polyline fill='none' stroke='{color}' stroke-width='2' points='{}'/>", points.join(" ")).unwrap();
        writeln!(svg, "<rect x='{}' y='{}' width='12' height='3' fill='{color}'/><text x='{}' y='{}'>{label}</text>", w - 200.0, 40.0 + 18.0 * k as f64, w - 184.0, 45.0 + 18.0 * k as f64).unwrap();
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).unwrap();
}
