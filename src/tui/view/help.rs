//! The help overlay of `?`: every command and its keys, from the one list in `keymap`. As
//! wide as its longest line where the terminal allows; narrower, long lines wrap under
//! their text, never cut.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::centered;
use crate::tui::keymap::Keymap;
use crate::tui::theme::Theme;

/// One line where it fits (every row counts: the help should fit a 40-row terminal).
const FOOTER: [&str; 1] =
    ["Mouse: click selects, the wheel scrolls. Keys: [keys] in config.toml. Any key closes this help."];

pub(super) fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
    let help = keymap.help();
    // The keys' column: the widest keys and a space, at least 18 wide.
    let keys_width = help
        .iter()
        .map(|(keys, _)| width(keys))
        .max()
        .unwrap_or(0)
        .max(17)
        + 1;
    let widest = help
        .iter()
        .map(|(_, what)| 1 + keys_width + width(what))
        .chain(FOOTER.iter().map(|line| 1 + width(line)))
        .max()
        .unwrap_or(0);
    // One space of margin on the right, and the borders.
    let box_width = (widest as u16 + 3).min(area.width);
    let text_width = (box_width as usize).saturating_sub(3);
    let entries = |help: &[(String, &str)]| {
        let mut lines: Vec<Line> = Vec::new();
        for (keys, what) in help {
            let room = text_width.saturating_sub(1 + keys_width).max(10);
            for (n, part) in wrap(what, room).into_iter().enumerate() {
                let keys = if n == 0 { keys.as_str() } else { "" };
                lines.push(Line::from(vec![
                    Span::styled(format!(" {keys:<keys_width$}"), theme.accent()),
                    Span::raw(part),
                ]));
            }
        }
        lines
    };
    let mut lines = entries(&help);
    let mut box_width = box_width;
    // Too tall for the terminal but room for two columns side by side: the commands in two
    // halves, each as wide as one column was.
    let footer_height = FOOTER.len();
    if lines.len() + footer_height + 2 > area.height as usize && (2 * text_width + 4) as u16 <= area.width {
        let (first, second) = help.split_at(help.len().div_ceil(2));
        let (left, right) = (entries(first), entries(second));
        lines = (0..left.len().max(right.len()))
            .map(|n| {
                let left = left.get(n).cloned().unwrap_or_default();
                let pad = (text_width + 1).saturating_sub(left.width());
                let mut spans = left.spans;
                spans.push(Span::raw(" ".repeat(pad)));
                spans.extend(right.get(n).cloned().unwrap_or_default().spans);
                Line::from(spans)
            })
            .collect();
        box_width = (2 * text_width + 4) as u16;
    }
    for line in FOOTER {
        for part in wrap(line, (box_width as usize).saturating_sub(4).max(10)) {
            lines.push(Line::styled(format!(" {part}"), theme.dim()));
        }
    }
    let rect = centered(area, box_width, lines.len() as u16 + 2);
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

fn width(text: &str) -> usize {
    text.chars().count()
}

/// `text` in lines of at most `room` characters, broken between words (a word longer than
/// a line is broken where the line ends).
fn wrap(text: &str, room: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("one line at least");
        let needed = width(line) + usize::from(!line.is_empty()) + width(word);
        if needed <= room {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            continue;
        }
        let mut rest: Vec<char> = word.chars().collect();
        if !line.is_empty() {
            lines.push(String::new());
        }
        while rest.len() > room {
            let tail = rest.split_off(room);
            *lines.last_mut().expect("one line at least") = rest.into_iter().collect();
            lines.push(String::new());
            rest = tail;
        }
        *lines.last_mut().expect("one line at least") = rest.into_iter().collect();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_breaks_between_words_and_keeps_every_one() {
        assert_eq!(
            wrap("upload a document for the customer", 12),
            ["upload a", "document for", "the customer"]
        );
        assert_eq!(wrap("short", 12), ["short"]);
        assert_eq!(
            wrap("a verylongwordindeed", 6),
            ["a", "verylo", "ngword", "indeed"]
        );
    }
}
