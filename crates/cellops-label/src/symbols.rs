//! The two symbols of a label: DataMatrix ECC 200 (ISO/IEC 16022) and Code 128
//! (ISO/IEC 15417), as module patterns independent of any output format.

use barcoders::sym::code128::Code128;
use datamatrix::{DataMatrix, SymbolList};

use crate::error::LabelError;

/// Code 128 module width on the label, in mm (ST-001 §6.1 target X = 0.25 mm).
pub const CODE128_MODULE_MM: f64 = 0.25;
/// Shortest digit run worth a switch to Code 128 subset C (each pair then takes one symbol).
const SUBSET_C_DIGITS_MIN: usize = 4;

const START_B: char = 'Ɓ';
const START_C: char = 'Ć';

/// A rectangular grid of modules, row-major, `true` = dark. Quiet zones are not included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleGrid {
    width: usize,
    height: usize,
    dark: Vec<bool>,
}

impl ModuleGrid {
    /// Modules per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// True when the module in column `x`, row `y` is dark (false outside the grid).
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.dark[y * self.width + x]
    }
}

/// The square DataMatrix ECC 200 symbol of `text` (ASCII), finder pattern included.
pub fn data_matrix(text: &str) -> Result<ModuleGrid, LabelError> {
    let symbol = DataMatrix::encode(text.as_bytes(), SymbolList::default().enforce_square())
        .map_err(|error| LabelError::DataMatrix {
            data: text.to_string(),
            reason: format!("{error:?}"),
        })?;
    let bitmap = symbol.bitmap();
    Ok(ModuleGrid {
        width: bitmap.width(),
        height: bitmap.height(),
        dark: bitmap.bits().to_vec(),
    })
}

/// `text` with the Code 128 subset markers of the `barcoders` crate: subset B, switching to
/// subset C for runs of 4 or more digits (ST-001 §6.1: subset C for digit runs). For
/// `=G12341765432170` this is `Ɓ=GĆ12341765432170`.
pub fn code128_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 4);
    let mut current: Option<char> = None;
    let mut switch = |out: &mut String, target: char| {
        if current != Some(target) {
            out.push(target);
            current = Some(target);
        }
    };
    let mut index = 0;
    while index < bytes.len() {
        let run = bytes[index..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if run >= SUBSET_C_DIGITS_MIN {
            if run % 2 == 1 {
                switch(&mut out, START_B);
                out.push(char::from(bytes[index]));
                index += 1;
            }
            let even = run - run % 2;
            switch(&mut out, START_C);
            out.push_str(&text[index..index + even]);
            index += even;
        } else {
            switch(&mut out, START_B);
            out.push(char::from(bytes[index]));
            index += 1;
        }
    }
    out
}

/// The bars and spaces of the Code 128 symbol of `text` (printable ASCII), start to stop
/// pattern, `true` = bar, one entry per module. Quiet zones are not included.
pub fn code128_modules(text: &str) -> Result<Vec<bool>, LabelError> {
    let error = |reason: String| LabelError::Code128 {
        data: text.to_string(),
        reason,
    };
    if text.is_empty() || !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(error("only printable ASCII can be encoded".to_string()));
    }
    let symbol = Code128::new(code128_text(text)).map_err(|e| error(format!("{e:?}")))?;
    Ok(symbol
        .encode()
        .into_iter()
        .map(|module| module == 1)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_use_subset_c() {
        assert_eq!(code128_text("=G12341765432170"), "Ɓ=GĆ12341765432170");
        assert_eq!(code128_text("123"), "Ɓ123");
        assert_eq!(code128_text("12345=A"), "Ɓ1Ć2345Ɓ=A");
        assert_eq!(code128_text("1234"), "Ć1234");
    }

    #[test]
    fn din_symbol_is_short() {
        // Start + '=' + 'G' + code C + 7 digit pairs + check = 12 symbols of 11 modules,
        // plus the 13-module stop pattern: 36.25 mm at X = 0.25 mm.
        let modules = code128_modules("=G12341765432170").unwrap();
        assert_eq!(modules.len(), 12 * 11 + 13);
        assert!(modules[0]);
        assert!(*modules.last().unwrap());
    }
}
