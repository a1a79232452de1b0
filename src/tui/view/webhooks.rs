//! The `w` view: webhook endpoints, the selected one's deliveries, and a delivery's attempts.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::format::{clock, countdown};
use crate::api::types::{Delivery, DeliveryStatus};
use crate::tui::app::App;
use crate::tui::modal::Webhooks;
use crate::tui::theme::Theme;

/// The webhooks view: the endpoints (secret hint only), then the selected one's deliveries,
/// newest first, with their attempts; the selected delivery's attempts in full.
pub(super) fn draw_webhooks(frame: &mut Frame, area: Rect, view: &Webhooks, app: &App, theme: &Theme) {
    let rect = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    };
    let mut lines = endpoint_lines(view, theme);
    lines.push(Line::default());
    let room = (rect.height as usize).saturating_sub(lines.len() + 9).max(3);
    lines.extend(delivery_lines(view, room, app, theme));
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

fn endpoint_lines<'a>(view: &Webhooks, theme: &Theme) -> Vec<Line<'a>> {
    let endpoints = match &view.endpoints {
        None => return vec![Line::styled("reading the endpoints…", theme.dim())],
        Some(Err(error)) => {
            return vec![Line::styled(
                format!("cannot read the endpoints: {error}"),
                theme.bad(),
            )];
        }
        Some(Ok(endpoints)) if endpoints.is_empty() => {
            return vec![Line::styled("No webhook endpoints are registered.", theme.dim())];
        }
        Some(Ok(endpoints)) => endpoints,
    };
    endpoints
        .iter()
        .enumerate()
        .map(|(n, endpoint)| {
            let selected = n == view.endpoint;
            Line::from(vec![
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
            ])
        })
        .collect()
}

/// The selected endpoint's deliveries, a window of `room` around the cursor, then the
/// selected delivery's attempts.
fn delivery_lines<'a>(view: &Webhooks, room: usize, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let deliveries = match &view.deliveries {
        None if view.endpoints.is_some() => {
            return vec![Line::styled("reading the deliveries…", theme.dim())];
        }
        None => return Vec::new(),
        Some(Err(error)) => {
            return vec![Line::styled(
                format!("cannot read the deliveries: {error}"),
                theme.bad(),
            )];
        }
        Some(Ok(deliveries)) if deliveries.is_empty() => {
            return vec![Line::styled("No deliveries to this endpoint yet.", theme.dim())];
        }
        Some(Ok(deliveries)) => deliveries,
    };
    let mut lines = vec![Line::styled(
        format!(
            "  {:<9} {:<33} {:<20} {:<10} {:>8} {:<14} {}",
            "Created", "Event", "Customer", "Status", "Attempts", "Last answer", "Next retry"
        ),
        theme.title(),
    )];
    let start = view
        .cursor
        .saturating_sub(room / 2)
        .min(deliveries.len().saturating_sub(room));
    for (n, delivery) in deliveries.iter().enumerate().skip(start).take(room) {
        lines.push(delivery_line(delivery, n == view.cursor, app, theme));
    }
    if let Some(delivery) = view.selected_delivery() {
        lines.push(Line::default());
        lines.extend(attempt_lines(delivery, app, theme));
    }
    lines
}

fn delivery_line<'a>(delivery: &Delivery, selected: bool, app: &App, theme: &Theme) -> Line<'a> {
    let answer = match delivery.attempts.last() {
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
    let next_retry = delivery.next_attempt_at.map_or(String::new(), |at| {
        format!("in {}", countdown(at - app.server_now()))
    });
    Line::from(vec![
        Span::styled(if selected { "› " } else { "  " }, theme.accent()),
        Span::styled(
            format!(
                "{:<9} {:<33} {:<20} ",
                clock(delivery.created_at - app.server_offset),
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
            " {:>8} {:<14} {next_retry}",
            delivery.attempts.len(),
            answer,
        )),
    ])
}

/// A delivery's last five attempts, newest first.
fn attempt_lines<'a>(delivery: &Delivery, app: &App, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![Line::styled(
        format!("Attempts of {} ({})", delivery.event_id, delivery.event_type),
        theme.title(),
    )];
    for attempt in delivery.attempts.iter().rev().take(5) {
        lines.push(Line::from(format!(
            "  {}  {}  {} ms",
            // Times the API stamped are on its clock; shown on this machine's.
            clock(attempt.attempted_at - app.server_offset),
            match (attempt.response_status, &attempt.error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => error.clone(),
                (None, None) => "no answer".into(),
            },
            attempt.duration_ms
        )));
    }
    lines
}
