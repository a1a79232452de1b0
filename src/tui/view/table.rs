//! The customer table: rows built for the visible window only, the sort column marked.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table};

use super::format::{ago, countdown};
use super::{Hitboxes, block};
use crate::tui::app::{App, Column, Pane, Row};
use crate::tui::theme::{Theme, symbol};

pub(super) fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) -> Hitboxes {
    let columns = columns_for(area.width);
    let marked = match app.table.marks.len() {
        0 => String::new(),
        n => format!(" · {n} marked"),
    };
    let title = format!(
        " Customers {}/{}{marked} · sorted by {}{} ",
        app.table.view.len(),
        app.table.rows.len(),
        app.table.sort.title(),
        if app.table.descending { " ↑" } else { "" }
    );
    let outer = block(title, app.focus == Pane::Table, theme);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if app.table.rows.is_empty() {
        frame.render_widget(
            Paragraph::new("No customers yet. They appear here as the API lists them.").style(theme.dim()),
            inner,
        );
        return Hitboxes::default();
    }
    if app.table.view.is_empty() {
        frame.render_widget(
            Paragraph::new("Nothing matches this tab and filter (Esc clears the filter).").style(theme.dim()),
            inner,
        );
        return Hitboxes::default();
    }
    let visible = inner.height.saturating_sub(1) as usize;
    let start = app.table.offset.min(app.table.view.len());
    let end = (start + visible).min(app.table.view.len());
    let rows: Vec<TableRow> = app.table.view[start..end]
        .iter()
        .map(|&i| {
            let row = &app.table.rows[i];
            let style = if Some(row.id()) == app.table.selected {
                theme.selected()
            } else {
                Style::default()
            };
            TableRow::new(columns.iter().map(|c| cell(row, *c, app, theme))).style(style)
        })
        .collect();
    let widths = columns.iter().map(|c| match c {
        // Room for a stale row's age beside its stage.
        Column::Stage if !app.stale.is_empty() => Constraint::Length(36),
        c => width(*c),
    });
    let header = header_row(&columns, app, theme);
    frame.render_widget(Table::new(rows, widths).header(header).column_spacing(1), inner);
    Hitboxes {
        table_rows: Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        },
    }
}

/// Every column where there is room, else the five that matter most.
fn columns_for(width: u16) -> Vec<Column> {
    if width >= 110 {
        Column::ALL.to_vec()
    } else {
        vec![
            Column::Name,
            Column::Stage,
            Column::InStage,
            Column::NextAction,
            Column::SdkLink,
        ]
    }
}

fn width(column: Column) -> Constraint {
    match column {
        Column::Name => Constraint::Min(14),
        Column::Stage => Constraint::Length(25),
        Column::InStage => Constraint::Length(8),
        Column::NextAction => Constraint::Length(17),
        Column::Onboarding => Constraint::Length(17),
        Column::Failed => Constraint::Length(6),
        Column::SdkLink => Constraint::Length(8),
        Column::LastChange => Constraint::Length(8),
    }
}

/// The column titles, the sort column marked with its direction.
fn header_row<'a>(columns: &[Column], app: &App, theme: &Theme) -> TableRow<'a> {
    TableRow::new(columns.iter().map(|c| {
        let mark = if *c == app.table.sort {
            if app.table.descending { " ▲" } else { " ▼" }
        } else {
            ""
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .style(theme.title().add_modifier(Modifier::UNDERLINED))
}

fn cell<'a>(row: &'a Row, column: Column, app: &App, theme: &Theme) -> Cell<'a> {
    let status = row.status();
    let now = app.now;
    match column {
        // With marks, a mark column before the name (✓ marked).
        Column::Name if !app.table.marks.is_empty() => {
            let mark = if app.table.marks.contains(&row.id()) {
                "✓ "
            } else {
                "  "
            };
            Cell::from(Line::from(vec![
                Span::styled(mark, theme.accent()),
                Span::raw(row.name()),
            ]))
        }
        Column::Name => Cell::from(row.name()),
        Column::Stage => {
            let stage = Span::styled(
                format!(
                    "{} {}",
                    symbol(row.stage()),
                    row.stage().map_or("unknown yet", |s| s.as_str())
                ),
                theme.stage(row.stage()),
            );
            // While the API is unreachable, a status older than its polling interval says
            // how old it is (SPEC §10).
            match app.stale.get(&row.id()) {
                Some(checked) => Cell::from(Line::from(vec![
                    stage,
                    Span::styled(format!(" ({} old)", ago(now - *checked)), theme.alert()),
                ])),
                None => Cell::from(stage),
            }
        }
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
