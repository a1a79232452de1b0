//! Drawing the dashboard: header, tabs, the customer table (rows built for the visible slice
//! only), the details pane, the event log, toasts, help, and the key-hint bar. Reads the
//! [`App`]; changes nothing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, Tabs, Wrap};
use time::OffsetDateTime;

use super::app::{App, Column, Details, Pane, Row, Tab};
use super::keymap::Keymap;
use super::modal::Modal;
use super::qr::QrCode;
use super::theme::{Theme, symbol};
use crate::domain::{Advice, advise};

/// The smallest terminal the layout works in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Where the table's rows were drawn, for mouse clicks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hitboxes {
    pub table_rows: Rect,
}

pub fn draw(frame: &mut Frame, app: &App, keymap: &Keymap, theme: &Theme) -> Hitboxes {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "The terminal is {}×{}; kycdash needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\nMake the window larger, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return Hitboxes::default();
    }
    let log_height = if area.height >= 40 { 8 } else { 5 };
    let [header, tabs, main, log, hints] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(log_height),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app, theme);
    draw_tabs(frame, tabs, app, theme);
    let (table, details) = if area.width >= 140 {
        let [t, d] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(main);
        (Some(t), d)
    } else if app.focus == Pane::Details {
        // Stacked, a focused details pane takes the whole height (room for the QR code).
        (None, main)
    } else {
        let [t, d] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(main);
        (Some(t), d)
    };
    let hitboxes = match table {
        Some(table) => draw_table(frame, table, app, theme),
        None => Hitboxes::default(),
    };
    draw_details(frame, details, app, theme);
    draw_log(frame, log, app, theme);
    draw_hints(frame, hints, app, keymap, theme);
    draw_toasts(frame, main, app, theme);
    if let Some(modal) = &app.modal {
        draw_modal(frame, area, modal, app, theme);
    }
    if app.help {
        draw_help(frame, area, keymap, theme);
    }
    hitboxes
}

/// How many table rows fit in a terminal of this size (for paging and scrolling).
pub fn table_rows_for(width: u16, height: u16) -> usize {
    if width < MIN_WIDTH || height < MIN_HEIGHT {
        return 1;
    }
    let log_height = if height >= 40 { 8 } else { 5 };
    let main = height.saturating_sub(2 + 1 + log_height + 1);
    let table = if width >= 140 { main } else { main / 2 };
    // Borders and the column titles.
    table.saturating_sub(3).max(1) as usize
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let h = &app.header;
    let mode = match (h.sandbox, &h.profile) {
        (true, _) => "SANDBOX".to_string(),
        (false, Some(profile)) => format!("LIVE · {profile}"),
        (false, None) => "LIVE".to_string(),
    };
    let mut first = vec![
        Span::styled(" kycdash ", theme.title()),
        Span::styled(format!("[{mode}]"), theme.accent()),
    ];
    if h.read_only {
        first.push(Span::styled(" [READ-ONLY]", theme.alert()));
    }
    first.push(Span::raw(format!("  {}", h.api_url)));
    let receiver = match &h.webhook_url {
        Some(url) => {
            let age = h.last_webhook.map_or("no event yet".to_string(), |at| {
                format!("last event {} ago", ago(app.now - at))
            });
            format!("receiver {} · {age} · {} rejected", short_url(url), h.rejected)
        }
        None => "no receiver (polling only)".into(),
    };
    first.push(Span::styled(format!("  {receiver}"), theme.dim()));

    let mut second = vec![Span::raw(" poller ")];
    if h.paused {
        second.push(Span::styled("PAUSED", theme.alert()));
    } else {
        second.push(Span::raw(format!("{} in flight", h.in_flight)));
    }
    second.push(Span::raw(format!(" · {} errors", h.poll_errors)));
    if h.sandbox {
        second.push(Span::styled(
            if h.demo { " · demo on" } else { " · demo off" },
            theme.dim(),
        ));
    }
    second.push(Span::raw("   "));
    for (stage, count) in app.stage_counts() {
        second.push(Span::styled(
            format!("{} {count} ", symbol(Some(stage))),
            theme.stage(Some(stage)),
        ));
    }
    if let Some(inbox) = &h.inbox {
        second.push(Span::styled(format!("  inbox {inbox}"), theme.dim()));
    }
    frame.render_widget(Paragraph::new(vec![Line::from(first), Line::from(second)]), area);
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let counts = app.tab_counts();
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(n, tab)| Line::from(format!("{} {} ({})", n + 1, tab.title(), counts[n])))
        .collect();
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let mut filter = String::new();
    if app.editing_filter || !app.filter.is_empty() {
        filter = format!("  /{}{}", app.filter, if app.editing_filter { "▏" } else { "" });
    }
    let [tabs, rest] = Layout::horizontal([
        Constraint::Min(10),
        Constraint::Length(filter.chars().count() as u16 + 1),
    ])
    .areas(area);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(theme.selected())
            .divider("│"),
        tabs,
    );
    frame.render_widget(Paragraph::new(Span::styled(filter, theme.accent())), rest);
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

fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) -> Hitboxes {
    let wide = area.width >= 110;
    let columns: Vec<Column> = if wide {
        Column::ALL.to_vec()
    } else {
        vec![
            Column::Name,
            Column::Stage,
            Column::InStage,
            Column::NextAction,
            Column::SdkLink,
        ]
    };
    let title = format!(
        " Customers {}/{} · sorted by {}{} ",
        app.view.len(),
        app.rows.len(),
        app.sort.title(),
        if app.descending { " ↑" } else { "" }
    );
    let outer = block(title, app.focus == Pane::Table, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if app.rows.is_empty() {
        frame.render_widget(
            Paragraph::new("No customers yet. They appear here as the API lists them.").style(theme.dim()),
            inner,
        );
        return Hitboxes::default();
    }
    if app.view.is_empty() {
        frame.render_widget(
            Paragraph::new("Nothing matches this tab and filter (Esc clears the filter).").style(theme.dim()),
            inner,
        );
        return Hitboxes::default();
    }
    let visible = inner.height.saturating_sub(1) as usize;
    let start = app.offset.min(app.view.len());
    let end = (start + visible).min(app.view.len());
    let rows: Vec<TableRow> = app.view[start..end]
        .iter()
        .map(|&i| {
            let row = &app.rows[i];
            let style = if Some(row.id()) == app.selected {
                theme.selected()
            } else {
                Style::default()
            };
            TableRow::new(columns.iter().map(|c| cell(row, *c, app, theme))).style(style)
        })
        .collect();
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|c| match c {
            Column::Name => Constraint::Min(14),
            Column::Stage => Constraint::Length(25),
            Column::InStage => Constraint::Length(8),
            Column::NextAction => Constraint::Length(17),
            Column::Onboarding => Constraint::Length(17),
            Column::Failed => Constraint::Length(6),
            Column::SdkLink => Constraint::Length(8),
            Column::LastChange => Constraint::Length(8),
        })
        .collect();
    let header = TableRow::new(columns.iter().map(|c| {
        let mark = if *c == app.sort {
            if app.descending { " ▲" } else { " ▼" }
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .style(theme.title().add_modifier(Modifier::UNDERLINED));
    frame.render_widget(Table::new(rows, widths).header(header).column_spacing(1), inner);
    Hitboxes {
        table_rows: Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        },
    }
}

fn cell<'a>(row: &'a Row, column: Column, app: &App, theme: &Theme) -> Cell<'a> {
    let status = row.status();
    let now = app.now;
    match column {
        Column::Name => Cell::from(row.name()),
        Column::Stage => Cell::from(Span::styled(
            format!(
                "{} {}",
                symbol(row.stage()),
                row.stage().map_or("unknown yet", |s| s.as_str())
            ),
            theme.stage(row.stage()),
        )),
        Column::InStage => Cell::from(row.state.since.map_or(String::new(), |since| ago(now - since))),
        Column::NextAction => match app.in_flight_for(row.id()) {
            Some(request) => Cell::from(Span::styled(format!("⋯ {}", request.doing()), theme.accent())),
            None => Cell::from(row.next_action().map_or("—", |a| a.as_str())),
        },
        Column::Onboarding => Cell::from(row.onboarding_status().map_or("—", |s| s.as_str())),
        Column::Failed => Cell::from(status.map_or(String::new(), |s| s.required_failed.len().to_string())),
        Column::SdkLink => match status.and_then(|s| s.sdk.as_ref()) {
            Some(sdk) => {
                let left = sdk.expires_at - app.server_now();
                let style = if left < time::Duration::minutes(5) {
                    theme.alert()
                } else {
                    Style::default()
                };
                Cell::from(Span::styled(countdown(left), style))
            }
            None => Cell::from(""),
        },
        Column::LastChange => Cell::from(ago(now - row.last_change)),
    }
}

fn draw_details(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(row) = app.selected_row() else {
        frame.render_widget(block(" Details ".into(), app.focus == Pane::Details, theme), area);
        return;
    };
    let outer = block(format!(" {} ", row.name()), app.focus == Pane::Details, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let details = app.details.as_ref().filter(|d| d.id == row.id());
    let (text_area, qr_area) = match details
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.sdk.as_ref())
    {
        Some(sdk) if inner.width >= 70 => match QrCode::new(&sdk.link, theme) {
            Some(qr) if qr.size().height <= inner.height && qr.size().width + 1 < inner.width / 2 => {
                let width = qr.size().width + 1;
                let [t, q] =
                    Layout::horizontal([Constraint::Min(20), Constraint::Length(width)]).areas(inner);
                (t, Some((q, qr)))
            }
            _ => (inner, None),
        },
        _ => (inner, None),
    };
    frame.render_widget(
        Paragraph::new(details_text(row, details, app, theme)).wrap(Wrap { trim: false }),
        text_area,
    );
    if let Some((area, qr)) = qr_area {
        let area = Rect {
            x: area.x + 1,
            width: area.width.saturating_sub(1),
            ..area
        };
        frame.render_widget(qr, area);
    }
}

/// The details of one customer as lines of text.
pub fn details_text<'a>(row: &'a Row, details: Option<&Details>, app: &App, theme: &Theme) -> Text<'a> {
    let summary = &row.state.customer;
    let mut lines = Vec::new();
    let mut profile = vec![Span::styled(summary.id.to_string(), theme.dim())];
    if let Some(external) = &summary.external_id {
        profile.push(Span::raw(format!("  ext {external}")));
    }
    if let Some(email) = &summary.email {
        profile.push(Span::raw(format!("  {email}")));
    }
    lines.push(Line::from(profile));
    let customer = details.and_then(|d| d.customer.as_ref());
    match customer {
        Some(customer) => {
            let kyc = customer.kyc.as_ref();
            let nationality = kyc.and_then(|k| k.nationality.as_deref()).unwrap_or("—");
            let country = kyc
                .and_then(|k| k.main_address.as_ref())
                .and_then(|a| a.country_code.as_deref())
                .unwrap_or("—");
            lines.push(Line::from(format!(
                "nationality {nationality} · address {country} · IP {}",
                customer
                    .ip_address
                    .as_deref()
                    .unwrap_or("none (proof of address needed)")
            )));
        }
        None => lines.push(Line::styled("Loading the profile…", theme.dim())),
    }
    lines.push(Line::from(vec![
        Span::styled(format!("{} ", symbol(row.stage())), theme.stage(row.stage())),
        Span::styled(
            row.stage().map_or("unknown yet", |s| s.as_str()),
            theme.stage(row.stage()),
        ),
        Span::raw(
            row.onboarding_status()
                .map_or(String::new(), |s| format!(" · {s}")),
        ),
        Span::raw(
            row.state
                .since
                .map_or(String::new(), |s| format!(" · for {}", ago(app.now - s))),
        ),
    ]));
    lines.push(Line::default());
    match (customer, details.and_then(|d| d.status.as_ref())) {
        (Some(customer), Some(status)) => {
            let Advice {
                headline,
                fields_to_patch,
                documents_to_upload,
                sdk,
            } = advise(customer, status);
            lines.push(Line::from(vec![
                Span::styled("Next: ", theme.title()),
                Span::raw(headline),
            ]));
            // What the headline already names is not repeated.
            let next = status.next_action;
            if !fields_to_patch.is_empty() && next != Some(crate::domain::NextAction::UpdateProfile) {
                lines.push(Line::from(format!("  fields: {}", fields_to_patch.join(", "))));
            }
            if !documents_to_upload.is_empty() && next != Some(crate::domain::NextAction::UploadDocument) {
                let docs: Vec<&str> = documents_to_upload.iter().map(|d| d.as_str()).collect();
                lines.push(Line::from(format!("  upload: {}", docs.join(", "))));
            }
            if let Some(sdk) = sdk {
                lines.push(Line::from(vec![
                    Span::raw("  SDK link "),
                    Span::styled(sdk.link.clone(), theme.accent()),
                ]));
                lines.push(Line::from(format!(
                    "  expires in {}",
                    countdown(sdk.expires_at - app.server_now())
                )));
            }
            lines.push(Line::default());
            lines.push(Line::styled("Checks", theme.title()));
            for check in &status.checks {
                let (mark, style) = if check.passed {
                    ("✓", theme.ok())
                } else {
                    ("✗", theme.bad())
                };
                let mut spans = vec![
                    Span::styled(format!(" {mark} "), style),
                    Span::raw(format!("{:<27}", check.check_type.as_str())),
                ];
                if !check.required {
                    spans.push(Span::styled("optional ", theme.dim()));
                }
                if let Some(action) = check.suggested_action {
                    spans.push(Span::styled(action.as_str(), theme.dim()));
                }
                lines.push(Line::from(spans));
            }
        }
        (None, _) if details.is_some() => lines.push(Line::styled(
            "Not in the cache yet: the next poll reads it.",
            theme.dim(),
        )),
        (Some(_), None) if details.is_some() => lines.push(Line::styled(
            "No status yet: the next poll reads it.",
            theme.dim(),
        )),
        _ => lines.push(Line::styled("Loading the status…", theme.dim())),
    }
    if let Some(documents) = details.and_then(|d| d.documents.as_ref()) {
        lines.push(Line::default());
        lines.push(Line::styled("Documents", theme.title()));
        match documents {
            Ok(documents) if documents.is_empty() => lines.push(Line::styled(" none on file", theme.dim())),
            Ok(documents) => {
                for document in documents.iter().take(6) {
                    lines.push(Line::from(vec![
                        Span::raw(format!(" {:<17}", document.document_type.as_str())),
                        Span::raw(format!(
                            "{} · {} · {}",
                            document.file_name.as_deref().unwrap_or("(no name)"),
                            human_size(document.size),
                            when(document.uploaded_at, app.server_now())
                        )),
                        Span::styled(if document.current { "" } else { " · replaced" }, theme.dim()),
                    ]));
                }
                if documents.len() > 6 {
                    lines.push(Line::styled(
                        format!(" and {} more", documents.len() - 6),
                        theme.dim(),
                    ));
                }
            }
            Err(error) => lines.push(Line::styled(format!(" cannot be read: {error}"), theme.bad())),
        }
    }
    let session = app.timelines.get(&row.id());
    let history = details.map(|d| d.history.as_slice()).unwrap_or_default();
    if session.is_some_and(|t| !t.is_empty()) || !history.is_empty() {
        lines.push(Line::default());
        lines.push(Line::styled("Timeline", theme.title()));
        let newest_first = session
            .into_iter()
            .flat_map(|t| t.iter().rev())
            .chain(history.iter().rev());
        for entry in newest_first.take(8) {
            lines.push(Line::from(vec![
                Span::styled(format!(" {} ", when(entry.at, app.now)), theme.dim()),
                Span::styled(
                    entry.text.clone(),
                    if entry.alert {
                        theme.alert()
                    } else {
                        Style::default()
                    },
                ),
            ]));
        }
    }
    Text::from(lines)
}

