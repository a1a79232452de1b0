//! The SDK link as a QR code on the terminal (SPEC §9): one widget for the details pane and the
//! SDK dialog. Two modules a cell, the quiet zone of four modules the QR specification asks
//! for, and black and white of its own, so it scans whatever the terminal's theme.

use ratatui::buffer::Buffer;
use ratatui::layout::{Rect, Size};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use super::theme::{Theme, ThemeName};

/// Light modules around the code on every side (ISO/IEC 18004 asks for four).
const QUIET_ZONE: usize = 4;

/// Entries 16 and 231 of the 256-colour palette are exactly black and white: themes recolour
/// the sixteen ANSI colours (their "black" may be a dark grey-blue, their "white" a light
/// grey), and leave the colour cube alone.
const BLACK: Color = Color::Indexed(16);
const WHITE: Color = Color::Indexed(231);

/// The terminal's own background, which the code is drawn for when it may not set colours
/// (`NO_COLOR`, or the `plain` theme): `--qr light|dark`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Background {
    /// Dark text on a light background: xterm's and macOS Terminal's defaults.
    #[default]
    Light,
    /// Light text on a dark background.
    Dark,
}

/// How the modules get their colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colours {
    /// Black on white, every cell's foreground and background set.
    BlackOnWhite,
    /// The terminal's default colours, and reverse video, on a background of this shade.
    Terminal(Background),
}

/// The code of one link, ready to draw.
#[derive(Debug, Clone)]
pub struct QrCode {
    /// Whether each module is dark, row by row, the quiet zone included, with a light row
    /// added below when the rows are odd (a cell holds two).
    dark: Vec<bool>,
    /// Modules a row, the quiet zone included.
    width: usize,
    colours: Colours,
}

impl QrCode {
    /// The link's code, drawn for the theme; `None` when the link is too long for a QR code.
    pub fn new(link: &str, theme: &Theme) -> Option<QrCode> {
        let code = qrcode::QrCode::new(link.as_bytes()).ok()?;
        let modules = code.width();
        let width = modules + 2 * QUIET_ZONE;
        let height = width.next_multiple_of(2);
        let mut dark = vec![false; width * height];
        for (i, color) in code.to_colors().into_iter().enumerate() {
            let (x, y) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
            dark[y * width + x] = color == qrcode::Color::Dark;
        }
        let colours = match theme.name {
            ThemeName::Plain => Colours::Terminal(theme.qr),
            ThemeName::Dark | ThemeName::Light => Colours::BlackOnWhite,
        };
        Some(QrCode { dark, width, colours })
    }

    /// Its size in cells: a cut code does not scan, so it draws only where it fits whole.
    pub fn size(&self) -> Size {
        let rows = self.dark.len() / self.width / 2;
        Size::new(self.width as u16, rows as u16)
    }

    /// The glyph and style of the cell whose top module is dark or not, and bottom one.
    ///
    /// Fonts whose glyphs do not fill the line height leave a line of the cell's background
    /// above or below a half block (xterm with DejaVu Sans Mono: one pixel above). A cell of
    /// one colour is a space in that colour, so it has no such line; in a cell of two, the
    /// light module is the glyph over a dark background. So those lines are only ever dark,
    /// and a thin dark line across a light module (what a dark terminal always showed) is
    /// what scanners cope with; a light one across a finder pattern is not.
    fn cell(&self, top: bool, bottom: bool) -> (&'static str, Style) {
        let (symbol, dark_background) = match (top, bottom) {
            (true, true) => (" ", true),
            (false, false) => (" ", false),
            (false, true) => ("▀", true),
            (true, false) => ("▄", true),
        };
        let style = match self.colours {
            Colours::BlackOnWhite => {
                let (fg, bg) = if dark_background {
                    (WHITE, BLACK)
                } else {
                    (BLACK, WHITE)
                };
                Style::reset().fg(fg).bg(bg)
            }
            // Reverse video paints the cell in the foreground's shade where the background
            // should be the other one: no colour, as NO_COLOR asks, only an attribute.
            Colours::Terminal(background) if dark_background == (background == Background::Light) => {
                Style::reset().add_modifier(Modifier::REVERSED)
            }
            Colours::Terminal(_) => Style::reset(),
        };
        (symbol, style)
    }
}

