//! The charts of a measurement, drawn by the server as inline SVG, so the page needs no chart
//! library.

use crate::web::markdown::escape_text;

/// A histogram of `scores` out of `max` as inline SVG: ten bins, each bar labelled with its
/// count. Drawn by the server, so the page needs no chart library.
pub fn histogram_svg(scores: &[u32], max: u32, title: &str) -> String {
    const BINS: usize = 10;
    let (width, height, bar_area) = (300.0, 120.0, 90.0);
    let mut counts = [0usize; BINS];
    for &s in scores {
        let bin = if max == 0 { 0 } else { ((s as usize * BINS) / (max as usize + 1)).min(BINS - 1) };
        counts[bin] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bar = width / BINS as f64;
    let mut svg = format!(
        r#"<svg class="histogram" viewBox="0 0 {width} {height}" role="img" aria-label="{}"><title>{}</title>"#,
        escape_text(title),
        escape_text(title)
    );
    for (i, &count) in counts.iter().enumerate() {
        let h = bar_area * count as f64 / tallest;
        let x = i as f64 * bar;
        let y = bar_area - h + 12.0;
        svg += &format!(r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"/>"#, x + 1.0, bar - 2.0);
        if count > 0 {
            svg += &format!(r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{count}</text>"#, x + bar / 2.0, y - 2.0);
        }
    }
    let step = max as f64 / BINS as f64;
    for i in [0, BINS / 2, BINS] {
        svg += &format!(
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">{:.0}</text>"#,
            (i as f64 * bar).clamp(8.0, width - 8.0),
            height - 4.0,
            i as f64 * step
        );
    }
    svg + "</svg>"
}

/// The best score after each trial of a tuning search, as an inline SVG line.
pub fn curve_svg(best: &[u32], max: u32) -> String {
    let (width, height) = (300.0, 100.0);
    let x =
        |i: usize| if best.len() < 2 { width / 2.0 } else { 8.0 + (width - 16.0) * i as f64 / (best.len() - 1) as f64 };
    let y = |s: u32| 8.0 + (height - 16.0) * (1.0 - f64::from(s) / f64::from(max.max(1)));
    let points: Vec<String> = best.iter().enumerate().map(|(i, &s)| format!("{:.1},{:.1}", x(i), y(s))).collect();
    format!(
        r#"<svg class="curve" viewBox="0 0 {width} {height}" role="img" aria-label="Best score after each trial"><title>Best score after each trial</title><polyline points="{}"/></svg>"#,
        points.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_counts_every_score() {
        let svg = histogram_svg(&[0, 65, 65, 120], 120, "Scores <of> 4 runs");
        assert_eq!(svg.matches("<rect").count(), 10);
        assert!(svg.contains(">2</text>") && svg.contains("Scores &#60;of&#62; 4 runs"), "{svg}");
    }
}
