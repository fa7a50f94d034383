//! Where everything goes on one label, in millimetres from the label's top-left corner.
//!
//! ST-001 §6–7 rules applied: Code 128 X = 0.25 mm, quiet zone ≥ 10X, height ≥ 5 mm and ≥ 15 %
//! of the symbol length; DataMatrix X between 0.25 and 1 mm with a quiet zone ≥ X; DIN printed
//! in full with its check character in a box, in a monospaced font (0/O and 1/I distinct);
//! dates ISO 8601 with a 24-hour time. The layout itself (ST-004) is not confirmed.

use crate::content::LabelContent;
use crate::error::LabelError;
use crate::symbols::{self, CODE128_MODULE_MM, ModuleGrid};

/// Label width, in mm.
pub const LABEL_WIDTH_MM: f64 = 95.0;
/// Label height, in mm.
pub const LABEL_HEIGHT_MM: f64 = 52.0;
/// Margin inside the label edge, in mm.
const MARGIN_MM: f64 = 3.0;
/// Code 128 quiet zone: 10 modules (ST-001 §6.1).
const CODE128_QUIET_MM: f64 = 10.0 * CODE128_MODULE_MM;
/// Code 128 bar height, in mm (≥ 5 mm and ≥ 15 % of the symbol length).
const CODE128_HEIGHT_MM: f64 = 9.0;
/// Largest DataMatrix module, in mm (ST-001 §6.2: 0.25–1 mm).
const DATA_MATRIX_MODULE_MM_MAX: f64 = 0.5;
/// Smallest DataMatrix module, in mm.
const DATA_MATRIX_MODULE_MM_MIN: f64 = 0.25;
/// Side of the square the DataMatrix must fit in, quiet zone excluded, in mm.
const DATA_MATRIX_SIDE_MM_MAX: f64 = 18.0;
/// Width of a Courier glyph as a fraction of the font size.
const MONO_ADVANCE_EM: f64 = 0.6;
/// Eye-readable DIN font size (cap height about 3 mm), in mm.
const DIN_TEXT_MM: f64 = 5.0;
/// Characters per description line at the description font size.
const DESCRIPTION_LINE_CHARS_MAX: usize = 40;

/// Fonts: the three base-14 PDF fonts used, and their SVG equivalents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    /// Helvetica.
    Sans,
    /// Helvetica-Bold.
    SansBold,
    /// Courier-Bold: codes, where every character must be told apart.
    MonoBold,
}

/// One thing to draw. Lengths in mm; `y_mm` grows downwards from the label's top edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A filled black rectangle (symbol modules).
    Fill {
        /// Left edge.
        x_mm: f64,
        /// Top edge.
        y_mm: f64,
        /// Width.
        width_mm: f64,
        /// Height.
        height_mm: f64,
    },
    /// A rectangle outline (the check-character box, the label edge).
    Outline {
        /// Left edge.
        x_mm: f64,
        /// Top edge.
        y_mm: f64,
        /// Width.
        width_mm: f64,
        /// Height.
        height_mm: f64,
        /// Line width.
        line_mm: f64,
    },
    /// Text on a baseline.
    Text {
        /// Left end of the baseline.
        x_mm: f64,
        /// Baseline.
        baseline_mm: f64,
        /// Font size (em), in mm.
        size_mm: f64,
        /// Font.
        font: Font,
        /// The text, printable ASCII.
        text: String,
    },
}

/// Everything to draw for `label`, in drawing order.
pub fn layout(label: &LabelContent) -> Result<Vec<Shape>, LabelError> {
    let mut shapes = vec![Shape::Outline {
        x_mm: 0.0,
        y_mm: 0.0,
        width_mm: LABEL_WIDTH_MM,
        height_mm: LABEL_HEIGHT_MM,
        line_mm: 0.1,
    }];
    let din = label.din();
    let din_structure = din.with_flags(cellops_isbt::Flags::CHECK_VALUE).to_string();
    let bars = symbols::code128_modules(&din_structure)?;
    let bars_x_mm = MARGIN_MM + CODE128_QUIET_MM;
    push_bars(&mut shapes, &bars, bars_x_mm, MARGIN_MM);

    let din_baseline_mm = MARGIN_MM + CODE128_HEIGHT_MM + DIN_TEXT_MM + 0.5;
    let din_text = din.eye_readable().to_string();
    push_boxed_code(
        &mut shapes,
        bars_x_mm,
        din_baseline_mm,
        DIN_TEXT_MM,
        &din_text,
        din.check_character().as_char(),
    );

    let grid = symbols::data_matrix(&label.data_matrix_text())?;
    push_data_matrix(&mut shapes, &grid);

    let mut baseline_mm = din_baseline_mm + 7.5;
    for line in wrap(label.description(), DESCRIPTION_LINE_CHARS_MAX) {
        shapes.push(text(MARGIN_MM, baseline_mm, 3.4, Font::SansBold, line));
        baseline_mm += 4.0;
    }
    baseline_mm += 0.6;
    let product = label.product();
    let mut product_line = format!(
        "Product code {}   Collection type {}   Division {}",
        product.description_code(),
        product.collection_type(),
        product.division()
    );
    if let Some(divisions) = label.divisions() {
        product_line.push_str(&format!(" / {}", divisions.as_str()));
    }
    shapes.push(text(MARGIN_MM, baseline_mm, 2.8, Font::Sans, product_line));
    baseline_mm += 4.6;
    if let Some(expiry) = label.expiry() {
        let zone = label
            .time_zone()
            .map(|z| format!(" {z}"))
            .unwrap_or_default();
        let line = format!("EXPIRES {expiry}{zone}");
        shapes.push(text(MARGIN_MM, baseline_mm, 3.4, Font::SansBold, line));
        baseline_mm += 5.0;
    }
    if let Some(id) = label.chain_of_identity() {
        shapes.push(text(MARGIN_MM, baseline_mm, 2.8, Font::Sans, "COI".into()));
        push_boxed_code(
            &mut shapes,
            MARGIN_MM + 7.0,
            baseline_mm,
            3.2,
            id.as_str(),
            id.check_character().as_char(),
        );
    }
    Ok(shapes)
}

