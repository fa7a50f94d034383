//! ISBT 128 unit labels: SVG for one label, PDF sheets of many (see `docs/isbt128.md`).
//!
//! A label carries the DIN as a Code 128 symbol and as eye-readable text with its check
//! character in a box, a DataMatrix ECC 200 symbol holding every data structure of the label
//! in one DS 023 compound message, the product description given by the caller, the product
//! code and division, the expiry, and the chain of identity identifier when there is one.
//!
//! Architecture invariant: pure. Rendering returns bytes; no file, clock or ledger is touched.
//! Recording that a label was printed, reprinted, applied or destroyed is the caller's job.
//! Layout is computed once in millimetres ([`layout`]) and drawn by two thin backends
//! ([`render_svg`], [`render_pdf`]), so the SVG and the PDF cannot drift apart.

mod content;
mod error;
mod layout;
mod pdf;
mod svg;
mod symbols;

pub use content::{DESCRIPTION_CHARS_MAX, LabelContent, TIME_ZONE_CHARS_MAX, TIME_ZONE_CHARS_MIN};
pub use error::LabelError;
pub use layout::{Font, LABEL_HEIGHT_MM, LABEL_WIDTH_MM, Shape, layout};
pub use pdf::{LABELS_PER_DOCUMENT_MAX, SheetLayout, render_pdf};
pub use svg::render_svg;
pub use symbols::{CODE128_MODULE_MM, ModuleGrid, code128_modules, code128_text, data_matrix};
