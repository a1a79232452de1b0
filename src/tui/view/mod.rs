//! Drawing the dashboard: header, tabs, the customer table (rows built for the visible slice
//! only), the details pane, the event log, toasts, help, and the key-hint bar. Reads the
//! [`App`]; changes nothing. One module a component; [`layout`] decides where each goes,
//! for drawing and for paging alike.

mod bars;
mod details;
mod events;
mod form;
mod format;
mod help;
mod layout;
mod modals;
mod table;
mod webhooks;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

pub use self::layout::{MIN_HEIGHT, MIN_WIDTH, Screen, table_rows_for};
use super::app::App;
use super::keymap::Keymap;
use super::theme::Theme;

/// Where the table's rows were drawn, for mouse clicks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hitboxes {
    pub table_rows: Rect,
}

pub fn draw(frame: &mut Frame, app: &App, keymap: &Keymap, theme: &Theme) -> Hitboxes {
    let area = frame.area();
    let Some(screen) = Screen::of(area, app.focus) else {
        let text = format!(
            "The terminal is {}×{}; kycdash needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\nMake the window larger, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return Hitboxes::default();
    };
    bars::draw_header(frame, screen.header, app, theme);
    bars::draw_tabs(frame, screen.tabs, app, theme);
    let hitboxes = match screen.table {
        Some(table) => table::draw_table(frame, table, app, theme),
        None => Hitboxes::default(),
    };
    details::draw_details(frame, screen.details, app, theme);
    events::draw_log(frame, screen.log, app, theme);
    bars::draw_hints(frame, screen.hints, app, keymap, theme);
    events::draw_toasts(frame, screen.main, app, theme);
    if let Some(modal) = &app.modal {
        modals::draw_modal(frame, area, modal, app, theme);
    }
    if app.help {
        help::draw_help(frame, area, keymap, theme);
    }
    hitboxes
}

fn block<'a>(title: String, focused: bool, theme: &Theme) -> Block<'a> {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, theme.title()));
    if focused {
        block.border_style(theme.focused_border())
    } else {
        block.border_style(theme.dim())
    }
}

/// A box of `width`×`height` in the middle of `area` (clipped to it).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let (width, height) = (width.min(area.width), height.min(area.height));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests;
