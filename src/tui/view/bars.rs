//! The bars around the panes: the header (mode, API, receiver, poller, counts per stage),
//! the stage tabs with the filter, and the key-hint bar at the bottom.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};

use super::format::{ago, clock_minutes, short_url};
use crate::sync::engine::ApiState;
use crate::tui::app::{App, RECENT, Tab};
use crate::tui::keymap::Keymap;
use crate::tui::theme::{Theme, symbol};

pub(super) fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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
    first.push(Span::raw(format!("  {} ", h.api_url)));
    first.push(api_state(&h.api, h.paused, app.now, theme));
    let receiver = match (&h.webhook_url, &h.receiver_why) {
        (Some(url), _) => {
            let age = h.last_webhook.map_or("no event yet".to_string(), |at| {
                format!("last event {} ago", ago(app.now - at))
            });
            let rejected = match h.rejected.count(app.now) {
                0 => String::new(),
                n => format!(" · {n} rejected ({} min)", RECENT.whole_minutes()),
            };
            format!("receiver {} · {age}{rejected}", short_url(url))
        }
        (None, Some(why)) => format!("no receiver ({why})"),
        (None, None) => "no receiver (polling only)".into(),
    };
    first.push(Span::styled(format!("  {receiver}"), theme.dim()));

    let mut second = vec![Span::raw(" poller ")];
    if h.paused {
        second.push(Span::styled("PAUSED", theme.alert()));
        if h.queued > 0 {
            second.push(Span::raw(format!(" · {} queued", h.queued)));
        }
    } else if h.queued > 0 {
        second.push(Span::raw(format!(
            "{} in flight · {} queued",
            h.in_flight, h.queued
        )));
    } else {
        second.push(Span::raw(format!("{} in flight", h.in_flight)));
    }
    let errors = h.errors.count(app.now);
    let errors_style = if errors > 0 {
        theme.alert()
    } else {
        ratatui::style::Style::default()
    };
    second.push(Span::raw(" · "));
    second.push(Span::styled(
        format!(
            "{errors} error{} ({} min)",
            if errors == 1 { "" } else { "s" },
            RECENT.whole_minutes()
        ),
        errors_style,
    ));
    if h.sandbox {
        second.push(Span::styled(
            if h.demo { " · demo on" } else { " · demo off" },
            theme.dim(),
        ));
    }
    second.push(Span::raw("   "));
    for (stage, count) in app.table.stage_counts() {
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

pub(super) fn draw_tabs(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let counts = app.table.tab_counts();
    let titles: Vec<Line> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(n, tab)| Line::from(format!("{} {} ({})", n + 1, tab.title(), counts[n])))
        .collect();
    let selected = Tab::ALL.iter().position(|t| *t == app.table.tab).unwrap_or(0);
    let mut filter = String::new();
    if app.editing_filter || !app.table.filter.is_empty() {
        filter = format!(
            "  /{}{}",
            app.table.filter,
            if app.editing_filter { "▏" } else { "" }
        );
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

pub(super) fn draw_hints(frame: &mut Frame, area: Rect, app: &App, keymap: &Keymap, theme: &Theme) {
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

/// The API's state in words (SPEC §10): connected; unreachable since HH:MM with the next
/// retry; key refused.
fn api_state<'a>(state: &ApiState, paused: bool, now: time::OffsetDateTime, theme: &Theme) -> Span<'a> {
    match state {
        ApiState::Connecting => Span::styled("● connecting…", theme.dim()),
        ApiState::Connected => Span::styled("● connected", theme.ok()),
        ApiState::Unreachable { since, retry_at, .. } => {
            // Paused, nothing is retried until `p` again (a person's own request still is).
            let retry = if paused {
                "paused".to_string()
            } else if *retry_at > now {
                format!("retry in {}", ago(*retry_at - now))
            } else {
                "retrying".to_string()
            };
            Span::styled(
                format!("✗ unreachable since {} · {retry}", clock_minutes(*since)),
                theme.alert(),
            )
        }
        ApiState::KeyRefused { .. } => Span::styled("✗ key refused", theme.alert()),
    }
}
