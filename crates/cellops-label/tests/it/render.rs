//! SVG and PDF output.

use std::process::Command;

use cellops_label::{
    LABELS_PER_DOCUMENT_MAX, LabelContent, LabelError, SheetLayout, render_pdf, render_svg,
};

use crate::{full_label, minimal_label, tool};

#[test]
fn svg_shows_the_din_with_boxed_check_character_and_the_texts() {
    let svg = render_svg(&full_label(42)).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"95mm\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(">A9999 26 000042</text>"));
    let k = cellops_isbt::Din::parse("A999926000042")
        .unwrap()
        .check_character();
    assert!(svg.contains(&format!(">{k}</text>")));
    assert!(svg.contains(">EXPIRES 2026-12-31 23:59 CET</text>"));
    assert!(svg.contains("HPC, Apheresis | autologous use only"));
    assert!(svg.contains(">CHA999926AB12C3</text>"));
    assert!(
        svg.matches("fill=\"black\"").count() > 100,
        "symbols are drawn"
    );
}

#[test]
fn svg_escapes_markup_in_the_description() {
    let label = LabelContent::new(
        cellops_isbt::Din::parse("G123417654321").unwrap(),
        cellops_isbt::ProductCode::parse("S1234100").unwrap(),
        "MNC <fresh> & \"washed\"",
    )
    .unwrap();
    let svg = render_svg(&label).unwrap();
    assert!(svg.contains("MNC &lt;fresh&gt; &amp; &quot;washed&quot;"));
}

#[test]
fn description_rules() {
    let din = cellops_isbt::Din::parse("G123417654321").unwrap();
    let product = cellops_isbt::ProductCode::parse("S1234100").unwrap();
    assert_eq!(
        LabelContent::new(din, product, "  "),
        Err(LabelError::DescriptionEmpty)
    );
    assert!(matches!(
        LabelContent::new(din, product, &"x".repeat(81)),
        Err(LabelError::DescriptionTooLong { .. })
    ));
    let error = LabelContent::new(din, product, "HPC, Cord Blood – day 3").unwrap_err();
    assert!(error.to_string().contains("position 17"), "{error}");
    let error = minimal_label()
        .with_expiry(
            cellops_isbt::IsbtDateTime::parse_iso8601("2026-01-01").unwrap(),
            Some("cet"),
        )
        .unwrap_err();
    assert!(error.to_string().contains("capital letters"));
}

fn page_count(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count()
}

#[test]
fn pdf_sheets_hold_ten_labels_per_a4_page() {
    let labels: Vec<_> = (0..23).map(full_label).collect();
    let pdf = render_pdf(&labels, &SheetLayout::a4()).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(String::from_utf8_lossy(&pdf).contains("/Count 3"));
    assert!(page_count(&pdf) >= 3 || String::from_utf8_lossy(&pdf).contains("/Type /Page"));
    assert_eq!(
        render_pdf(&[], &SheetLayout::a4()),
        Err(LabelError::NoLabels)
    );
    let too_many = vec![minimal_label(); LABELS_PER_DOCUMENT_MAX + 1];
    assert!(matches!(
        render_pdf(&too_many, &SheetLayout::a4()),
        Err(LabelError::TooManyLabels { .. })
    ));
    assert!(SheetLayout::new(210.0, 297.0, 3, 5, 5.0, 5.0, 2.0, 2.0).is_err());
    assert!(SheetLayout::new(210.0, 297.0, 2, 5, 7.5, 12.5, 5.0, 3.0).is_ok());
}

/// The printed page itself, rasterised at 600 dpi, scans back to the label's data.
#[test]
fn printed_pdf_page_scans_back() {
    let (Some(pdftoppm), Some(dmtxread), Some(zbarimg)) = (
        tool("pdftoppm", "poppler-utils"),
        tool("dmtxread", "dmtx-utils"),
        tool("zbarimg", "zbar-tools"),
    ) else {
        return;
    };
    let label = full_label(42);
    let pdf = render_pdf(std::slice::from_ref(&label), &SheetLayout::label_roll()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = dir.path().join("label.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let prefix = dir.path().join("page");
    let status = Command::new(pdftoppm)
        .args(["-png", "-r", "600", "-singlefile"])
        .arg(&pdf_path)
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(status.success());
    let png = dir.path().join("page.png");
    let dm = Command::new(dmtxread)
        .arg("-N1")
        .arg(&png)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&dm.stdout).trim_end(),
        label.data_matrix_text()
    );
    let code128 = Command::new(zbarimg)
        .args(["-q", "--raw", "-Sdisable", "-Scode128.enable"])
        .arg(&png)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&code128.stdout).trim_end(),
        "=A99992600004287"
    );
}
