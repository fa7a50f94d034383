//! Symbols decode back to exactly the data structures of the label.

use std::path::Path;
use std::process::Command;

use cellops_label::{ModuleGrid, code128_modules, data_matrix};

use crate::{full_label, minimal_label, tool};

/// Pixels per module and quiet zone (in modules) of the test PNGs.
const PIXELS_PER_MODULE: usize = 8;
const QUIET_MODULES: usize = 10;

fn write_png(path: &Path, width: usize, height: usize, dark: impl Fn(usize, usize) -> bool) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(file, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let mut pixels = vec![255u8; width * height];
    for y in 0..height {
        for x in 0..width {
            if dark(x, y) {
                pixels[y * width + x] = 0;
            }
        }
    }
    writer.write_image_data(&pixels).unwrap();
}

fn grid_png(grid: &ModuleGrid, path: &Path) {
    let side = |n: usize| (n + 2 * QUIET_MODULES) * PIXELS_PER_MODULE;
    write_png(path, side(grid.width()), side(grid.height()), |x, y| {
        let (mx, my) = (x / PIXELS_PER_MODULE, y / PIXELS_PER_MODULE);
        mx >= QUIET_MODULES
            && my >= QUIET_MODULES
            && grid.is_dark(mx - QUIET_MODULES, my - QUIET_MODULES)
    });
}

fn run(tool: &Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn data_matrix_text_is_a_compound_message_the_codec_reads() {
    let label = full_label(42);
    let text = label.data_matrix_text();
    assert_eq!(
        text,
        "=+04000=A99992600004287=<S1234100&>0263652359&/CHA999926AB12C3"
    );
    let scan = cellops_isbt::parse_scan(&text).unwrap();
    assert_eq!(scan.structures(), label.data_structures().as_slice());
}

#[test]
fn data_matrix_decodes_in_process() {
    for label in [minimal_label(), full_label(7), full_label(999_999)] {
        let text = label.data_matrix_text();
        let grid = data_matrix(&text).unwrap();
        let mut pixels = Vec::with_capacity(grid.width() * grid.height());
        for y in 0..grid.height() {
            for x in 0..grid.width() {
                pixels.push(grid.is_dark(x, y));
            }
        }
        let decoded = datamatrix::DataMatrix::decode(&pixels, grid.width()).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), text);
    }
}

#[test]
fn data_matrix_decodes_with_dmtxread() {
    let Some(dmtxread) = tool("dmtxread", "dmtx-utils") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (index, label) in [minimal_label(), full_label(7), full_label(123_456)]
        .iter()
        .enumerate()
    {
        let text = label.data_matrix_text();
        let path = dir.path().join(format!("dm{index}.png"));
        grid_png(&data_matrix(&text).unwrap(), &path);
        let decoded = run(&dmtxread, &["-N1".as_ref(), path.as_os_str()]);
        assert_eq!(decoded.trim_end(), text, "dmtxread of {}", path.display());
    }
}

#[test]
fn code128_decodes_with_zbarimg() {
    let Some(zbarimg) = tool("zbarimg", "zbar-tools") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for din in ["=G12341765432170", "=A99992600004287", "=A99992112345663"] {
        let bars = code128_modules(din).unwrap();
        let path = dir.path().join("code128.png");
        let width = (bars.len() + 2 * QUIET_MODULES) * 3;
        write_png(&path, width, 120, |x, _| {
            let module = x / 3;
            module >= QUIET_MODULES && bars.get(module - QUIET_MODULES) == Some(&true)
        });
        let decoded = run(
            &zbarimg,
            &["-q".as_ref(), "--raw".as_ref(), path.as_os_str()],
        );
        assert_eq!(decoded.trim_end(), din);
    }
}
