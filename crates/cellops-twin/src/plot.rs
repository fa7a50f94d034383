//! SVG plot of a fit and its forecast band, rendered into a `String` (no IO, no fonts:
//! plotters' SVG backend writes `<text>` elements that the viewer lays out).

use plotters::prelude::*;

use crate::error::TwinError;
use crate::observations::Observations;
use crate::predict::Prediction;

/// Plot width, px.
pub const WIDTH_PX: u32 = 900;
/// Plot height, px.
pub const HEIGHT_PX: u32 = 560;

fn plot_err(e: impl std::fmt::Display) -> TwinError {
    TwinError::Plot {
        reason: e.to_string(),
    }
}

/// Renders observed viable density (points), the best fit, the Monte Carlo median and the
/// 10-90 % band against days, on a log axis, with `title` on top.
pub fn fit_svg(
    title: &str,
    observations: &Observations,
    prediction: &Prediction,
) -> Result<String, TwinError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let f = &prediction.forecast;
        let day_max = f.last().map_or(14.0, |p| p.time_h / 24.0);
        let values = f
            .iter()
            .flat_map(|p| [p.p10_cells_per_ml, p.p90_cells_per_ml, p.fit_cells_per_ml])
            .chain(observations.rows().iter().map(|r| r.viable_cells_per_ml))
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        if lo > hi {
            return Err(plot_err("nothing to plot"));
        }
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..day_max, (lo / 1.5..hi * 1.5).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("culture day")
            .y_desc("viable cells per mL (log)")
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .max_light_lines(1)
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        let series = |pick: fn(&crate::predict::ForecastPoint) -> f64| {
            f.iter()
                .map(move |p| (p.time_h / 24.0, pick(p)))
                .collect::<Vec<_>>()
        };
        let band = RGBColor(120, 150, 220);
        chart
            .draw_series(LineSeries::new(
                series(|p| p.p10_cells_per_ml),
                band.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label("10-90 % Monte Carlo band")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], band));
        chart
            .draw_series(LineSeries::new(
                series(|p| p.p90_cells_per_ml),
                band.stroke_width(1),
            ))
            .map_err(plot_err)?;
        let median = RGBColor(30, 60, 160);
        chart
            .draw_series(LineSeries::new(
                series(|p| p.p50_cells_per_ml),
                median.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("Monte Carlo median")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], median.stroke_width(2))
            });
        let best = RGBColor(200, 80, 20);
        chart
            .draw_series(LineSeries::new(
                series(|p| p.fit_cells_per_ml),
                best.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("best fit")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], best.stroke_width(2))
            });
        chart
            .draw_series(
                observations.rows().iter().map(|r| {
                    Circle::new((r.time_h / 24.0, r.viable_cells_per_ml), 5, BLACK.filled())
                }),
            )
            .map_err(plot_err)?
            .label("observed")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}
