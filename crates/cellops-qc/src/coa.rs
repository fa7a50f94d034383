//! The certificate of analysis: built from the recorded results and release (never typed),
//! rendered as a PDF in base-14 fonts. Pure: returns bytes.

use crate::error::QcError;
use crate::results::BatchResults;
use crate::spec::Specification;
use cellops_domain::Timestamp;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use serde::Serialize;

/// Most lines on one certificate (a limit on the document size).
pub const COA_LINES_MAX: usize = 2_000;
const POINTS_PER_MM: f32 = 72.0 / 25.4;
const PAGE_WIDTH_MM: f32 = 210.0;
const PAGE_HEIGHT_MM: f32 = 297.0;
const MARGIN_MM: f32 = 18.0;
/// Characters per line before wrapping (Helvetica at 9 pt over 174 mm, with room to spare).
const WRAP_CHARS: usize = 105;

/// One test's row on the certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateRow {
    pub test: String,
    pub name: String,
    pub method: String,
    pub criterion: String,
    /// The result as recorded, or `None` while pending.
    pub result: Option<String>,
    /// `PASS`, `FAIL` or `PENDING`.
    pub verdict: &'static str,
    /// Analyst, time, instrument and ledger seq of the result.
    pub detail: Option<String>,
    /// Corrections and invalidated results, each with its reason.
    pub notes: Vec<String>,
}

/// The release block of the certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateRelease {
    /// `Released` or `Released at risk`.
    pub status: String,
    pub signer: String,
    pub signer_name: String,
    pub signed_at: Timestamp,
    pub meaning: String,
    pub pending_tests: Vec<String>,
    pub justification: Option<String>,
    pub acknowledged_by: Option<String>,
}

/// Everything printed on a certificate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Certificate {
    pub batch: String,
    pub site: String,
    pub product_name: String,
    pub spec: String,
    pub recipe_version: String,
    pub units: Vec<String>,
    pub rows: Vec<CertificateRow>,
    pub release: Option<CertificateRelease>,
    /// The last ledger record the certificate reflects.
    pub ledger_seq: u64,
    pub generated_at: Timestamp,
}

/// Header facts of a certificate that come from outside the results.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateHeader {
    pub batch: String,
    pub site: String,
    pub recipe_version: String,
    pub units: Vec<String>,
    pub ledger_seq: u64,
    pub generated_at: Timestamp,
}

impl Certificate {
    /// Builds the certificate's rows from the specification and the recorded results.
    pub fn build(
        spec: &Specification,
        results: &BatchResults,
        header: CertificateHeader,
        release: Option<CertificateRelease>,
    ) -> Certificate {
        let rows = spec
            .tests()
            .iter()
            .map(|t| {
                let current = results.current(&t.id);
                let mut notes = Vec::new();
                for r in results.results().iter().filter(|r| r.test == t.id) {
                    if let (Some(old), Some(reason)) = (r.corrects, &r.reason) {
                        notes.push(format!(
                            "Result {old} corrected by result {} ({}); reason: {reason}",
                            r.seq,
                            r.value.text()
                        ));
                    }
                    if results.is_invalidated(r.seq) {
                        notes.push(format!(
                            "Result {} ({}) invalidated by OOS investigation",
                            r.seq,
                            r.value.text()
                        ));
                    }
                }
                CertificateRow {
                    test: t.id.clone(),
                    name: t.name.clone(),
                    method: t.method_name.clone(),
                    criterion: t.criterion_display(),
                    result: current.map(|r| r.value.text()),
                    verdict: match current {
                        None => "PENDING",
                        Some(r) if r.verdict.is_pass() => "PASS",
                        Some(_) => "FAIL",
                    },
                    detail: current.map(|r| {
                        format!(
                            "analyst {}, {}, instrument {}, record {}",
                            r.analyst, r.recorded_at, r.instrument, r.seq
                        )
                    }),
                    notes,
                }
            })
            .collect();
        Certificate {
            batch: header.batch,
            site: header.site,
            product_name: spec.product_name().to_string(),
            spec: spec.key(),
            recipe_version: header.recipe_version,
            units: header.units,
            rows,
            release,
            ledger_seq: header.ledger_seq,
            generated_at: header.generated_at,
        }
    }

