//! One label as an SVG document (1 user unit = 1 mm).

use std::fmt::Write as _;

use crate::content::LabelContent;
use crate::error::LabelError;
use crate::layout::{self, Font, LABEL_HEIGHT_MM, LABEL_WIDTH_MM, Shape};

/// The SVG document of `label`, sized in millimetres.
pub fn render_svg(label: &LabelContent) -> Result<String, LabelError> {
    let shapes = layout::layout(label)?;
    let mut out = String::with_capacity(64 * shapes.len() + 512);
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">"#,
        w = LABEL_WIDTH_MM,
        h = LABEL_HEIGHT_MM
    );
    let _ = writeln!(
        out,
        r#"<title>ISBT 128 label {}</title><rect width="100%" height="100%" fill="white"/>"#,
        label.din()
    );
    out.push_str("<g shape-rendering=\"crispEdges\">\n");
    for shape in &shapes {
        write_shape(&mut out, shape);
    }
    out.push_str("</g>\n</svg>\n");
    Ok(out)
}

fn write_shape(out: &mut String, shape: &Shape) {
    let _ = match shape {
        Shape::Fill {
            x_mm,
            y_mm,
            width_mm,
            height_mm,
        } => writeln!(
            out,
            r#"<rect x="{x_mm:.3}" y="{y_mm:.3}" width="{width_mm:.3}" height="{height_mm:.3}" fill="black"/>"#
        ),
        Shape::Outline {
            x_mm,
            y_mm,
            width_mm,
            height_mm,
            line_mm,
        } => writeln!(
            out,
            r#"<rect x="{x_mm:.3}" y="{y_mm:.3}" width="{width_mm:.3}" height="{height_mm:.3}" fill="none" stroke="black" stroke-width="{line_mm:.3}"/>"#
        ),
        Shape::Text {
            x_mm,
            baseline_mm,
            size_mm,
            font,
            text,
        } => {
            let (family, weight) = match font {
                Font::Sans => ("Helvetica, Arial, sans-serif", "normal"),
                Font::SansBold => ("Helvetica, Arial, sans-serif", "bold"),
                Font::MonoBold => ("'Courier New', Courier, monospace", "bold"),
            };
            writeln!(
                out,
                r#"<text x="{x_mm:.3}" y="{baseline_mm:.3}" font-size="{size_mm:.3}" font-family="{family}" font-weight="{weight}" xml:space="preserve">{}</text>"#,
                escape(text)
            )
        }
    };
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}
