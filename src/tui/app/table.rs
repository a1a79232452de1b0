//! The customer table as one model: every row, which of them the tab and the filter show in
//! which order, the selection and the scrolled window. Rows change one at a time as the
//! engine reports them, so the shown order is kept incrementally: a changed row moves, the
//! rest stay put.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use uuid::Uuid;

use super::row::{Column, Row, Tab};
use crate::domain::Stage;
use crate::sync::engine::CustomerState;

/// Above this many changed rows in one batch, sorting everything again is cheaper than
/// placing each.
const PLACE_ONE_BY_ONE: usize = 256;

#[derive(Debug, Clone)]
pub struct Table {
    pub rows: Vec<Row>,
    index: HashMap<Uuid, usize>,
    /// How many rows are in each stage, kept as rows change (the header and tabs show them
    /// every frame; counting 100,000 rows each time would not do).
    per_stage: HashMap<Option<Stage>, usize>,
    /// Indices into `rows` of what the tab and the filter show, in sort order.
    pub view: Vec<usize>,
    pub selected: Option<Uuid>,
    /// The first visible row.
    pub offset: usize,
    /// How many rows fit on screen.
    pub page: usize,
    pub filter: String,
    pub sort: Column,
    pub descending: bool,
    pub tab: Tab,
    /// Marked customers (SPEC §11): they belong to customers, not rows, so they survive
    /// sorting and filtering.
    pub marks: HashSet<Uuid>,
}

impl Default for Table {
    fn default() -> Table {
        Table {
            rows: Vec::new(),
            index: HashMap::new(),
            per_stage: HashMap::new(),
            view: Vec::new(),
            selected: None,
            offset: 0,
            page: 10,
            filter: String::new(),
            sort: Column::Stage,
            marks: HashSet::new(),
            descending: false,
            tab: Tab::All,
        }
    }
}

impl Table {
    /// Marks the selected customer, or unmarks them.
    pub fn toggle_mark(&mut self) {
        if let Some(id) = self.selected
            && !self.marks.remove(&id)
        {
            self.marks.insert(id);
        }
    }

    /// Marks every customer the tab and filter show.
    pub fn mark_shown(&mut self) {
        let shown: Vec<Uuid> = self.view.iter().map(|&i| self.rows[i].id()).collect();
        self.marks.extend(shown);
    }

    /// The marked customers: those shown first, in their order, then the others.
    pub fn marked(&self) -> Vec<Uuid> {
        let shown: Vec<Uuid> = self
            .view
            .iter()
            .map(|&i| self.rows[i].id())
            .filter(|id| self.marks.contains(id))
            .collect();
        let in_view: HashSet<&Uuid> = shown.iter().collect();
        let mut hidden: Vec<Uuid> = self
            .marks
            .iter()
            .filter(|id| !in_view.contains(id))
            .copied()
            .collect();
        hidden.sort();
        shown.into_iter().chain(hidden).collect()
    }

    /// The customers an action on "these" means: the marked ones, or else the rows shown.
    pub fn marked_or_shown(&self) -> Vec<Uuid> {
        if self.marks.is_empty() {
            self.view.iter().map(|&i| self.rows[i].id()).collect()
        } else {
            self.marked()
        }
    }

    pub fn row(&self, id: Uuid) -> Option<&Row> {
        self.index.get(&id).map(|&i| &self.rows[i])
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.row(self.selected?)
    }

    /// Where the selection is in `view`.
    pub fn cursor(&self) -> Option<usize> {
        let id = self.selected?;
        self.view.iter().position(|&i| self.rows[i].id() == id)
    }

    /// The rows in the window on screen.
    pub fn visible(&self) -> impl Iterator<Item = &Row> {
        let end = (self.offset + self.page).min(self.view.len());
        self.view[self.offset.min(end)..end]
            .iter()
            .map(|&i| &self.rows[i])
    }

