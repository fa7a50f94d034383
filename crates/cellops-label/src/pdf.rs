//! Sheets of labels as a PDF document: pages of a grid of labels, symbols drawn as filled
//! rectangles, text in the base-14 fonts (nothing embedded, nothing downloaded).

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::content::LabelContent;
use crate::error::LabelError;
use crate::layout::{self, Font, LABEL_HEIGHT_MM, LABEL_WIDTH_MM, Shape};

/// Most labels in one PDF document; a larger job is split by the caller.
pub const LABELS_PER_DOCUMENT_MAX: usize = 1000;
/// Points per millimetre (PDF user space is 1/72 inch).
const POINTS_PER_MM: f64 = 72.0 / 25.4;
/// A4 page, in mm.
const A4_WIDTH_MM: f64 = 210.0;
const A4_HEIGHT_MM: f64 = 297.0;

const FONT_SANS: Name<'static> = Name(b"F1");
const FONT_SANS_BOLD: Name<'static> = Name(b"F2");
const FONT_MONO_BOLD: Name<'static> = Name(b"F3");

/// How labels are placed on a page: a grid of `columns` × `rows` labels of
/// [`LABEL_WIDTH_MM`] × [`LABEL_HEIGHT_MM`], from the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SheetLayout {
    page_width_mm: f64,
    page_height_mm: f64,
    columns: usize,
    rows: usize,
    margin_left_mm: f64,
    margin_top_mm: f64,
    gap_x_mm: f64,
    gap_y_mm: f64,
}

impl SheetLayout {
    /// A4 portrait, 2 columns × 5 rows, centred (10 labels per page).
    pub fn a4() -> SheetLayout {
        let (columns, rows, gap_x_mm, gap_y_mm) = (2, 5, 5.0, 3.0);
        SheetLayout {
            page_width_mm: A4_WIDTH_MM,
            page_height_mm: A4_HEIGHT_MM,
            columns,
            rows,
            margin_left_mm: (A4_WIDTH_MM - 2.0 * LABEL_WIDTH_MM - gap_x_mm) / 2.0,
            margin_top_mm: (A4_HEIGHT_MM - 5.0 * LABEL_HEIGHT_MM - 4.0 * gap_y_mm) / 2.0,
            gap_x_mm,
            gap_y_mm,
        }
    }

    /// One label per page of exactly the label's size, for a roll label printer.
    pub fn label_roll() -> SheetLayout {
        SheetLayout {
            page_width_mm: LABEL_WIDTH_MM,
            page_height_mm: LABEL_HEIGHT_MM,
            columns: 1,
            rows: 1,
            margin_left_mm: 0.0,
            margin_top_mm: 0.0,
            gap_x_mm: 0.0,
            gap_y_mm: 0.0,
        }
    }

    /// A custom grid; refused if the labels do not fit on the page.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        page_width_mm: f64,
        page_height_mm: f64,
        columns: usize,
        rows: usize,
        margin_left_mm: f64,
        margin_top_mm: f64,
        gap_x_mm: f64,
        gap_y_mm: f64,
    ) -> Result<SheetLayout, LabelError> {
        let sheet = SheetLayout {
            page_width_mm,
            page_height_mm,
            columns,
            rows,
            margin_left_mm,
            margin_top_mm,
            gap_x_mm,
            gap_y_mm,
        };
        sheet.check()?;
        Ok(sheet)
    }

    /// Labels per page.
    pub fn labels_per_page(&self) -> usize {
        self.columns * self.rows
    }

    fn check(&self) -> Result<(), LabelError> {
        let lengths = [
            self.page_width_mm,
            self.page_height_mm,
            self.margin_left_mm,
            self.margin_top_mm,
            self.gap_x_mm,
            self.gap_y_mm,
        ];
        if lengths.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(fit("every length must be a finite number ≥ 0 mm"));
        }
        if self.columns == 0 || self.rows == 0 {
            return Err(fit("at least one column and one row are needed"));
        }
        let used_width_mm = self.margin_left_mm
            + self.columns as f64 * LABEL_WIDTH_MM
            + (self.columns - 1) as f64 * self.gap_x_mm;
        let used_height_mm = self.margin_top_mm
            + self.rows as f64 * LABEL_HEIGHT_MM
            + (self.rows - 1) as f64 * self.gap_y_mm;
        if used_width_mm > self.page_width_mm + 1e-9 {
            return Err(fit(&format!(
                "the labels need {used_width_mm:.1} mm of width, the page has {:.1} mm",
                self.page_width_mm
            )));
        }
        if used_height_mm > self.page_height_mm + 1e-9 {
            return Err(fit(&format!(
                "the labels need {used_height_mm:.1} mm of height, the page has {:.1} mm",
                self.page_height_mm
            )));
        }
        Ok(())
    }

    /// Top-left corner of slot `index` on a page, in mm from the page's top-left corner.
    fn origin_mm(&self, index: usize) -> (f64, f64) {
        let column = index % self.columns;
        let row = index / self.columns;
        (
            self.margin_left_mm + column as f64 * (LABEL_WIDTH_MM + self.gap_x_mm),
            self.margin_top_mm + row as f64 * (LABEL_HEIGHT_MM + self.gap_y_mm),
        )
    }
}

