//! SDK links as QR codes: a PNG image in a `data:` URL, as the API's `qrCode` field carries it.

use base64::Engine;
use qrcode::{Color, QrCode};

/// Pixels per QR module, and the quiet zone around the code in modules (the standard's four).
const SCALE: usize = 4;
const QUIET_ZONE: usize = 4;

/// Encodes `text` as a QR code PNG in a `data:image/png;base64,` URL. Text too long for a QR
/// code (several kilobytes) gives an empty string: links are far shorter.
pub fn png_data_url(text: &str) -> String {
    match png(text) {
        Some(png) => format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        ),
        None => String::new(),
    }
}

fn png(text: &str) -> Option<Vec<u8>> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let mut pixels = vec![0xFFu8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (x, y) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for dy in 0..SCALE {
            let row = (y * SCALE + dy) * side;
            pixels[row + x * SCALE..row + (x + 1) * SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&pixels).ok()?;
    writer.finish().ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_becomes_a_png_data_url_that_decodes_to_a_square_image() {
        let url = png_data_url("http://127.0.0.1:8080/sdk/abcdefghijklmnopqrstuvwxyz012345");
        let encoded = url
            .strip_prefix("data:image/png;base64,")
            .expect("a PNG data URL");
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().expect("a valid PNG");
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width as usize % SCALE, 0);
    }
}