    /// How many customers each tab holds (from the counts per stage, kept as rows change).
    pub fn tab_counts(&self) -> [usize; 5] {
        let mut counts = [0; 5];
        for (stage, count) in &self.per_stage {
            for (n, tab) in Tab::ALL.iter().enumerate() {
                if tab.holds(*stage) {
                    counts[n] += count;
                }
            }
        }
        counts
    }

    /// How many customers are in each stage.
    pub fn stage_counts(&self) -> Vec<(Stage, usize)> {
        Stage::ALL
            .iter()
            .filter_map(|s| {
                self.per_stage
                    .get(&Some(*s))
                    .filter(|n| **n > 0)
                    .map(|n| (*s, *n))
            })
            .collect()
    }

    /// Puts a customer's new state in their row (a new row the first time); returns the
    /// row's index, for [`Table::settle`] to place once the batch is in.
    pub fn upsert(&mut self, state: CustomerState, now: OffsetDateTime) -> usize {
        self.count_stage(state.stage, 1);
        match self.index.get(&state.customer.id).copied() {
            Some(i) => {
                let old = self.rows[i].stage();
                self.count_stage(old, -1);
                let last_change = if old != state.stage {
                    now
                } else {
                    self.rows[i].last_change
                };
                self.rows[i] = Row::new(state, now);
                self.rows[i].last_change = last_change;
                i
            }
            None => {
                self.index.insert(state.customer.id, self.rows.len());
                let mut row = Row::new(state, now);
                row.last_change = row.state.since.unwrap_or(now);
                self.rows.push(row);
                self.rows.len() - 1
            }
        }
    }

    /// Moves the rows of a batch to where they now belong. The selection is an id, so it
    /// stays on its customer wherever the row moves.
    pub fn settle(&mut self, touched: Vec<usize>, now: OffsetDateTime) {
        if touched.len() > PLACE_ONE_BY_ONE {
            self.refilter(now);
        } else {
            // Every changed row leaves the view first: placing one by binary search while
            // another still sits at its old place with its new sort key would search an
            // unsorted view (a batch can also name a customer twice).
            let mut touched = touched;
            touched.sort_unstable();
            touched.dedup();
            self.view.retain(|i| touched.binary_search(i).is_err());
            for i in touched {
                self.place(i, now);
            }
        }
    }

    fn count_stage(&mut self, stage: Option<Stage>, delta: isize) {
        let count = self.per_stage.entry(stage).or_default();
        *count = count.saturating_add_signed(delta);
    }

    pub fn push_filter(&mut self, c: char, now: OffsetDateTime) {
        self.filter.push(c);
        if !self.filter.starts_with('!') {
            // Typing more only narrows: filter what is shown, already in order.
            let (rows, needle) = (&self.rows, Needle::new(&self.filter));
            self.view.retain(|&i| needle.matches(&rows[i]));
        } else {
            self.refilter(now);
        }
    }

    pub fn pop_filter(&mut self, now: OffsetDateTime) {
        self.filter.pop();
        self.refilter(now);
    }

    pub fn clear_filter(&mut self, now: OffsetDateTime) {
        self.filter.clear();
        self.refilter(now);
    }

    pub fn set_tab(&mut self, tab: Tab, now: OffsetDateTime) {
        self.tab = tab;
        self.refilter(now);
    }

    /// Sorts by the next column.
    pub fn next_sort(&mut self, now: OffsetDateTime) {
        self.sort = self.sort.next();
        self.resort(now);
    }

    pub fn reverse(&mut self, now: OffsetDateTime) {
        self.descending = !self.descending;
        self.resort(now);
    }

    /// Shows and selects a customer, clearing the tab and the filter if they hide them.
    pub fn show(&mut self, id: Uuid, now: OffsetDateTime) {
        if self.index.get(&id).is_some_and(|i| !self.view.contains(i)) {
            self.filter.clear();
            self.tab = Tab::All;
            self.refilter(now);
        }
        self.selected = Some(id);
    }