impl Widget for &QrCode {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let size = self.size();
        if area.width < size.width || area.height < size.height {
            return;
        }
        for row in 0..size.height {
            for x in 0..size.width {
                let top = (row as usize * 2) * self.width + x as usize;
                let (symbol, style) = self.cell(self.dark[top], self.dark[top + self.width]);
                if let Some(cell) = buf.cell_mut((area.x + x, area.y + row)) {
                    cell.set_symbol(symbol).set_style(style);
                }
            }
        }
    }
}

impl Widget for QrCode {
    fn render(self, area: Rect, buf: &mut Buffer) {
        (&self).render(area, buf);
    }
}

/// Reading a code off the screen as a camera would, for tests: the cells become pixels by
/// their colours on a terminal of given default colours, and `rqrr` decodes them.
#[cfg(test)]
pub(crate) mod scan {
    use ratatui::buffer::{Buffer, Cell};
    use ratatui::layout::Rect;
    use ratatui::style::{Color, Modifier};

    use super::{BLACK, WHITE};

    /// A terminal's default colours: what `Color::Reset` looks like on it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Terminal {
        pub dark_background: bool,
    }

    /// Black on white: xterm's default, macOS Terminal's default profile.
    pub const LIGHT: Terminal = Terminal {
        dark_background: false,
    };
    /// White on black: `xterm -rv`, most "dark" profiles.
    pub const DARK: Terminal = Terminal {
        dark_background: true,
    };

    /// Pixels a module a side.
    const SCALE: usize = 4;

    /// Whether `color` is dark on this terminal, as a foreground or a background.
    fn is_dark(color: Color, foreground: bool, terminal: Terminal) -> bool {
        match color {
            Color::Reset => foreground != terminal.dark_background,
            BLACK | Color::Black | Color::Rgb(0, 0, 0) => true,
            WHITE | Color::White | Color::Rgb(255, 255, 255) => false,
            other => panic!("{other:?} where the QR code is: neither black nor white"),
        }
    }

    /// Whether the top and bottom halves of a cell look dark, and its background. Text and
    /// borders count as their background: a camera sees mostly that around thin strokes.
    fn halves(cell: &Cell, terminal: Terminal) -> (bool, bool, bool) {
        // Reverse video draws the glyph in the background's colour and the rest of the cell
        // in the foreground's. The colour of text is never read.
        let reversed = cell.modifier.contains(Modifier::REVERSED);
        let shade = |foreground: bool| match foreground {
            true => is_dark(cell.fg, true, terminal),
            false => is_dark(cell.bg, false, terminal),
        };
        let ink = || shade(!reversed);
        let back = shade(reversed);
        let (top, bottom) = match cell.symbol() {
            "█" => (ink(), ink()),
            "▀" => (ink(), back),
            "▄" => (back, ink()),
            _ => (back, back),
        };
        (top, bottom, back)
    }

    /// The text of the one QR code in `area` of the screen, or `None` when none decodes. With
    /// `gaps`, each row of cells starts with a line of its background, as xterm draws half
    /// blocks in DejaVu Sans Mono. A margin of the terminal's background surrounds it.
    pub fn decode(buf: &Buffer, area: Rect, terminal: Terminal, gaps: bool) -> Option<String> {
        let margin = 4 * SCALE;
        let gap = usize::from(gaps);
        let cell_height = gap + 2 * SCALE;
        let width = area.width as usize * SCALE + 2 * margin;
        let height = area.height as usize * cell_height + 2 * margin;
        let mut image = vec![terminal.dark_background; width * height];
        for row in 0..area.height {
            for column in 0..area.width {
                let (top, bottom, back) = halves(&buf[(area.x + column, area.y + row)], terminal);
                for dy in 0..cell_height {
                    let dark = match dy {
                        _ if dy < gap => back,
                        _ if dy < gap + SCALE => top,
                        _ => bottom,
                    };
                    let y = margin + row as usize * cell_height + dy;
                    let x = margin + column as usize * SCALE;
                    image[y * width + x..y * width + x + SCALE].fill(dark);
                }
            }
        }
        let mut prepared =
            rqrr::PreparedImage::prepare_from_bitmap(width, height, |x, y| image[y * width + x]);
        let grids = prepared.detect_grids();
        match grids.as_slice() {
            [grid] => grid.decode().ok().map(|(_, text)| text),
            _ => None,
        }
    }

    /// The inside of the box (a dialog, a pane) whose top border carries `title`.
    pub fn inside(buf: &Buffer, title: &str) -> Rect {
        let area = buf.area;
        let at = |x: u16, y: u16| buf[(x, y)].symbol().to_string();
        let spelled = |x: u16, y: u16, text: &str| {
            text.chars()
                .enumerate()
                .all(|(n, c)| x + (n as u16) < area.right() && at(x + n as u16, y) == c.to_string())
        };
        for y in area.top()..area.bottom() {
            for x in area.left()..area.right() {
                if at(x, y) == "┌" && spelled(x + 1, y, &format!(" {title} ")) {
                    let right = (x + 1..area.right())
                        .find(|&r| at(r, y) == "┐")
                        .expect("a top-right corner");
                    let bottom = (y + 1..area.bottom())
                        .find(|&b| at(x, b) == "└")
                        .expect("a bottom-left corner");
                    return Rect::new(x + 1, y + 1, right - x - 1, bottom - y - 1);
                }
            }
        }
        panic!("no box titled {title:?} on the screen:\n{buf:?}");
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use time::macros::datetime;

    use super::scan::{self, DARK, LIGHT};
    use super::*;
    use crate::domain::SdkLink;
    use crate::tui::app::{App, Header};
    use crate::tui::keymap::Keymap;
    use crate::tui::modal::Modal;
    use crate::tui::view;

    /// As the sandbox issues them: a 24-byte token in URL-safe base64.
    const LINK: &str = "http://127.0.0.1:8080/sdk/q3XbYp0Jt7vKc9LmN2wRz5HfUa8EiGoT";
    /// Behind a tunnel, a longer link and a larger code.
    const TUNNEL_LINK: &str =
        "https://kyc-sandbox-7f3a.eu.ngrok-free.app/sdk/q3XbYp0Jt7vKc9LmN2wRz5HfUa8EiGoT";

    fn theme(name: ThemeName, qr: Background) -> Theme {
        Theme {
            qr,
            ..Theme::new(name)
        }
    }

    /// The dashboard with the SDK dialog open, as the user sees it right after starting KYC.
    fn sdk_dialog(link: &str, theme: &Theme) -> Buffer {
        let now = datetime!(2026-11-30 10:00 UTC);
        let mut app = App::new(Header::default(), now);
        app.modal = Some(Modal::Sdk {
            name: "Radia Example".into(),
            link: SdkLink {
                link: link.into(),
                expires_at: now + time::Duration::minutes(30),
            },
        });
        let mut terminal = Terminal::new(TestBackend::new(100, 40)).unwrap();
        terminal
            .draw(|frame| {
                view::draw(frame, &app, &Keymap::default(), theme);
            })
            .unwrap();
        terminal.backend().buffer().clone()
    }

    fn scanned(link: &str, theme: &Theme, terminal: scan::Terminal, gaps: bool) -> Option<String> {
        let screen = sdk_dialog(link, theme);
        scan::decode(&screen, scan::inside(&screen, "SDK link"), terminal, gaps)
    }

    #[test]
    fn the_sdk_dialog_scans_on_light_and_dark_terminals_whatever_the_theme() {
        for link in [LINK, TUNNEL_LINK] {
            for name in [ThemeName::Dark, ThemeName::Light] {
                for terminal in [LIGHT, DARK] {
                    for gaps in [false, true] {
                        assert_eq!(
                            scanned(link, &theme(name, Background::Light), terminal, gaps).as_deref(),
                            Some(link),
                            "{name:?} theme on a {terminal:?} terminal, gaps between rows: {gaps}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn without_colour_it_scans_on_the_background_it_is_drawn_for() {
        for link in [LINK, TUNNEL_LINK] {
            for gaps in [false, true] {
                let plain = theme(ThemeName::Plain, Background::default());
                assert_eq!(scanned(link, &plain, LIGHT, gaps).as_deref(), Some(link));
                let plain = theme(ThemeName::Plain, Background::Dark);
                assert_eq!(scanned(link, &plain, DARK, gaps).as_deref(), Some(link));
            }
        }
    }

    /// The scan tells a correct code from an inverted one (what the dashboard drew on a light
    /// terminal before it set its own colours), so the tests above mean something.
    #[test]
    fn an_inverted_code_does_not_scan() {
        let for_dark = theme(ThemeName::Plain, Background::Dark);
        assert_eq!(scanned(LINK, &for_dark, LIGHT, false), None);
        let for_light = theme(ThemeName::Plain, Background::Light);
        assert_eq!(scanned(LINK, &for_light, DARK, false), None);
    }

    #[test]
    fn every_cell_is_black_or_white_with_a_quiet_zone_of_four_modules() {
        let code = QrCode::new(LINK, &theme(ThemeName::Dark, Background::Light)).unwrap();
        let modules = qrcode::QrCode::new(LINK).unwrap().width() as u16;
        let size = code.size();
        assert_eq!(size, Size::new(modules + 8, (modules + 8).div_ceil(2)));
        let mut buf = Buffer::empty(Rect::new(0, 0, size.width, size.height));
        (&code).render(buf.area, &mut buf);
        for cell in buf.content() {
            assert!(
                [BLACK, WHITE].contains(&cell.fg) && [BLACK, WHITE].contains(&cell.bg),
                "{cell:?}"
            );
        }
        // Four modules: four columns each side, two rows above and (at least) two below.
        for y in 0..size.height {
            for x in 0..size.width {
                let quiet = x < 4 || x >= size.width - 4 || y < 2 || y >= size.height - 2;
                if quiet {
                    let cell = &buf[(x, y)];
                    assert_eq!((cell.symbol(), cell.bg), (" ", WHITE), "({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn without_colour_it_sets_none() {
        let code = QrCode::new(LINK, &theme(ThemeName::Plain, Background::Light)).unwrap();
        let mut buf = Buffer::empty(Rect::new(0, 0, code.size().width, code.size().height));
        (&code).render(buf.area, &mut buf);
        for cell in buf.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
        }
        // On a light background the quiet zone is the background itself.
        assert_eq!(
            (buf[(0, 0)].symbol(), buf[(0, 0)].modifier),
            (" ", Modifier::empty())
        );
    }

    #[test]
    fn a_cut_code_is_not_drawn() {
        let code = QrCode::new(LINK, &theme(ThemeName::Dark, Background::Light)).unwrap();
        let size = code.size();
        let mut buf = Buffer::empty(Rect::new(0, 0, size.width, size.height - 1));
        (&code).render(buf.area, &mut buf);
        assert_eq!(buf, Buffer::empty(buf.area));
    }

    #[test]
    fn qr_on_the_command_line_names_the_background() {
        use clap::Parser;
        let parse = |args: &[&str]| crate::cli::Cli::try_parse_from(args).map(|cli| cli.dashboard.qr);
        if std::env::var_os("KYCDASH_QR").is_none() {
            assert_eq!(parse(&["kycdash"]).unwrap(), Background::Light);
        }
        assert_eq!(parse(&["kycdash", "--qr", "dark"]).unwrap(), Background::Dark);
        assert!(parse(&["kycdash", "--qr", "black"]).is_err());
    }

    #[test]
    fn a_link_too_long_for_a_code_has_none() {
        let link = format!("https://example.com/{}", "x".repeat(8000));
        assert!(QrCode::new(&link, &Theme::new(ThemeName::Dark)).is_none());
    }
}
