//! Certificates: the verification code printed on them and the PDF.
//!
//! The code is drawn by the caller (injected randomness) and formatted here; anyone can
//! check it against the ledger through the server's verification endpoint.

use crate::error::TrainingError;
use cellops_domain::Timestamp;

use cellops_domain::CROCKFORD_ALPHABET as ALPHABET;
/// Prefix of every certificate code.
pub const CODE_PREFIX: &str = "CC";
/// Base-32 characters in a code (60 bits).
pub const CODE_CHARS: usize = 12;

/// The certificate code for 60 random bits from `random`: `CC-XXXX-XXXX-XXXX`.
pub fn format_code(random: u64) -> String {
    let chars = cellops_domain::crockford_base32(random, CODE_CHARS);
    format!(
        "{CODE_PREFIX}-{}-{}-{}",
        &chars[0..4],
        &chars[4..8],
        &chars[8..12]
    )
}

/// Normalizes a code as typed (any case, spaces, O for 0, I/L for 1) to its canonical form.
pub fn parse_code(text: &str) -> Result<String, TrainingError> {
    let upper: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bad = || {
        TrainingError::invalid(
            "code",
            format!(
                "{text:?} is not a certificate code: expected {CODE_PREFIX}-XXXX-XXXX-XXXX as printed on the certificate"
            ),
        )
    };
    let body = upper.strip_prefix("CC-").ok_or_else(bad)?;
    let mut chars = String::with_capacity(CODE_CHARS);
    for c in body.chars().filter(|c| *c != '-') {
        let c = match c {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
            return Err(bad());
        }
        chars.push(c);
    }
    if chars.len() != CODE_CHARS {
        return Err(bad());
    }
    Ok(format!(
        "{CODE_PREFIX}-{}-{}-{}",
        &chars[0..4],
        &chars[4..8],
        &chars[8..12]
    ))
}

/// What a certificate PDF shows.
#[derive(Debug, Clone)]
pub struct CertificateView {
    pub code: String,
    pub holder_name: String,
    pub holder_id: String,
    pub curriculum_title: String,
    pub curriculum_version: String,
    pub course_title: String,
    pub requalification: bool,
    /// (qualification name, id, expiry).
    pub grants: Vec<(String, String, Timestamp)>,
    pub issued_at: Timestamp,
    pub issued_by: String,
    pub site: String,
    pub ledger_seq: u64,
    pub ledger_hash: String,
}

/// Text for the PDF's standard fonts: characters outside printable ASCII become '?', and
/// the PDF string delimiters are escaped.
fn pdf_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

fn date(t: Timestamp) -> String {
    t.date()
}

/// The certificate as a one-page A4 PDF (Helvetica, text only).
pub fn render_pdf(view: &CertificateView) -> Vec<u8> {
    let mut lines: Vec<(u32, f32, String)> = vec![
        (22, 60.0, "Certificate of qualification".to_string()),
        (14, 34.0, view.curriculum_title.clone()),
        (11, 30.0, "This certifies that".to_string()),
        (
            18,
            26.0,
            format!("{} ({})", view.holder_name, view.holder_id),
        ),
        (
            11,
            22.0,
            if view.requalification {
                "has requalified in the course".to_string()
            } else {
                "has completed the course".to_string()
            },
        ),
        (14, 30.0, view.course_title.clone()),
        (
            11,
            20.0,
            "and holds the following qualifications:".to_string(),
        ),
    ];
    for (name, id, expires) in &view.grants {
        lines.push((
            11,
            16.0,
            format!("  - {name} [{id}], valid until {}", date(*expires)),
        ));
    }
    lines.extend([
        (
            11,
            30.0,
            format!(
                "Issued {} by {} at site {}",
                date(view.issued_at),
                view.issued_by,
                view.site
            ),
        ),
        (
            11,
            16.0,
            format!("Curriculum version {}", view.curriculum_version),
        ),
        (16, 40.0, format!("Verification code: {}", view.code)),
        (
            9,
            18.0,
            format!(
                "Check this code at /api/training/certificates/{}/verify",
                view.code
            ),
        ),
        (
            9,
            14.0,
            format!(
                "Ledger record {} with hash {}",
                view.ledger_seq, view.ledger_hash
            ),
        ),
    ]);
    let mut content = String::from("BT\n");
    let mut y = 800.0_f32;
    for (size, gap, text) in &lines {
        y -= gap;
        content.push_str(&format!(
            "/F1 {size} Tf\n1 0 0 1 56 {y:.1} Tm\n({}) Tj\n",
            pdf_text(text)
        ));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_string(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for o in offsets {
        pdf.push_str(&format!("{o:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_forgive_misreadings() {
        let code = format_code(0x0123_4567_89ab_cdef);
        assert_eq!(code.len(), 17);
        assert_eq!(parse_code(&code).unwrap(), code);
        assert_eq!(parse_code(&code.to_lowercase()).unwrap(), code);
        let misread = code.replace('0', "O");
        assert_eq!(parse_code(&misread).unwrap(), code);
        assert!(parse_code("CC-1234").is_err());
        assert!(parse_code("XX-0000-0000-0000").is_err());
        assert!(parse_code("CC-0000-0000-000U").is_err());
    }

    #[test]
    fn the_pdf_is_well_formed_and_shows_the_code() {
        let at = Timestamp::parse("2026-11-26T00:00:00Z").unwrap();
        let view = CertificateView {
            code: format_code(7),
            holder_name: "Hiroshi (Tanaka)".into(),
            holder_id: "op-tanaka".into(),
            curriculum_title: "Clinical culturist course".into(),
            curriculum_version: "1.0.0".into(),
            course_title: "Aseptic technique 無菌".into(),
            requalification: false,
            grants: vec![(
                "Aseptic processing".into(),
                "cpc-aseptic-processing".into(),
                at,
            )],
            issued_at: at,
            issued_by: "trainer-ono".into(),
            site: "cpc-kyoto".into(),
            ledger_seq: 42,
            ledger_hash: "ab".repeat(32),
        };
        let pdf = String::from_utf8(render_pdf(&view)).unwrap();
        assert!(pdf.starts_with("%PDF-1.4"));
        assert!(pdf.ends_with("%%EOF\n"));
        assert!(pdf.contains(&view.code));
        assert!(pdf.contains("Hiroshi \\(Tanaka\\)"));
        assert!(pdf.contains("Aseptic technique ??"));
        let xref: usize = pdf
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[xref..].starts_with("xref"));
        // Each xref offset points at its object.
        for (i, line) in pdf[xref..].lines().skip(3).take(5).enumerate() {
            let offset: usize = line[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(&format!("{} 0 obj", i + 1)),
                "object {}",
                i + 1
            );
        }
    }
}
