//! The event log across customers, and the toasts over the panes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::block;
use super::format::clock;
use crate::tui::app::{App, Pane};
use crate::tui::theme::Theme;

pub(super) fn draw_log(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let outer = block(" Events ".into(), app.focus == Pane::Log, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let lines: Vec<Line> = app
        .log
        .iter()
        .rev()
        .take(inner.height as usize)
        .map(|l| {
            Line::from(vec![
                Span::styled(format!("{} ", clock(l.at)), theme.dim()),
                Span::styled(
                    l.text.clone(),
                    if l.alert { theme.alert() } else { Style::default() },
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

pub(super) fn draw_toasts(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut y = area.y + 1;
    for toast in app.toasts.iter().rev().take(3) {
        let max = (area.width * 3 / 5).max(30).min(area.width.saturating_sub(2));
        let text_width = toast.text.chars().count() as u16;
        let width = (text_width + 4).min(max);
        let lines = text_width.div_ceil(width.saturating_sub(2).max(1)).max(1);
        let rect = Rect {
            x: area.x + area.width.saturating_sub(width + 1),
            y,
            width,
            height: lines + 2,
        };
        if rect.bottom() > area.bottom() {
            break;
        }
        y = rect.bottom();
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(toast.text.clone())
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::ALL).border_style(theme.alert())),
            rect,
        );
    }
}