    pub fn move_by(&mut self, delta: isize) {
        let at = self.cursor().unwrap_or(0) as isize + delta;
        self.move_to(at.clamp(0, self.view.len().saturating_sub(1) as isize) as usize);
    }

    pub fn move_to(&mut self, at: usize) {
        if let Some(&i) = self.view.get(at) {
            self.selected = Some(self.rows[i].id());
        }
    }

    /// Selects the n-th row of the window; whether there was one.
    pub fn click(&mut self, n: usize) -> bool {
        let Some(&i) = self.view.get(self.offset + n) else {
            return false;
        };
        self.selected = Some(self.rows[i].id());
        true
    }

    /// After a change: if the selected customer left the view (tab, filter), the row now
    /// where it was (`cursor_before`) takes over; and the window scrolls to the selection.
    pub fn follow(&mut self, cursor_before: Option<usize>) {
        if self.selected.is_none() || self.cursor().is_none() {
            let at = cursor_before.unwrap_or(0).min(self.view.len().saturating_sub(1));
            self.selected = self.view.get(at).map(|&i| self.rows[i].id());
        }
        let Some(at) = self.cursor() else {
            self.offset = 0;
            return;
        };
        if at < self.offset {
            self.offset = at;
        } else if at >= self.offset + self.page {
            self.offset = at + 1 - self.page;
        }
        self.offset = self.offset.min(self.view.len().saturating_sub(self.page));
    }

    /// Recomputes the view from scratch (tab or filter changed).
    pub fn refilter(&mut self, now: OffsetDateTime) {
        let (rows, needle, tab) = (&self.rows, Needle::new(&self.filter), self.tab);
        self.view = (0..rows.len())
            .filter(|&i| tab.holds(rows[i].stage()) && needle.matches(&rows[i]))
            .collect();
        self.resort(now);
    }

    /// The table's order: the sort column, then the name, then the id (a total order, so a
    /// row's place can be found by binary search).
    fn order(&self, a: usize, b: usize, now: OffsetDateTime) -> Ordering {
        let (x, y) = (&self.rows[a], &self.rows[b]);
        let order = self
            .sort
            .compare(x, y, now)
            .then_with(|| x.sort_name().cmp(y.sort_name()))
            .then_with(|| x.id().cmp(&y.id()));
        if self.descending { order.reverse() } else { order }
    }

    fn resort(&mut self, now: OffsetDateTime) {
        let mut view = std::mem::take(&mut self.view);
        // The order is total (the id breaks ties), so an unstable sort gives the same result.
        view.sort_unstable_by(|&a, &b| self.order(a, b, now));
        self.view = view;
    }

    /// Puts one changed row back where it belongs: out of the view, then in at its place if
    /// it still matches — one row moves, not the whole list.
    fn place(&mut self, i: usize, now: OffsetDateTime) {
        if let Some(at) = self.view.iter().position(|&v| v == i) {
            self.view.remove(at);
        }
        let row = &self.rows[i];
        if self.tab.holds(row.stage()) && Needle::new(&self.filter).matches(row) {
            let at = self
                .view
                .partition_point(|&v| self.order(v, i, now) == Ordering::Less);
            self.view.insert(at, i);
        }
    }
}

/// The filter, prepared once per pass: lower case, a leading `!` keeps what does not match.
/// The searcher is built once per pass, not once per row: a keystroke scans 100,000 rows.
struct Needle {
    negate: bool,
    finder: Option<memchr::memmem::Finder<'static>>,
}

impl Needle {
    fn new(filter: &str) -> Needle {
        let (negate, text) = match filter.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, filter),
        };
        let text = text.trim().to_lowercase();
        Needle {
            negate,
            finder: (!text.is_empty()).then(|| memchr::memmem::Finder::new(text.as_bytes()).into_owned()),
        }
    }

    fn matches(&self, row: &Row) -> bool {
        match &self.finder {
            None => true,
            Some(finder) => finder.find(row.haystack.as_bytes()).is_some() != self.negate,
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
