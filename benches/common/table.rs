//! How the process-per-measurement benches (`compare`, `http2`, `server`)
//! reduce rounds to one figure and write figures in their Markdown tables.

/// The median of `values` (the upper one of an even count); `None` when
/// there are none.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// A whole number with thousands separators: `1,234,567`.
pub(crate) fn fmt_count(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A small figure with three significant digits or so: `123`, `12.3`,
/// `1.23`, `0.123`.
pub(crate) fn fmt_small(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}