fn draw_log(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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

fn draw_hints(frame: &mut Frame, area: Rect, app: &App, keymap: &Keymap, theme: &Theme) {
    let mut spans = Vec::new();
    if app.editing_filter {
        spans.push(Span::styled(" filter: ", theme.accent()));
        spans.push(Span::raw(
            "type to narrow · Enter keep · Esc clear · a leading ! inverts",
        ));
    } else {
        for (key, hint) in keymap.hints(|command| app.available(command)) {
            spans.push(Span::styled(format!(" {key}"), theme.accent()));
            spans.push(Span::raw(format!(" {hint} ")));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_toasts(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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

fn draw_modal(frame: &mut Frame, area: Rect, modal: &Modal, app: &App, theme: &Theme) {
    let (title, lines, qr) = match modal {
        Modal::Confirm { title, lines, .. } => {
            let mut text: Vec<Line> = lines.iter().map(|l| Line::from(l.as_str())).collect();
            text.push(Line::default());
            text.push(Line::from(vec![
                Span::styled(" y ", theme.accent()),
                Span::raw("yes   "),
                Span::styled(" n ", theme.accent()),
                Span::raw("no"),
            ]));
            (title.as_str(), text, None)
        }
        Modal::Menu { title, items, cursor } => {
            let mut text: Vec<Line> = items
                .iter()
                .enumerate()
                .map(|(n, item)| {
                    let pointer = if n == *cursor { "›" } else { " " };
                    let style = match (&item.disabled, n == *cursor) {
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
            if let Some(why) = items.get(*cursor).and_then(|i| i.disabled.as_ref()) {
                text.push(Line::styled(format!(" {why}"), theme.dim()));
            }
            text.push(Line::styled(
                " ↑↓ choose · Enter or its number do it · Esc close",
                theme.dim(),
            ));
            (title.as_str(), text, None)
        }
        Modal::Sdk { name, link } => {
            let text = vec![
                Line::from(format!("KYC started for {name}. Hand the end user this link:")),
                Line::default(),
                Line::styled(link.link.clone(), theme.accent()),
                Line::from(format!(
                    "expires in {}",
                    countdown(link.expires_at - app.server_now())
                )),
                Line::default(),
                Line::from(vec![
                    Span::styled(" y ", theme.accent()),
                    Span::raw("copy the link   "),
                    Span::styled(" Esc ", theme.accent()),
                    Span::raw("close"),
                ]),
            ];
            (" SDK link ", text, QrCode::new(&link.link, theme))
        }
        Modal::Files(files) => (" Choose a file to upload ", file_lines(files, area, theme), None),
        Modal::Form(form) => return draw_form(frame, area, form, theme),
        Modal::Webhooks(view) => return draw_webhooks(frame, area, view, app, theme),
        Modal::ConfirmQuit { lines } => {
            let mut text: Vec<Line> = lines.iter().map(|l| Line::from(l.as_str())).collect();
            text.push(Line::default());
            text.push(Line::from(vec![
                Span::styled(" y ", theme.accent()),
                Span::raw("quit   "),
                Span::styled(" n ", theme.accent()),
                Span::raw("stay"),
            ]));
            (" Quit? ", text, None)
        }
    };
    let text_width = lines.iter().map(|l| l.width()).max().unwrap_or(0) as u16;
    let qr_height = qr.as_ref().map_or(0, |q| q.size().height);
    let qr_width = qr.as_ref().map_or(0, |q| q.size().width);
    // The QR code only where it fits whole: a cut code does not scan.
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

/// A customer form: a label and an input a line, the focused field's accepted values under
/// it, each error under its field; scrolled so the focused field is in view.
fn draw_form(frame: &mut Frame, area: Rect, form: &super::form::Form, theme: &Theme) {
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

/// The webhooks view: the endpoints (secret hint only), then the selected one's deliveries,
/// newest first, with their attempts; the selected delivery's attempts in full.
fn draw_webhooks(frame: &mut Frame, area: Rect, view: &super::modal::Webhooks, app: &App, theme: &Theme) {
    use crate::api::types::DeliveryStatus;
    let rect = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    };
    let mut lines: Vec<Line> = Vec::new();
    match &view.endpoints {
        None => lines.push(Line::styled("reading the endpoints…", theme.dim())),
        Some(Err(error)) => lines.push(Line::styled(
            format!("cannot read the endpoints: {error}"),
            theme.bad(),
        )),
        Some(Ok(endpoints)) if endpoints.is_empty() => {
            lines.push(Line::styled("No webhook endpoints are registered.", theme.dim()))
        }
        Some(Ok(endpoints)) => {
            for (n, endpoint) in endpoints.iter().enumerate() {
                let selected = n == view.endpoint;
                lines.push(Line::from(vec![
                    Span::styled(if selected { "› " } else { "  " }, theme.accent()),
                    Span::styled(
                        endpoint.url.clone(),
                        if selected {
                            theme.selected()
                        } else {
                            Style::default()
                        },
                    ),
                    Span::styled(format!("  secret {}", endpoint.secret_hint), theme.dim()),
                ]));
            }
        }
    }
    lines.push(Line::default());
    let room = (rect.height as usize).saturating_sub(lines.len() + 9).max(3);
    match &view.deliveries {
        None if view.endpoints.is_some() => lines.push(Line::styled("reading the deliveries…", theme.dim())),
        None => {}
        Some(Err(error)) => lines.push(Line::styled(
            format!("cannot read the deliveries: {error}"),
            theme.bad(),
        )),
        Some(Ok(deliveries)) if deliveries.is_empty() => {
            lines.push(Line::styled("No deliveries to this endpoint yet.", theme.dim()))
        }
        Some(Ok(deliveries)) => {
            lines.push(Line::styled(
                format!(
                    "  {:<9} {:<33} {:<20} {:<10} {:>8} {:<14} {}",
                    "Created", "Event", "Customer", "Status", "Attempts", "Last answer", "Next retry"
                ),
                theme.title(),
            ));
            let start = view
                .cursor
                .saturating_sub(room / 2)
                .min(deliveries.len().saturating_sub(room));
            for (n, delivery) in deliveries.iter().enumerate().skip(start).take(room) {
                let selected = n == view.cursor;
                let last = delivery.attempts.last();
                let answer = match last {
                    Some(a) => match (a.response_status, &a.error) {
                        (Some(status), _) => format!("{status} {} ms", a.duration_ms),
                        (None, Some(error)) => error.chars().take(14).collect(),
                        (None, None) => "—".into(),
                    },
                    None => "—".into(),
                };
                let status_style = match delivery.status {
                    DeliveryStatus::Delivered => theme.ok(),
                    DeliveryStatus::Failed => theme.bad(),
                    _ => theme.dim(),
                };
                let customer: String = app.name_of(delivery.customer_id).chars().take(20).collect();
                lines.push(Line::from(vec![
                    Span::styled(if selected { "› " } else { "  " }, theme.accent()),
                    Span::styled(
                        format!(
                            "{:<9} {:<33} {:<20} ",
                            clock(delivery.created_at),
                            delivery.event_type,
                            customer
                        ),
                        if selected {
                            theme.selected()
                        } else {
                            Style::default()
                        },
                    ),
                    Span::styled(
                        format!("{:<10}", format!("{:?}", delivery.status).to_uppercase()),
                        status_style,
                    ),
                    Span::raw(format!(
                        " {:>8} {:<14} {}",
                        delivery.attempts.len(),
                        answer,
                        delivery.next_attempt_at.map_or(String::new(), |at| format!(
                            "in {}",
                            countdown(at - app.server_now())
                        ))
                    )),
                ]));
            }
            if let Some(delivery) = view.selected_delivery() {
                lines.push(Line::default());
                lines.push(Line::styled(
                    format!("Attempts of {} ({})", delivery.event_id, delivery.event_type),
                    theme.title(),
                ));
                for attempt in delivery.attempts.iter().rev().take(5) {
                    lines.push(Line::from(format!(
                        "  {}  {}  {} ms",
                        clock(attempt.attempted_at),
                        match (attempt.response_status, &attempt.error) {
                            (Some(status), _) => format!("HTTP {status}"),
                            (None, Some(error)) => error.clone(),
                            (None, None) => "no answer".into(),
                        },
                        attempt.duration_ms
                    )));
                }
            }
        }
    }
    lines.push(Line::default());
    lines.push(if view.confirm_resend.is_some() {
        Line::styled(
            "Resend this delivery now? y resends, any other key goes back",
            theme.alert(),
        )
    } else {
        Line::styled(
            "←→ endpoint · ↑↓ delivery · Enter resend · R reload · Esc close",
            theme.dim(),
        )
    });
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Webhooks ", theme.title()))
                .border_style(theme.focused_border()),
        ),
        rect,
    );
}

/// The file picker's lines: the folder, a window of its entries around the cursor, the keys.
fn file_lines<'a>(files: &'a super::modal::Files, area: Rect, theme: &Theme) -> Vec<Line<'a>> {
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

fn draw_help(frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
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

/// `3s`, `4m`, `2h`, `5d`.
pub fn ago(duration: time::Duration) -> String {
    let s = duration.whole_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `29:41`, or `expired`.
pub fn countdown(left: time::Duration) -> String {
    let s = left.whole_seconds();
    if s <= 0 {
        return "expired".into();
    }
    if s >= 3600 {
        return format!("{}h{:02}m", s / 3600, (s % 3600) / 60);
    }
    format!("{}:{:02}", s / 60, s % 60)
}

fn clock(at: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

/// The time of day if it was today, else the date too (`Nov 28 14:02`).
fn when(at: OffsetDateTime, now: OffsetDateTime) -> String {
    if at.date() == now.date() {
        clock(at)
    } else {
        format!(
            "{} {:>2} {:02}:{:02}",
            &at.month().to_string()[..3],
            at.day(),
            at.hour(),
            at.minute()
        )
    }
}

/// `812 B`, `14 KB`, `2.3 MB`.
fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{} KB", bytes / 1024),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

fn short_url(url: &str) -> &str {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url)
}

#[cfg(test)]
mod tests;
