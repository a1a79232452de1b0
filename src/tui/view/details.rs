//! The details pane: the selected customer's profile, stage, next step, checks, documents,
//! SDK link with its QR code, and timeline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};

use super::block;
use super::format::{ago, expiry, human_size, when};
use crate::api::types::Document;
use crate::domain::{Advice, ComplianceStatus, Customer, NextAction, advise};
use crate::tui::app::{App, Details, Pane, Row};
use crate::tui::qr::QrCode;
use crate::tui::theme::{Theme, symbol};

pub(super) fn draw_details(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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
    let customer = details.and_then(|d| d.customer.as_ref());
    let mut lines = profile_lines(row, customer, theme);
    lines.push(stage_line(row, app, theme));
    lines.push(Line::default());
    match (customer, details.and_then(|d| d.status.as_ref())) {
        (Some(customer), Some(status)) => {
            lines.extend(next_lines(customer, status, app, theme));
            lines.push(Line::default());
            lines.extend(check_lines(status, theme));
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
        lines.extend(document_lines(documents, app, theme));
    }
    lines.extend(timeline_lines(row, details, app, theme));
    Text::from(lines)
}

/// The id, external id and email; then nationality, address country and IP once loaded.
fn profile_lines<'a>(row: &Row, customer: Option<&Customer>, theme: &Theme) -> Vec<Line<'a>> {
    let summary = &row.state.customer;
    let mut profile = vec![Span::styled(summary.id.to_string(), theme.dim())];
    if let Some(external) = &summary.external_id {
        profile.push(Span::raw(format!("  ext {external}")));
    }
    if let Some(email) = &summary.email {
        profile.push(Span::raw(format!("  {email}")));
    }
    let Some(customer) = customer else {
        return vec![
            Line::from(profile),
            Line::styled("Loading the profile…", theme.dim()),
        ];
    };
    let kyc = customer.kyc.as_ref();
    let nationality = kyc.and_then(|k| k.nationality.as_deref()).unwrap_or("—");
    let country = kyc
        .and_then(|k| k.main_address.as_ref())
        .and_then(|a| a.country_code.as_deref())
        .unwrap_or("—");
    let ip = customer
        .ip_address
        .as_deref()
        .unwrap_or("none (proof of address needed)");
    vec![
        Line::from(profile),
        Line::from(format!("nationality {nationality} · address {country} · IP {ip}")),
    ]
}

/// The stage with its symbol, the onboarding status, and for how long.
fn stage_line<'a>(row: &Row, app: &App, theme: &Theme) -> Line<'a> {
    Line::from(vec![
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
    ])
}

/// The next step in plain words, what it needs, and the SDK link while there is one.
fn next_lines<'a>(customer: &Customer, status: &ComplianceStatus, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let Advice {
        headline,
        fields_to_patch,
        documents_to_upload,
        sdk,
    } = advise(customer, status);
    let mut lines = vec![Line::from(vec![
        Span::styled("Next: ", theme.title()),
        Span::raw(headline),
    ])];
    // What the headline already names is not repeated.
    let next = status.next_action;
    if !fields_to_patch.is_empty() && next != Some(NextAction::UpdateProfile) {
        lines.push(Line::from(format!("  fields: {}", fields_to_patch.join(", "))));
    }
    if !documents_to_upload.is_empty() && next != Some(NextAction::UploadDocument) {
        let docs: Vec<&str> = documents_to_upload.iter().map(|d| d.as_str()).collect();
        lines.push(Line::from(format!("  upload: {}", docs.join(", "))));
    }
    if let Some(sdk) = sdk {
        lines.push(Line::from(vec![
            Span::raw("  SDK link "),
            Span::styled(sdk.link.clone(), theme.accent()),
        ]));
        lines.push(Line::from(format!(
            "  {}",
            expiry(sdk.expires_at - app.server_now())
        )));
    }
    lines
}

/// Every check: ✓ or ✗, optional ones marked, and the action each suggests.
fn check_lines<'a>(status: &ComplianceStatus, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![Line::styled("Checks", theme.title())];
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
    lines
}

/// The documents on file (the first six), or why they could not be read.
fn document_lines<'a>(documents: &Result<Vec<Document>, String>, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![Line::styled("Documents", theme.title())];
    let documents = match documents {
        Ok(documents) if documents.is_empty() => {
            lines.push(Line::styled(" none on file", theme.dim()));
            return lines;
        }
        Ok(documents) => documents,
        Err(error) => {
            lines.push(Line::styled(format!(" cannot be read: {error}"), theme.bad()));
            return lines;
        }
    };
    for document in documents.iter().take(6) {
        lines.push(Line::from(vec![
            Span::raw(format!(" {:<17}", document.document_type.as_str())),
            Span::raw(format!(
                "{} · {} · {}",
                document.file_name.as_deref().unwrap_or("(no name)"),
                human_size(document.size),
                when(document.uploaded_at - app.server_offset, app.now)
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
    lines
}

/// The newest eight lines of the customer's timeline: this session's, then the cache's.
fn timeline_lines<'a>(row: &Row, details: Option<&Details>, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let session = app.timelines.get(&row.id());
    let history = details.map(|d| d.history.as_slice()).unwrap_or_default();
    if session.is_none_or(|t| t.is_empty()) && history.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![Line::default(), Line::styled("Timeline", theme.title())];
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
    lines
}
