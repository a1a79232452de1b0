//! Where each part of the screen goes, computed in one place: drawing uses it, and so does
//! paging (how many table rows fit), so the two cannot disagree.

use ratatui::layout::{Constraint, Layout, Rect};

use crate::tui::app::Pane;

/// The smallest terminal the layout works in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// From this width on, the details pane is beside the table, not under it.
const SIDE_BY_SIDE: u16 = 140;

/// The parts of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub header: Rect,
    pub tabs: Rect,
    /// The table and the details pane together (toasts float over it).
    pub main: Rect,
    /// `None` when the details pane has the focus on a screen too narrow for both: then it
    /// takes the whole height (room for the QR code).
    pub table: Option<Rect>,
    pub details: Rect,
    pub log: Rect,
    pub hints: Rect,
}

impl Screen {
    /// The layout of a terminal of this size, or `None` below [`MIN_WIDTH`]×[`MIN_HEIGHT`].
    pub fn of(area: Rect, focus: Pane) -> Option<Screen> {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            return None;
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
        let (table, details) = if area.width >= SIDE_BY_SIDE {
            let [t, d] =
                Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(main);
            (Some(t), d)
        } else if focus == Pane::Details {
            (None, main)
        } else {
            let [t, d] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(main);
            (Some(t), d)
        };
        Some(Screen {
            header,
            tabs,
            main,
            table,
            details,
            log,
            hints,
        })
    }
}

/// How many table rows fit in a terminal of this size (for paging and scrolling).
pub fn table_rows_for(width: u16, height: u16) -> usize {
    let table = Screen::of(Rect::new(0, 0, width, height), Pane::Table)
        .and_then(|screen| screen.table)
        .map_or(0, |table| table.height);
    // Borders and the column titles.
    table.saturating_sub(3).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_that_fit_are_the_table_less_its_borders_and_titles() {
        assert_eq!(table_rows_for(60, 20), 1, "too small: one row, never none");
        // 40 high: header 2, tabs 1, log 8, hints 1 leave 28; stacked, the table has half.
        assert_eq!(table_rows_for(120, 40), 14 - 3);
        assert_eq!(table_rows_for(160, 40), 28 - 3, "side by side: the whole height");
        // 24 high leaves 15: the table is drawn 8 high, and paging counts the rows it shows
        // (it used to halve 15 on its own and page by one row less than was drawn).
        assert_eq!(table_rows_for(80, 24), 8 - 3);
    }
}
