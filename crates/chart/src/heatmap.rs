//! The heat-map: a grid of values (rows × columns, e.g. operand length × round) drawn as
//! coloured cells from white (the lowest value) to dark blue (the highest), each cell labelled
//! with its value; a missing (non-finite) value is a grey cell without a label.

use crate::{ChartError, Result, register_font, render};
use plotters::prelude::*;
use std::path::Path;

/// A grid of values with named rows and columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Column names, left to right.
    pub columns: Vec<String>,
    /// Row names, bottom to top.
    pub rows: Vec<String>,
    /// `values[row][column]`.
    pub values: Vec<Vec<f64>>,
    /// The value range the colours span; `None`: the data's own minimum and maximum.
    pub range: Option<(f64, f64)>,
}

fn value_range(h: &Heatmap) -> Option<(f64, f64)> {
    if let Some(r) = h.range {
        return Some(r);
    }
    let v: Vec<f64> = h
        .values
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// White at `lo` to dark blue at `hi`.
fn colour(v: f64, (lo, hi): (f64, f64)) -> RGBColor {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0))
}

fn draw<DB: DrawingBackend>(
    h: &Heatmap,
    range: (f64, f64),
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    register_font();
    root.fill(&WHITE).map_err(err)?;
    let (nx, ny) = (h.columns.len() as f64, h.rows.len() as f64);
    let mut c = ChartBuilder::on(&root)
        .caption(&h.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..nx, 0.0..ny)
        .map_err(err)?;
    c.configure_mesh()
        .disable_mesh()
        .x_desc(&h.x_label)
        .y_desc(&h.y_label)
        .x_labels(0)
        .y_labels(0)
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(err)?;
    // Names at the cell centres (plotters' own ticks fall on "nice" numbers, not cells).
    let anchor = |h, v| {
        TextStyle::from(("sans-serif", 15).into_font())
            .pos(plotters::style::text_anchor::Pos::new(h, v))
    };
    use plotters::style::text_anchor::{HPos, VPos};
    for (i, name) in h.columns.iter().enumerate() {
        let (px, py) = c.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(
            name.clone(),
            (px, py + 8),
            anchor(HPos::Center, VPos::Top),
        ))
        .map_err(err)?;
    }
    for (i, name) in h.rows.iter().enumerate() {
        let (px, py) = c.backend_coord(&(0.0, i as f64 + 0.5));
        root.draw(&Text::new(
            name.clone(),
            (px - 8, py),
            anchor(HPos::Right, VPos::Center),
        ))
        .map_err(err)?;
    }
    for (r, row) in h.values.iter().enumerate() {
        for (col, &v) in row.iter().enumerate() {
            let (x, y) = (col as f64, r as f64);
            let fill = if v.is_finite() {
                colour(v, range)
            } else {
                RGBColor(200, 200, 200)
            };
            c.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                fill.filled(),
            )))
            .map_err(err)?;
            if v.is_finite() {
                let dark = range.1 > range.0 && (v - range.0) / (range.1 - range.0) > 0.55;
                let ink = if dark { WHITE } else { BLACK };
                c.draw_series(std::iter::once(Text::new(
                    format!("{v:.2}"),
                    (x + 0.5, y + 0.5),
                    TextStyle::from(("sans-serif", 14).into_font())
                        .color(&ink)
                        .pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        )),
                )))
                .map_err(err)?;
            }
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Write `h` to `<stem>.svg` and `<stem>.png`; `ChartError::Empty` when no cell has a value.
pub fn write_heatmap(h: &Heatmap, stem: &Path) -> Result<()> {
    let range = value_range(h).ok_or_else(|| ChartError::Empty(h.title.clone()))?;
    if h.values.len() != h.rows.len() || h.values.iter().any(|r| r.len() != h.columns.len()) {
        return Err(ChartError::Write {
            path: stem.to_path_buf(),
            msg: format!(
                "heat-map \"{}\": values are not {} rows × {} columns",
                h.title,
                h.rows.len(),
                h.columns.len()
            ),
        });
    }
    render(
        stem,
        |area| draw(h, range, area),
        |area| draw(h, range, area),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Heatmap {
        Heatmap {
            title: "eval/accuracy by operand length".into(),
            x_label: "round".into(),
            y_label: "digits".into(),
            columns: vec!["0".into(), "1".into(), "2".into()],
            rows: vec!["1".into(), "2".into(), "3".into()],
            values: vec![
                vec![0.9, 0.95, 1.0],
                vec![0.5, 0.7, 0.8],
                vec![0.0, f64::NAN, 0.25],
            ],
            range: Some((0.0, 1.0)),
        }
    }

    #[test]
    fn cells_are_coloured_by_value_and_labelled() {
        let dir = tempfile::tempdir().unwrap();
        write_heatmap(&grid(), &dir.path().join("h")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("h.svg")).unwrap();
        for text in [
            "eval/accuracy by operand length",
            "round",
            "digits",
            "0.95",
            "0.25",
        ] {
            assert!(svg.contains(text), "svg lacks {text}");
        }
        // 1.0 is dark blue, 0.0 white, the missing cell grey
        assert!(svg.contains("#08306B"), "the top of the range");
        assert!(svg.contains("#C8C8C8"), "the missing cell");
        assert!(!svg.contains("NaN"));
        let png = std::fs::read(dir.path().join("h.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 2, "no temporary files left");
    }

    #[test]
    fn an_empty_or_ragged_grid_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = grid();
        h.values = vec![vec![f64::NAN; 3]; 3];
        h.range = None;
        assert!(matches!(
            write_heatmap(&h, &dir.path().join("e")),
            Err(ChartError::Empty(_))
        ));
        let mut h = grid();
        h.values[1].pop();
        let e = write_heatmap(&h, &dir.path().join("r")).unwrap_err();
        assert!(e.to_string().contains("3 rows × 3 columns"), "{e}");
    }

    #[test]
    fn colours_run_from_white_to_dark_blue() {
        assert_eq!(colour(0.0, (0.0, 1.0)), RGBColor(255, 255, 255));
        assert_eq!(colour(1.0, (0.0, 1.0)), RGBColor(8, 48, 107));
        assert_eq!(colour(5.0, (0.0, 1.0)), RGBColor(8, 48, 107));
    }
}
