//! The table model alone: rows in, what is shown, in which order, and where the selection is.

use proptest::prelude::{ProptestConfig, Strategy as Gen, prop_assert_eq, proptest};
use time::macros::datetime;

use super::*;
use crate::domain::{Customer, CustomerProfile};
use crate::sync::cache::CustomerSummary;

pub const NOW: OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

/// A customer `n` called `name Test`, in `stage` since `NOW`.
pub fn state(n: u128, name: &str, stage: Stage) -> CustomerState {
    let profile: CustomerProfile = serde_json::from_value(serde_json::json!({
        "email": format!("{}@example.com", name.to_lowercase()),
        "externalId": format!("ext-{n}"),
        "kyc": {"firstName": name, "lastName": "Test"}
    }))
    .unwrap();
    CustomerState {
        customer: CustomerSummary::of(&Customer::new(Uuid::from_u128(n), profile, NOW))
            .unwrap()
            .0
            .into(),
        status: None,
        stage: Some(stage),
        since: Some(NOW),
    }
}

fn table_of(states: Vec<CustomerState>) -> Table {
    let mut table = Table {
        page: 3,
        ..Table::default()
    };
    let touched = states.into_iter().map(|s| table.upsert(s, NOW)).collect();
    table.settle(touched, NOW);
    table.follow(None);
    table
}

fn names(table: &Table) -> Vec<&str> {
    table.view.iter().map(|&i| table.rows[i].name()).collect()
}

fn four() -> Vec<CustomerState> {
    vec![
        state(1, "Ada", Stage::Approved),
        state(2, "Grace", Stage::NeedsProfile),
        state(3, "Alan", Stage::AwaitingSdk),
        state(4, "Edsger", Stage::Errored),
    ]
}

#[test]
fn rows_sort_by_stage_then_name_and_reverse() {
    let mut table = table_of(four());
    assert_eq!(
        names(&table),
        ["Edsger Test", "Grace Test", "Alan Test", "Ada Test"]
    );
    for _ in 0..Column::ALL.len() - 1 {
        table.next_sort(NOW);
    }
    assert_eq!(table.sort, Column::Name, "s cycles through every column");
    table.reverse(NOW);
    assert_eq!(
        names(&table),
        ["Grace Test", "Edsger Test", "Alan Test", "Ada Test"]
    );
}

#[test]
fn counts_per_tab_and_stage_follow_rows_that_move() {
    let mut table = table_of(four());
    assert_eq!(table.tab_counts(), [4, 1, 1, 1, 1]);
    let i = table.upsert(state(2, "Grace", Stage::Approved), NOW);
    table.settle(vec![i], NOW);
    assert_eq!(table.tab_counts(), [4, 0, 1, 2, 1]);
    assert_eq!(
        table.stage_counts(),
        [(Stage::AwaitingSdk, 1), (Stage::Errored, 1), (Stage::Approved, 2)]
    );
}

#[test]
fn the_filter_narrows_a_bang_inverts_and_a_tab_combines_with_it() {
    let mut table = table_of(four());
    table.push_filter('a', NOW);
    table.push_filter('l', NOW);
    assert_eq!(names(&table), ["Alan Test"]);
    table.clear_filter(NOW);
    for c in "!ext-1".chars() {
        table.push_filter(c, NOW);
    }
    assert_eq!(names(&table), ["Edsger Test", "Grace Test", "Alan Test"]);
    table.set_tab(Tab::Waiting, NOW);
    assert_eq!(names(&table), ["Alan Test"]);
}

#[test]
fn the_window_follows_the_selection_and_a_hidden_selection_passes_to_its_neighbour() {
    let mut table = table_of(four());
    assert_eq!(table.selected_row().map(Row::name), Some("Edsger Test"));
    table.move_to(3);
    table.follow(None);
    assert_eq!(table.offset, 1, "three rows fit: the window scrolled by one");
    assert_eq!(table.visible().count(), 3);
    let before = table.cursor();
    table.set_tab(Tab::ActionNeeded, NOW);
    table.follow(before);
    assert_eq!(table.selected_row().map(Row::name), Some("Grace Test"));
    assert_eq!(table.offset, 0);
    table.show(Uuid::from_u128(1), NOW);
    assert_eq!(table.tab, Tab::All, "showing a hidden customer clears the tab");
    assert_eq!(table.selected_row().map(Row::name), Some("Ada Test"));
}

fn stage() -> impl Gen<Value = Stage> {
    proptest::sample::select(Stage::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Rows placed one by one as they change end where a full filter and sort puts them.
    #[test]
    fn placing_changed_rows_one_by_one_equals_sorting_everything(
        updates in proptest::collection::vec((1u128..25, stage()), 1..80),
        descending in proptest::bool::ANY,
        filter in proptest::sample::select(vec!["", "a", "!e", "ext-1"]),
        sort_steps in 0usize..8,
    ) {
        let names = ["Ada", "Grace", "Alan", "Edsger", "Barbara"];
        let mut table = Table::default();
        for _ in 0..sort_steps {
            table.next_sort(NOW);
        }
        if descending {
            table.reverse(NOW);
        }
        for c in filter.chars() {
            table.push_filter(c, NOW);
        }
        for (n, stage) in &updates {
            let name = names[(*n as usize) % names.len()];
            let i = table.upsert(state(*n, name, *stage), NOW);
            table.settle(vec![i], NOW);
        }
        let incremental = table.view.clone();
        table.refilter(NOW);
        prop_assert_eq!(incremental, table.view);
    }
}