fn fit(reason: &str) -> LabelError {
    LabelError::SheetDoesNotFit {
        reason: reason.to_string(),
    }
}

/// The PDF document printing `labels` in order on pages laid out by `sheet`.
pub fn render_pdf(labels: &[LabelContent], sheet: &SheetLayout) -> Result<Vec<u8>, LabelError> {
    if labels.is_empty() {
        return Err(LabelError::NoLabels);
    }
    if labels.len() > LABELS_PER_DOCUMENT_MAX {
        return Err(LabelError::TooManyLabels {
            count: labels.len(),
            max: LABELS_PER_DOCUMENT_MAX,
        });
    }
    sheet.check()?;
    let pages: Vec<&[LabelContent]> = labels.chunks(sheet.labels_per_page()).collect();

    let catalog_id = Ref::new(1);
    let page_tree_id = Ref::new(2);
    let font_ids = [Ref::new(3), Ref::new(4), Ref::new(5)];
    let info_id = Ref::new(6);
    let first_page_ref = 7;
    // Cannot overflow: at most LABELS_PER_DOCUMENT_MAX pages, two objects each.
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page_ref + 2 * i as i32))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(page_tree_id);
    pdf.pages(page_tree_id)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);
    pdf.document_info(info_id)
        .title(TextStr("ISBT 128 labels"))
        .creator(TextStr("cellops"));
    for (font_id, base) in
        font_ids
            .iter()
            .zip([&b"Helvetica"[..], b"Helvetica-Bold", b"Courier-Bold"])
    {
        pdf.type1_font(*font_id)
            .base_font(Name(base))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let media = Rect::new(
        0.0,
        0.0,
        points(sheet.page_width_mm),
        points(sheet.page_height_mm),
    );
    for (page_labels, &page_id) in pages.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(media)
            .parent(page_tree_id)
            .contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(FONT_SANS, font_ids[0]);
        fonts.pair(FONT_SANS_BOLD, font_ids[1]);
        fonts.pair(FONT_MONO_BOLD, font_ids[2]);
        fonts.finish();
        resources.finish();
        page.finish();

        let mut content = Content::new();
        for (slot, label) in page_labels.iter().enumerate() {
            let origin = sheet.origin_mm(slot);
            for shape in layout::layout(label)? {
                draw(&mut content, &shape, origin, sheet.page_height_mm);
            }
        }
        pdf.stream(content_id, &content.finish());
    }
    Ok(pdf.finish())
}

fn points(mm: f64) -> f32 {
    (mm * POINTS_PER_MM) as f32
}

/// Draws `shape` of a label whose top-left corner is at `origin` (mm from the page's
/// top-left); PDF space has its origin at the bottom-left, in points.
fn draw(content: &mut Content, shape: &Shape, origin: (f64, f64), page_height_mm: f64) {
    let (left_mm, top_mm) = origin;
    let flip = |y_mm: f64| points(page_height_mm - top_mm - y_mm);
    match shape {
        Shape::Fill {
            x_mm,
            y_mm,
            width_mm,
            height_mm,
        } => {
            content.rect(
                points(left_mm + x_mm),
                flip(y_mm + height_mm),
                points(*width_mm),
                points(*height_mm),
            );
            content.fill_nonzero();
        }
        Shape::Outline {
            x_mm,
            y_mm,
            width_mm,
            height_mm,
            line_mm,
        } => {
            content.set_line_width(points(*line_mm));
            content.rect(
                points(left_mm + x_mm),
                flip(y_mm + height_mm),
                points(*width_mm),
                points(*height_mm),
            );
            content.stroke();
        }
        Shape::Text {
            x_mm,
            baseline_mm,
            size_mm,
            font,
            text,
        } => {
            let name = match font {
                Font::Sans => FONT_SANS,
                Font::SansBold => FONT_SANS_BOLD,
                Font::MonoBold => FONT_MONO_BOLD,
            };
            content.begin_text();
            content.set_font(name, points(*size_mm));
            content.next_line(points(left_mm + x_mm), flip(*baseline_mm));
            content.show(Str(text.as_bytes()));
            content.end_text();
        }
    }
}
