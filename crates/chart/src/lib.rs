//! didact-chart: two kinds of picture — a line chart of numeric series with a title, axis
//! labels, a legend and optional alert marks, and a heat-map (module `heatmap`) — written as
//! SVG and PNG with `plotters`.
//! Text is drawn with the DejaVu Sans font compiled into the binary (the `dejavu` crate), so a
//! PNG looks the same on a machine without system fonts. Knows nothing of runs or metrics.

use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};
use std::sync::Once;

pub mod heatmap;
pub use heatmap::{Heatmap, write_heatmap};

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{path}: {msg}")]
    Write { path: PathBuf, msg: String },
    #[error("chart \"{0}\" has no finite points")]
    Empty(String),
}

pub type Result<T> = std::result::Result<T, ChartError>;

/// One line of a chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub label: String,
    /// (x, y) points; non-finite values are left out.
    pub points: Vec<(f64, f64)>,
    /// Points to mark (e.g. rounds where a collapse alert fired), drawn as red crosses.
    pub marks: Vec<(f64, f64)>,
    /// (x, low, high): an interval around the line (a confidence interval over seeds), drawn
    /// as a shaded band in the line's colour.
    pub band: Vec<(f64, f64, f64)>,
}

/// A line chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Names of the x positions 0, 1, … when x is categorical (e.g. `replace`, `accumulate`).
    pub x_categories: Vec<String>,
    /// Label of the marks in the legend.
    pub mark_label: String,
}

/// Pixel size of both outputs.
pub const SIZE: (u32, u32) = (900, 560);

/// Tableau 10: distinguishable in colour and in grey.
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font compiled in; failure would be a build problem.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

fn finite(points: &[(f64, f64)]) -> impl Iterator<Item = (f64, f64)> + '_ {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
}

/// Axis range with 5 % padding; a flat range gets a visible height.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = (hi.abs() * 0.05).max(1e-3);
        return (lo - pad, hi + pad);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

fn ranges(chart: &Chart) -> Result<((f64, f64), (f64, f64))> {
    let all: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| {
            let band = s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
            let band: Vec<(f64, f64)> = band.collect();
            finite(&s.points)
                .chain(finite(&s.marks))
                .chain(finite(&band).collect::<Vec<_>>())
        })
        .collect();
    if all.is_empty() {
        return Err(ChartError::Empty(chart.title.clone()));
    }
    let fold = |f: fn(&(f64, f64)) -> f64| {
        all.iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    let (x0, x1) = fold(|p| p.0);
    let (y0, y1) = fold(|p| p.1);
    let x = if x1 - x0 < 1e-12 {
        (x0 - 0.5, x1 + 0.5)
    } else {
        padded(x0, x1)
    };
    Ok((x, padded(y0, y1)))
}

