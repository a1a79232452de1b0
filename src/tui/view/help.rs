//! The help overlay of `?`: every command and its keys, from the one list in `keymap`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::keymap::Keymap;
use crate::tui::theme::Theme;

pub(super) fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
    let help = keymap.help();
    let height = (help.len() as u16 + 6).min(area.height);
    let width = 72.min(area.width);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let mut lines: Vec<Line> = help
        .into_iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<18}"), theme.accent()),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(
        " Mouse: click selects, the wheel scrolls. Keys: [keys] in config.toml.",
        theme.dim(),
    ));
    lines.push(Line::styled(" Any key closes this help.", theme.dim()));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Keys ", theme.title()))
                .border_style(theme.focused_border()),
        ),
        rect,
    );
}