fn text(x_mm: f64, baseline_mm: f64, size_mm: f64, font: Font, text: String) -> Shape {
    Shape::Text {
        x_mm,
        baseline_mm,
        size_mm,
        font,
        text,
    }
}

/// Code 128 bars, adjacent dark modules merged into one rectangle.
fn push_bars(shapes: &mut Vec<Shape>, bars: &[bool], x_mm: f64, y_mm: f64) {
    let mut index = 0;
    while index < bars.len() {
        if !bars[index] {
            index += 1;
            continue;
        }
        let run = bars[index..].iter().take_while(|&&dark| dark).count();
        shapes.push(Shape::Fill {
            x_mm: x_mm + index as f64 * CODE128_MODULE_MM,
            y_mm,
            width_mm: run as f64 * CODE128_MODULE_MM,
            height_mm: CODE128_HEIGHT_MM,
        });
        index += run;
    }
}

/// A code in Courier-Bold followed by its check character in a box.
fn push_boxed_code(
    shapes: &mut Vec<Shape>,
    x_mm: f64,
    baseline_mm: f64,
    size_mm: f64,
    code: &str,
    check: char,
) {
    let advance_mm = MONO_ADVANCE_EM * size_mm;
    shapes.push(text(
        x_mm,
        baseline_mm,
        size_mm,
        Font::MonoBold,
        code.into(),
    ));
    let box_x_mm = x_mm + code.len() as f64 * advance_mm + advance_mm * 0.8;
    let box_side_mm = size_mm * 1.05;
    let cap_mm = size_mm * 0.62;
    shapes.push(Shape::Outline {
        x_mm: box_x_mm,
        y_mm: baseline_mm - cap_mm - (box_side_mm - cap_mm) / 2.0,
        width_mm: box_side_mm,
        height_mm: box_side_mm,
        line_mm: (size_mm * 0.06).max(0.2),
    });
    shapes.push(text(
        box_x_mm + (box_side_mm - advance_mm) / 2.0,
        baseline_mm,
        size_mm,
        Font::MonoBold,
        check.to_string(),
    ));
}

/// The DataMatrix in the top-right corner, rows of dark modules merged.
fn push_data_matrix(shapes: &mut Vec<Shape>, grid: &ModuleGrid) {
    let side = grid.width().max(grid.height()) as f64;
    let module_mm = (DATA_MATRIX_SIDE_MM_MAX / side)
        .clamp(DATA_MATRIX_MODULE_MM_MIN, DATA_MATRIX_MODULE_MM_MAX);
    let quiet_mm = module_mm;
    let left_mm = LABEL_WIDTH_MM - MARGIN_MM - quiet_mm - grid.width() as f64 * module_mm;
    let top_mm = MARGIN_MM + quiet_mm;
    for y in 0..grid.height() {
        let mut x = 0;
        while x < grid.width() {
            if !grid.is_dark(x, y) {
                x += 1;
                continue;
            }
            let run = (x..grid.width())
                .take_while(|&c| grid.is_dark(c, y))
                .count();
            shapes.push(Shape::Fill {
                x_mm: left_mm + x as f64 * module_mm,
                y_mm: top_mm + y as f64 * module_mm,
                width_mm: run as f64 * module_mm,
                height_mm: module_mm,
            });
            x += run;
        }
    }
}

/// Splits `text` into at most two lines of `width` characters at spaces (a word longer than
/// a line is cut). The description limit keeps everything within two lines.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed = if current.is_empty() {
            word.len()
        } else {
            current.len() + 1 + word.len()
        };
        if needed > width && !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        while current.len() > width {
            let rest = current.split_off(width);
            lines.push(std::mem::replace(&mut current, rest));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(wrap("HPC, Apheresis", 44), ["HPC, Apheresis"]);
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }
}
