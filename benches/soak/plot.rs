//! The samples as CSV, and a small SVG plot of them: RSS of both
//! processes above, their file descriptors and open connections below,
//! over seconds since the churn started, with the churn's end marked.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::common::table::fmt_count;
use crate::process::Side;
use crate::run::Run;

const SIZE: (u32, u32) = (900, 640);

/// The y axes reach this much above the highest value, leaving the top
/// for the legend, clear of the lines.
const HEADROOM: f64 = 1.5;

/// `t_s,process,rss_kib,heap_kib,fds,tasks,conns`, a row per sample;
/// `t_s` counts from the churn's start (before it, negative).
pub(crate) fn write_csv(run: &Run, path: &Path) -> std::io::Result<()> {
    let zero = run.churn_start.unwrap_or(0.0);
    let mut csv = String::from("t_s,process,rss_kib,heap_kib,fds,tasks,conns\n");
    for s in &run.samples {
        let r = s.reading;
        let _ = writeln!(
            csv,
            "{:.2},{},{},{},{},{},{}",
            // Not `-0.00`.
            s.t - zero + 0.0,
            s.side.name(),
            r.rss_kib,
            r.heap_kib,
            r.fds,
            r.tasks,
            r.conns
        );
    }
    std::fs::write(path, csv)
}

/// The most points a line of the plot gets: about one per two pixels of
/// its width. A 30-minute run has 1,800 samples per line; drawing them all
/// made a 330 KB file that shows nothing more.
const MAX_POINTS: usize = 450;

/// The series of `side`: `(seconds since the churn started, value)`, at
/// most [`MAX_POINTS`] of them. Longer runs are drawn through the highest
/// value of each run of consecutive samples, so that no peak disappears.
fn series(
    run: &Run,
    side: Side,
    value: impl Fn(&crate::gauges::Reading) -> f64,
) -> Vec<(f64, f64)> {
    let zero = run.churn_start.unwrap_or(0.0);
    let points: Vec<(f64, f64)> = run
        .samples_of(side)
        .map(|s| (s.t - zero, value(&s.reading)))
        .collect();
    let per_point = points.len().div_ceil(MAX_POINTS).max(1);
    points
        .chunks(per_point)
        .filter_map(|chunk| chunk.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)))
        .collect()
}

fn colour(side: Side) -> RGBColor {
    match side {
        Side::Server => RGBColor(31, 119, 180),
        Side::Client => RGBColor(214, 39, 40),
    }
}

/// An axis label without decimals.
fn whole(value: &f64) -> String {
    format!("{value:.0}")
}

pub(crate) fn write_svg(run: &Run, path: &Path) -> Result<(), String> {
    draw(run, path).map_err(|e| e.to_string())
}

/// One line of a panel: bold for the main gauge, thin and lighter for the
/// one beside it.
struct Line {
    label: String,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    bold: bool,
}

impl Line {
    fn style(&self) -> ShapeStyle {
        if self.bold {
            self.colour.stroke_width(2)
        } else {
            self.colour.mix(0.6).stroke_width(1)
        }
    }
}

/// The axes, labels and extent of one panel.
struct Panel<'a> {
    caption: Option<String>,
    x_desc: &'a str,
    y_desc: &'a str,
    x: std::ops::Range<f64>,
    y_max: f64,
    churn_end: Option<f64>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    area: &Area<'_>,
    panel: Panel<'_>,
    lines: Vec<Line>,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = panel.y_max * HEADROOM;
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = &panel.caption {
        builder.caption(caption, ("sans-serif", 18));
    }
    let mut chart = builder
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(panel.x, 0.0..top)?;
    chart
        .configure_mesh()
        // The bold grid alone: the fine one doubled the file.
        .light_line_style(TRANSPARENT)
        .x_desc(panel.x_desc)
        .y_desc(panel.y_desc)
        .x_label_formatter(&whole)
        .y_label_formatter(&whole)
        .draw()?;
    for line in lines {
        let style = line.style();
        chart
            .draw_series(LineSeries::new(line.points, style))?
            .label(line.label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    if let Some(end) = panel.churn_end {
        chart.draw_series(LineSeries::new([(end, 0.0), (end, top)], BLACK.mix(0.4)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

fn draw(run: &Run, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let zero = run.churn_start.unwrap_or(0.0);
    let t_max = run.samples.iter().map(|s| s.t - zero).fold(1.0, f64::max);
    let t_min = run.samples.iter().map(|s| s.t - zero).fold(0.0, f64::min);
    let churn_end = run.churn_end.map(|t| t - zero);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let highest = |value: &dyn Fn(&crate::gauges::Reading) -> f64| {
        run.samples
            .iter()
            .map(|s| value(&s.reading))
            .fold(1.0, f64::max)
    };

    let rss = |r: &crate::gauges::Reading| r.rss_kib as f64 / 1024.0;
    let heap = |r: &crate::gauges::Reading| r.heap_kib as f64 / 1024.0;
    let mut lines = Vec::new();
    for side in [Side::Server, Side::Client] {
        lines.push(Line {
            label: match run.child(side).trimmed_rss_kib {
                Some(kib) => format!(
                    "{} RSS ({:.0} MiB after the churn, free pages given back)",
                    side.name(),
                    kib as f64 / 1024.0
                ),
                None => format!("{} RSS", side.name()),
            },
            points: series(run, side, rss),
            colour: colour(side),
            bold: true,
        });
        lines.push(Line {
            label: format!("{} heap in use (thin)", side.name()),
            points: series(run, side, heap),
            colour: colour(side),
            bold: false,
        });
    }
    let caption = format!(
        "wsstream soak: {} connections, {} s of churn",
        fmt_count(run.conns as f64),
        run.seconds
    );
    let panel = Panel {
        caption: Some(caption),
        x_desc: "s since the churn started",
        y_desc: "MiB",
        x: t_min..t_max,
        y_max: highest(&rss),
        churn_end,
    };
    draw_panel(&top, panel, lines)?;

    let fds = |r: &crate::gauges::Reading| r.fds as f64;
    let conns = |r: &crate::gauges::Reading| r.conns as f64;
    let mut lines = Vec::new();
    for side in [Side::Server, Side::Client] {
        lines.push(Line {
            label: format!("{} fds", side.name()),
            points: series(run, side, fds),
            colour: colour(side),
            bold: true,
        });
        lines.push(Line {
            label: format!("{} open connections (thin)", side.name()),
            points: series(run, side, conns),
            colour: colour(side),
            bold: false,
        });
    }
    let panel = Panel {
        caption: None,
        x_desc: "s since the churn started (grey: the churn ends)",
        y_desc: "fds, open connections",
        x: t_min..t_max,
        y_max: highest(&fds).max(highest(&conns)),
        churn_end,
    };
    draw_panel(&bottom, panel, lines)?;
    root.present()?;
    Ok(())
}
