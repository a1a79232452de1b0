//! The customer form of `n` and `e`, drawn.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::tui::form::Form;
use crate::tui::theme::Theme;

/// A customer form: a label and an input a line, the focused field's accepted values under
/// it, each error under its field; scrolled so the focused field is in view.
pub(super) fn draw_form(frame: &mut Frame, area: Rect, form: &Form, theme: &Theme) {
    const LABEL: usize = 17;
    let width = 76.min(area.width);
    let input_width = (width as usize).saturating_sub(LABEL + 4);
    let mut lines: Vec<Line> = Vec::new();
    let mut focus_line = 0;
    for (n, field) in form.fields.iter().enumerate() {
        let focused = n == form.focus;
        if focused {
            focus_line = lines.len();
        }
        let value = field.input.value();
        let scroll = field.input.visual_scroll(input_width.saturating_sub(1));
        let shown: String = value.chars().skip(scroll).take(input_width).collect();
        let mut spans = vec![Span::styled(
            format!("{:<LABEL$}", field.label),
            if focused { theme.accent() } else { theme.dim() },
        )];
        if focused {
            let at = field.input.visual_cursor().saturating_sub(scroll);
            let before: String = shown.chars().take(at).collect();
            let under: String = shown.chars().nth(at).map_or(" ".into(), String::from);
            let after: String = shown.chars().skip(at + 1).collect();
            spans.push(Span::raw(before));
            spans.push(Span::styled(
                under,
                theme.selected().add_modifier(Modifier::REVERSED),
            ));
            spans.push(Span::raw(after));
        } else {
            spans.push(Span::raw(shown));
        }
        lines.push(Line::from(spans));
        if let Some(error) = &field.error {
            lines.push(Line::styled(format!("{:LABEL$}✗ {error}", ""), theme.bad()));
        } else if focused && !field.hint.is_empty() {
            lines.push(Line::styled(format!("{:LABEL$}{}", "", field.hint), theme.dim()));
        }
    }
    let mut footer = Vec::new();
    if let Some(message) = &form.message {
        footer.push(Line::styled(message.clone(), theme.bad()));
    }
    footer.push(if form.confirm_discard {
        Line::styled(
            "Discard what you typed? y discards, any other key goes back",
            theme.alert(),
        )
    } else if form.sending {
        Line::styled("saving…", theme.dim())
    } else {
        Line::styled("Tab/↑↓ move · Enter save · Esc close", theme.dim())
    });
    let room = (area.height as usize).saturating_sub(4 + footer.len()).max(3);
    let start = focus_line
        .saturating_sub(room.saturating_sub(3))
        .min(lines.len().saturating_sub(room));
    let mut shown: Vec<Line> = lines.into_iter().skip(start).take(room).collect();
    shown.push(Line::default());
    shown.extend(footer);
    let rect = centered(area, width, shown.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(shown).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" {} ", form.title()), theme.title()))
                .border_style(theme.focused_border()),
        ),
        rect,
    );
}