    /// The certificate as lines of (font size in pt, bold, indent in mm, text).
    fn lines(&self) -> Vec<(f32, bool, f32, String)> {
        let mut out: Vec<(f32, bool, f32, String)> = Vec::new();
        let mut push = |size: f32, bold: bool, indent: f32, text: String| {
            for line in wrap(&text, WRAP_CHARS) {
                out.push((size, bold, indent, line));
            }
        };
        push(16.0, true, 0.0, "Certificate of Analysis".into());
        push(10.0, false, 0.0, format!("Product: {}", self.product_name));
        push(
            10.0,
            false,
            0.0,
            format!("Batch: {}    Site: {}", self.batch, self.site),
        );
        push(
            10.0,
            false,
            0.0,
            format!(
                "Specification: {}    Recipe version: {}",
                self.spec, self.recipe_version
            ),
        );
        if !self.units.is_empty() {
            push(
                10.0,
                false,
                0.0,
                format!("Units: {}", self.units.join(", ")),
            );
        }
        push(10.0, false, 0.0, String::new());
        push(11.0, true, 0.0, "Test results".into());
        for row in &self.rows {
            push(
                9.0,
                true,
                0.0,
                format!(
                    "{} [{}]: {} - {}",
                    row.name,
                    row.test,
                    row.result.as_deref().unwrap_or("pending"),
                    row.verdict
                ),
            );
            push(
                8.0,
                false,
                4.0,
                format!("Acceptance: {}; method: {}", row.criterion, row.method),
            );
            if let Some(d) = &row.detail {
                push(8.0, false, 4.0, d.clone());
            }
            for n in &row.notes {
                push(8.0, false, 4.0, n.clone());
            }
        }
        push(10.0, false, 0.0, String::new());
        push(11.0, true, 0.0, "Release".into());
        match &self.release {
            None => push(9.0, false, 0.0, "Not released.".into()),
            Some(r) => {
                push(9.0, false, 0.0, format!("Status: {}", r.status));
                push(
                    9.0,
                    false,
                    0.0,
                    format!(
                        "Signed by {} ({}) at {} (UTC), meaning: {}",
                        r.signer_name, r.signer, r.signed_at, r.meaning
                    ),
                );
                if !r.pending_tests.is_empty() {
                    push(
                        9.0,
                        false,
                        0.0,
                        format!("Pending at release: {}", r.pending_tests.join(", ")),
                    );
                }
                if let Some(j) = &r.justification {
                    push(9.0, false, 0.0, format!("Clinical justification: {j}"));
                }
                if let Some(a) = &r.acknowledged_by {
                    push(
                        9.0,
                        false,
                        0.0,
                        format!("Acknowledged by treating physician: {a}"),
                    );
                }
            }
        }
        push(10.0, false, 0.0, String::new());
        push(
            8.0,
            false,
            0.0,
            format!(
                "Generated by cellops from ledger records up to {} at {} (UTC).",
                self.ledger_seq, self.generated_at
            ),
        );
        out
    }