/// A number without trailing zeros: 3 → "3", 0.25 → "0.25".
fn trim(x: f64) -> String {
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Where the x axis gets labels: each category, each distinct x of the data when there are
/// at most 20 (rounds, swept values), else 9 evenly spaced values.
fn x_keys(chart: &Chart, (x0, x1): (f64, f64)) -> Vec<f64> {
    if !chart.x_categories.is_empty() {
        return (0..chart.x_categories.len()).map(|i| i as f64).collect();
    }
    let mut xs: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| finite(&s.points))
        .map(|p| p.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() <= 20 {
        return xs;
    }
    (0..9).map(|i| x0 + (x1 - x0) * i as f64 / 8.0).collect()
}

fn draw<DB: DrawingBackend>(
    chart: &Chart,
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    register_font();
    let ((x0, x1), (y0, y1)) = ranges(chart).map_err(|e| e.to_string())?;
    root.fill(&WHITE).map_err(err)?;
    let keys = x_keys(chart, (x0, x1));
    let cats = &chart.x_categories;
    let x_fmt = |x: &f64| {
        if cats.is_empty() {
            return trim(*x);
        }
        let i = x.round();
        if i >= 0.0 && (i as usize) < cats.len() {
            cats[i as usize].clone()
        } else {
            String::new()
        }
    };
    let y_decimals = (1.0 - (y1 - y0).log10().floor()).clamp(0.0, 6.0) as usize;
    let mut c = ChartBuilder::on(&root)
        .caption(
            &chart.title,
            ("sans-serif", 24).into_font().style(FontStyle::Bold),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    c.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(8)
        .y_label_formatter(&|y| format!("{y:.y_decimals$}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(err)?;
    // x labels at the key positions (rounds, swept values, categories): plotters' automatic
    // ticks would fall between rounds.
    for &x in &keys {
        c.draw_series(std::iter::once(PathElement::new(
            vec![(x, y0), (x, y1)],
            BLACK.mix(0.12),
        )))
        .map_err(err)?;
        let (px, py) = c.backend_coord(&(x, y0));
        root.draw(&Text::new(
            x_fmt(&x),
            (px, py + 8),
            TextStyle::from(("sans-serif", 15).into_font()).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ),
            ),
        ))
        .map_err(err)?;
    }
    for (i, s) in chart.series.iter().enumerate() {
        let (r, g, b) = PALETTE[i % PALETTE.len()];
        let color = RGBColor(r, g, b);
        let pts: Vec<(f64, f64)> = finite(&s.points).collect();
        let mut band: Vec<(f64, f64, f64)> = s
            .band
            .iter()
            .copied()
            .filter(|(x, lo, hi)| x.is_finite() && lo.is_finite() && hi.is_finite())
            .collect();
        band.sort_by(|a, b| a.0.total_cmp(&b.0));
        if band.len() >= 2 {
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|&(x, lo, _)| (x, lo))
                .chain(band.iter().rev().map(|&(x, _, hi)| (x, hi)))
                .collect();
            c.draw_series(std::iter::once(Polygon::new(
                outline,
                color.mix(0.18).filled(),
            )))
            .map_err(err)?;
        }
        c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(3)))
            .map_err(err)?
            .label(&s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
            });
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
    }
    let marks: Vec<(f64, f64)> = chart.series.iter().flat_map(|s| finite(&s.marks)).collect();
    if !marks.is_empty() {
        let red = RGBColor(200, 0, 0);
        let label = if chart.mark_label.is_empty() {
            "alert"
        } else {
            &chart.mark_label
        };
        c.draw_series(marks.iter().map(|&p| Cross::new(p, 9, red.stroke_width(3))))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Cross::new((x + 11, y), 6, red.stroke_width(3)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Write `chart` to `<stem>.svg` and `<stem>.png` (each to a temporary name, then renamed).
pub fn write(chart: &Chart, stem: &Path) -> Result<()> {
    ranges(chart)?;
    render(stem, |area| draw(chart, area), |area| draw(chart, area))
}

/// Draw a picture twice — into an SVG string and a PNG bitmap — and write `<stem>.svg` and
/// `<stem>.png`, each to a temporary name, then renamed.
fn render(
    stem: &Path,
    svg_draw: impl FnOnce(
        DrawingArea<SVGBackend, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
    png_draw: impl FnOnce(
        DrawingArea<BitMapBackend, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |msg: String| ChartError::Write { path, msg }
    };
    let mut text = String::new();
    svg_draw(SVGBackend::with_string(&mut text, SIZE).into_drawing_area()).map_err(fail(&svg))?;
    let tmp = stem.with_extension("svg.partial");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &svg))
        .map_err(|e| fail(&svg)(e.to_string()))?;
    // The PNG encoder picks the format from the extension, so the temporary name ends in .png.
    let tmp = stem.with_extension("partial.png");
    png_draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area()).map_err(fail(&png))?;
    std::fs::rename(&tmp, &png).map_err(|e| fail(&png)(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "eval/loss_real".into(),
            x_label: "round".into(),
            y_label: "eval/loss_real".into(),
            series: vec![
                Series {
                    label: "replace".into(),
                    points: vec![(0.0, 1.0), (1.0, 1.5), (2.0, f64::NAN), (3.0, 2.5)],
                    marks: vec![(3.0, 2.5)],
                    band: vec![],
                },
                Series {
                    label: "accumulate".into(),
                    points: vec![(0.0, 1.0), (1.0, 1.05), (2.0, 1.1), (3.0, 1.1)],
                    marks: vec![],
                    band: vec![],
                },
            ],
            x_categories: vec![],
            mark_label: "collapse alert".into(),
        }
    }

    #[test]
    fn writes_svg_with_title_labels_and_legend_and_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("loss");
        write(&chart(), &stem).unwrap();
        if let Ok(keep) = std::env::var("DIDACT_KEEP_CHART") {
            std::fs::copy(stem.with_extension("png"), keep).unwrap();
        }
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        for text in [
            "eval/loss_real",
            "round",
            "replace",
            "accumulate",
            "collapse alert",
        ] {
            assert!(svg.contains(text), "svg lacks {text}");
        }
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(
            png.len() > 10_000,
            "a blank PNG is tiny: {} bytes",
            png.len()
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
    }

    /// A band is drawn as one filled polygon in the line's colour and widens the y range.
    #[test]
    fn a_confidence_band_is_shaded_and_in_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = chart();
        c.series[1].band = vec![(0.0, 0.5, 1.5), (1.0, 0.9, 1.2), (3.0, 1.0, 4.0)];
        assert_eq!(ranges(&c).unwrap().1.1, padded(0.5, 4.0).1);
        write(&c, &dir.path().join("band")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("band.svg")).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 1, "one band");
        let polygon = &svg[svg.find("<polygon").unwrap()..];
        let polygon = &polygon[..polygon.find('>').unwrap()];
        assert!(
            polygon.contains("opacity=\"0.18\""),
            "translucent: {polygon}"
        );
    }

    #[test]
    fn categorical_x_and_empty_charts() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = chart();
        c.x_categories = vec!["a".into(), "b".into(), "c".into(), "d".into()];
        write(&c, &dir.path().join("cat")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("cat.svg")).unwrap();
        assert!(
            svg.contains(">b<") || svg.contains(">\nb\n<") || svg.contains("b\n</text>"),
            "category names on the x axis"
        );
        let empty = Chart {
            title: "nothing".into(),
            series: vec![Series {
                label: "x".into(),
                points: vec![(0.0, f64::NAN)],
                marks: vec![],
                band: vec![],
            }],
            ..Chart::default()
        };
        assert!(matches!(
            write(&empty, &dir.path().join("e")),
            Err(ChartError::Empty(_))
        ));
    }
}
