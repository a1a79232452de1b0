//! The dialogs over the dashboard: confirmations, menus, the SDK link with its QR code, the
//! file picker (the form and the webhooks view have their own modules).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use super::form::draw_form;
use super::format::{expiry, human_size};
use super::webhooks::draw_webhooks;
use crate::domain::SdkLink;
use crate::tui::app::App;
use crate::tui::modal::{Files, MenuItem, Modal};
use crate::tui::qr::QrCode;
use crate::tui::theme::Theme;

pub(super) fn draw_modal(frame: &mut Frame, area: Rect, modal: &Modal, app: &App, theme: &Theme) {
    let (title, lines, qr) = match modal {
        Modal::Confirm { title, lines, .. } => (title.as_str(), question(lines, "yes", "no", theme), None),
        Modal::Menu { title, items, cursor } => (title.as_str(), menu_lines(items, *cursor, theme), None),
        Modal::Sdk { name, link } => (
            " SDK link ",
            sdk_lines(name, link, app, theme),
            QrCode::new(&link.link, theme),
        ),
        Modal::Files(files) => (" Choose a file to upload ", file_lines(files, area, theme), None),
        Modal::Form(form) => return draw_form(frame, area, form, theme),
        Modal::Webhooks(view) => return draw_webhooks(frame, area, view, app, theme),
        Modal::ConfirmQuit { lines } => (" Quit? ", question(lines, "quit", "stay", theme), None),
    };
    draw_dialog(frame, area, title, lines, qr, theme);
}

/// A question: its lines, then the keys that answer it.
fn question<'a>(lines: &'a [String], yes: &'a str, no: &'a str, theme: &Theme) -> Vec<Line<'a>> {
    let mut text: Vec<Line> = lines.iter().map(|l| Line::from(l.as_str())).collect();
    text.push(Line::default());
    text.push(Line::from(vec![
        Span::styled(" y ", theme.accent()),
        Span::raw(format!("{yes}   ")),
        Span::styled(" n ", theme.accent()),
        Span::raw(no),
    ]));
    text
}

/// A menu: each item with its key, the cursor's marked; why the item under the cursor
/// cannot be picked, if it cannot.
fn menu_lines<'a>(items: &'a [MenuItem], cursor: usize, theme: &Theme) -> Vec<Line<'a>> {
    let mut text: Vec<Line> = items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let pointer = if n == cursor { "›" } else { " " };
            let style = match (&item.disabled, n == cursor) {
                (Some(_), _) => theme.dim(),
                (None, true) => theme.selected(),
                (None, false) => Style::default(),
            };
            Line::from(vec![
                Span::styled(format!("{pointer} {} ", item.key), theme.accent()),
                Span::styled(item.label.clone(), style),
            ])
        })
        .collect();
    text.push(Line::default());
    if let Some(why) = items.get(cursor).and_then(|i| i.disabled.as_ref()) {
        text.push(Line::styled(format!(" {why}"), theme.dim()));
    }
    text.push(Line::styled(
        " ↑↓ choose · Enter or its number do it · Esc close",
        theme.dim(),
    ));
    text
}

fn sdk_lines<'a>(name: &str, link: &SdkLink, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    vec![
        Line::from(format!("KYC started for {name}. Hand the end user this link:")),
        Line::default(),
        Line::styled(link.link.clone(), theme.accent()),
        Line::from(expiry(link.expires_at - app.server_now())),
        Line::default(),
        Line::from(vec![
            Span::styled(" y ", theme.accent()),
            Span::raw("copy the link   "),
            Span::styled(" Esc ", theme.accent()),
            Span::raw("close"),
        ]),
    ]
}

/// A dialog box sized to its lines (and its QR code, where the code fits whole: a cut code
/// does not scan), in the middle of the screen.
fn draw_dialog(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    qr: Option<QrCode>,
    theme: &Theme,
) {
    let text_width = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16;
    let qr_height = qr.as_ref().map_or(0, |q| q.size().height);
    let qr_width = qr.as_ref().map_or(0, |q| q.size().width);
    let show_qr =
        qr.is_some() && qr_height + lines.len() as u16 + 2 <= area.height && qr_width + 4 <= area.width;
    let height = lines.len() as u16 + 2 + if show_qr { qr_height } else { 0 };
    let width = text_width
        .max(if show_qr { qr_width } else { 0 })
        .max(title.chars().count() as u16)
        + 4;
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {} ", title.trim()), theme.title()))
        .border_style(theme.focused_border());
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [text_area, qr_area] =
        Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
    if let (true, Some(qr)) = (show_qr, qr) {
        frame.render_widget(qr, qr_area);
    }
}

/// The file picker's lines: the folder, a window of its entries around the cursor, the keys.
fn file_lines<'a>(files: &'a Files, area: Rect, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        Line::from(format!("for {}", files.name)),
        Line::styled(files.dir.display().to_string(), theme.dim()),
        Line::default(),
    ];
    match &files.entries {
        None => lines.push(Line::styled("reading…", theme.dim())),
        Some(Err(error)) => lines.push(Line::styled(error.clone(), theme.bad())),
        Some(Ok(entries)) if entries.is_empty() => {
            lines.push(Line::styled("(empty: ← goes up a folder)", theme.dim()))
        }
        Some(Ok(entries)) => {
            let room = (area.height as usize).saturating_sub(12).clamp(3, 15);
            let start = files
                .cursor
                .saturating_sub(room / 2)
                .min(entries.len().saturating_sub(room));
            for (n, entry) in entries.iter().enumerate().skip(start).take(room) {
                let selected = n == files.cursor;
                let (name, size) = if entry.dir {
                    (format!("{}/", entry.name), String::new())
                } else {
                    (entry.name.clone(), human_size(entry.size))
                };
                let style = if selected {
                    theme.selected()
                } else {
                    Style::default()
                };
                lines.push(Line::from(vec![
                    Span::styled(if selected { "› " } else { "  " }, theme.accent()),
                    Span::styled(format!("{name:<40} {size:>8}"), style),
                ]));
            }
        }
    }
    lines.push(Line::default());
    lines.push(Line::styled(
        " ↑↓ move · Enter open or choose · ← up a folder · Esc close",
        theme.dim(),
    ));
    lines
}