    /// Renders the certificate as an A4 PDF.
    pub fn render_pdf(&self) -> Result<Vec<u8>, QcError> {
        let lines = self.lines();
        if lines.len() > COA_LINES_MAX {
            return Err(QcError::Certificate(format!(
                "{} lines exceed the limit of {COA_LINES_MAX}",
                lines.len()
            )));
        }
        let usable_pt = (PAGE_HEIGHT_MM - 2.0 * MARGIN_MM) * POINTS_PER_MM;
        let mut pages: Vec<Vec<&(f32, bool, f32, String)>> = vec![Vec::new()];
        let mut used = 0.0;
        for line in &lines {
            let height = line.0 * 1.35;
            if used + height > usable_pt {
                pages.push(Vec::new());
                used = 0.0;
            }
            used += height;
            pages.last_mut().expect("pages is never empty").push(line);
        }
        let catalog_id = Ref::new(1);
        let tree_id = Ref::new(2);
        let regular_id = Ref::new(3);
        let bold_id = Ref::new(4);
        let info_id = Ref::new(5);
        let page_ids: Vec<Ref> = (0..pages.len())
            .map(|i| Ref::new(6 + 2 * i as i32))
            .collect();
        let mut pdf = Pdf::new();
        pdf.catalog(catalog_id).pages(tree_id);
        pdf.pages(tree_id)
            .kids(page_ids.iter().copied())
            .count(pages.len() as i32);
        pdf.document_info(info_id)
            .title(TextStr(&format!("Certificate of Analysis {}", self.batch)))
            .creator(TextStr("cellops"));
        pdf.type1_font(regular_id)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold_id)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        let page_count = pages.len();
        for (index, (page_lines, &page_id)) in pages.iter().zip(&page_ids).enumerate() {
            let content_id = Ref::new(page_id.get() + 1);
            let mut page = pdf.page(page_id);
            page.media_box(Rect::new(
                0.0,
                0.0,
                PAGE_WIDTH_MM * POINTS_PER_MM,
                PAGE_HEIGHT_MM * POINTS_PER_MM,
            ))
            .parent(tree_id)
            .contents(content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), regular_id);
            fonts.pair(Name(b"F2"), bold_id);
            fonts.finish();
            resources.finish();
            page.finish();
            let mut content = Content::new();
            let mut y = (PAGE_HEIGHT_MM - MARGIN_MM) * POINTS_PER_MM;
            for (size, bold, indent, text) in page_lines.iter().map(|l| (l.0, l.1, l.2, &l.3)) {
                y -= size * 1.35;
                show(
                    &mut content,
                    bold,
                    size,
                    (MARGIN_MM + indent) * POINTS_PER_MM,
                    y,
                    text,
                );
            }
            let footer = format!(
                "Batch {} - page {} of {}",
                self.batch,
                index + 1,
                page_count
            );
            show(
                &mut content,
                false,
                7.0,
                MARGIN_MM * POINTS_PER_MM,
                MARGIN_MM * POINTS_PER_MM / 2.0,
                &footer,
            );
            pdf.stream(content_id, &content.finish());
        }
        Ok(pdf.finish())
    }
}

fn show(content: &mut Content, bold: bool, size: f32, x: f32, y: f32, text: &str) {
    if text.is_empty() {
        return;
    }
    content.begin_text();
    content.set_font(Name(if bold { b"F2" } else { b"F1" }), size);
    content.next_line(x, y);
    content.show(Str(&win_ansi(text)));
    content.end_text();
}

/// Text in the WinAnsi encoding of the base-14 fonts: ASCII as is, a few symbols mapped,
/// anything else as `?` (the ledger keeps the exact text).
fn win_ansi(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ' '..='~' => out.push(c as u8),
            '°' => out.push(0xB0),
            'µ' => out.push(0xB5),
            '≥' => out.extend_from_slice(b">="),
            '≤' => out.extend_from_slice(b"<="),
            '–' | '—' => out.push(b'-'),
            _ => out.push(b'?'),
        }
    }
    out
}

/// Splits `text` into lines of at most `width` characters at spaces (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_words_and_limits_width() {
        let lines = wrap("aa bb cc dd", 5);
        assert_eq!(lines, vec!["aa bb", "cc dd"]);
        let lines = wrap("abcdefghij", 4);
        assert!(lines.iter().all(|l| l.chars().count() <= 4), "{lines:?}");
        assert_eq!(lines.concat(), "abcdefghij");
    }
}
