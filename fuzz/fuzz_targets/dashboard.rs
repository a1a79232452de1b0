//! The dashboard's `update`, fed what the terminal and the engine send: arbitrary keys (through
//! the keymap, the filter editor and the dialogs, as `tui::input::to_action` routes them),
//! pastes, mouse clicks and scrolls, resizes, clock ticks, and engine events about a handful of
//! customers; each frame drawn on a test backend. Never a panic, and after every action the
//! table model keeps what it promises:
//! - `view` holds exactly the rows the tab and the filter show, each once, in the table's order
//!   (what recomputing it from scratch gives);
//! - a selection exactly when something is shown, and then on a shown row, inside the window;
//! - marks only of customers that have a row; the per-stage counts add up to the rows;
//! - the details pane, if any, is the selected customer's.
#![no_main]

use std::collections::{BTreeMap, HashSet};

use arbitrary::Arbitrary;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use kycdash::domain::{Customer, CustomerProfile, Kyc, Stage};
use kycdash::sync::cache::CustomerSummary;
use kycdash::sync::engine::{AlertKind, ApiState, CustomerState, EngineEvent};
use kycdash::tui::app::{Action, App, Header};
use kycdash::tui::input::to_action;
use kycdash::tui::keymap::Keymap;
use kycdash::tui::theme::{Theme, ThemeName};
use kycdash::tui::view::{self, Hitboxes};
use libfuzzer_sys::fuzz_target;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

#[derive(Debug, Arbitrary)]
enum Key {
    Char(char),
    /// The keys the default keymap binds, more often than any char would come up.
    Bound(u8),
    Enter,
    Esc,
    Backspace,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Delete,
    F(u8),
}

const BOUND: &[char] = &[
    'q', 'j', 'k', 'g', 'G', '/', 'r', 'R', 'p', 's', 'S', 'x', 'X', 'm', 'M', 'y', 'e', 'n', 'u', 'd', 'o',
    'w', 'h', '?', '1', '2', '3', '4', '5', ' ', 'a', 'c', 'D', 'E', 'f', 'l', 'i', 'v', 't',
];

#[derive(Debug, Arbitrary)]
enum Input {
    Key {
        key: Key,
        ctrl: bool,
        shift: bool,
        alt: bool,
    },
    Paste(String),
    Click {
        column: u8,
        row: u8,
    },
    ScrollUp,
    ScrollDown,
    Resize {
        width: u8,
        height: u8,
    },
    Later(u16),
    Customers(Vec<Fact>),
    Clock(i16),
    Alert(u8, u8),
    Unreachable(bool),
    Stale(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Fact {
    n: u8,
    name: String,
    stage: Option<u8>,
}

#[derive(Debug, Arbitrary)]
struct Session {
    initial: Vec<Fact>,
    inputs: Vec<Input>,
}

fn id(n: u8) -> Uuid {
    Uuid::from_u128(u128::from(n % 12) + 1)
}

fn state(fact: &Fact, now: OffsetDateTime) -> CustomerState {
    let name: String = fact.name.chars().take(40).collect();
    let profile = CustomerProfile {
        kyc: (!name.is_empty()).then(|| Kyc {
            first_name: Some(name),
            ..Kyc::default()
        }),
        ..CustomerProfile::default()
    };
    let customer = Customer::new(id(fact.n), profile, now);
    CustomerState {
        customer: CustomerSummary::of(&customer).expect("a summary").0.into(),
        status: None,
        stage: fact.stage.map(|s| Stage::ALL[usize::from(s) % Stage::ALL.len()]),
        since: Some(now),
    }
}

fn key_event(key: &Key, ctrl: bool, shift: bool, alt: bool) -> Event {
    let code = match *key {
        Key::Char(c) => KeyCode::Char(c),
        Key::Bound(n) => KeyCode::Char(BOUND[usize::from(n) % BOUND.len()]),
        Key::Enter => KeyCode::Enter,
        Key::Esc => KeyCode::Esc,
        Key::Backspace => KeyCode::Backspace,
        Key::Tab => KeyCode::Tab,
        Key::BackTab => KeyCode::BackTab,
        Key::Up => KeyCode::Up,
        Key::Down => KeyCode::Down,
        Key::Left => KeyCode::Left,
        Key::Right => KeyCode::Right,
        Key::Home => KeyCode::Home,
        Key::End => KeyCode::End,
        Key::PageUp => KeyCode::PageUp,
        Key::PageDown => KeyCode::PageDown,
        Key::Delete => KeyCode::Delete,
        Key::F(n) => KeyCode::F(n % 13),
    };
    let mut modifiers = KeyModifiers::NONE;
    // Ctrl-C quits; the session would end there.
    if ctrl && code != KeyCode::Char('c') {
        modifiers |= KeyModifiers::CONTROL;
    }
    if shift {
        modifiers |= KeyModifiers::SHIFT;
    }
    if alt {
        modifiers |= KeyModifiers::ALT;
    }
    Event::Key(KeyEvent::new(code, modifiers))
}

fn check(app: &App) {
    let table = &app.table;
    let ids: HashSet<Uuid> = table.rows.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), table.rows.len(), "one row per customer");
    for row in &table.rows {
        assert_eq!(
            table.row(row.id()).map(|r| r.id()),
            Some(row.id()),
            "the index finds each row"
        );
    }
    let shown: HashSet<usize> = table.view.iter().copied().collect();
    assert_eq!(
        shown.len(),
        table.view.len(),
        "a row is shown once: {:?}",
        table.view
    );
    assert!(table.view.iter().all(|&i| i < table.rows.len()));
    let mut fresh = table.clone();
    fresh.refilter(app.now);
    assert_eq!(
        fresh.view, table.view,
        "the view is what the tab and filter show, in order"
    );
    assert!(table.page >= 1);
    match table.cursor() {
        Some(at) => {
            assert!(
                table.offset <= at && at < table.offset + table.page,
                "the selection ({at}) is in the window ({}+{})",
                table.offset,
                table.page
            );
            assert!(table.visible().any(|r| Some(r.id()) == table.selected));
        }
        None => {
            assert!(table.view.is_empty(), "rows are shown, none selected");
            assert_eq!(table.selected, None, "the selection is not shown");
        }
    }
    assert!(table.offset <= table.view.len().saturating_sub(table.page).max(0));
    assert!(
        table.marks.iter().all(|id| ids.contains(id)),
        "marks of customers without a row"
    );
    assert_eq!(
        table.tab_counts()[0],
        table.rows.len(),
        "the All tab counts every row"
    );
    if let Some(details) = &app.details {
        assert_eq!(
            Some(details.id),
            table.selected,
            "the details are the selected customer's"
        );
    }
}

fuzz_target!(|session: Session| {
    let keymap = Keymap::new(&BTreeMap::new()).expect("the default keymap");
    let theme = Theme::new(ThemeName::Dark);
    let mut app = App::new(Header::default(), NOW);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("a test terminal");
    let mut hitboxes = Hitboxes::default();
    let initial: Vec<CustomerState> = session.initial.iter().take(12).map(|f| state(f, NOW)).collect();
    app.update(Action::Resize {
        table_rows: view::table_rows_for(100, 30),
    });
    app.update(Action::Engine(vec![EngineEvent::Customers(initial)]));
    check(&app);
    for input in session.inputs.iter().take(200) {
        let now = app.now;
        let action = match input {
            Input::Key {
                key,
                ctrl,
                shift,
                alt,
            } => to_action(&key_event(key, *ctrl, *shift, *alt), &app, &keymap, &hitboxes),
            Input::Paste(text) => to_action(&Event::Paste(text.clone()), &app, &keymap, &hitboxes),
            Input::Click { column, row } => to_action(
                &Event::Mouse(MouseEvent {
                    kind: MouseEventKind::Down(MouseButton::Left),
                    column: u16::from(*column),
                    row: u16::from(*row),
                    modifiers: KeyModifiers::NONE,
                }),
                &app,
                &keymap,
                &hitboxes,
            ),
            Input::ScrollUp | Input::ScrollDown => {
                let kind = if matches!(input, Input::ScrollUp) {
                    MouseEventKind::ScrollUp
                } else {
                    MouseEventKind::ScrollDown
                };
                let mouse = MouseEvent {
                    kind,
                    column: 0,
                    row: 0,
                    modifiers: KeyModifiers::NONE,
                };
                to_action(&Event::Mouse(mouse), &app, &keymap, &hitboxes)
            }
            Input::Resize { width, height } => {
                let (width, height) = (u16::from(*width).max(1), u16::from(*height / 2).max(1));
                terminal.backend_mut().resize(width, height);
                to_action(&Event::Resize(width, height), &app, &keymap, &hitboxes)
            }
            Input::Later(seconds) => Some(Action::Tick(now + Duration::seconds(i64::from(*seconds)))),
            Input::Customers(facts) => Some(Action::Engine(vec![EngineEvent::Customers(
                facts.iter().take(12).map(|f| state(f, now)).collect(),
            )])),
            Input::Clock(offset) => Some(Action::Engine(vec![EngineEvent::Clock {
                offset_seconds: i64::from(*offset),
            }])),
            Input::Alert(n, kind) => {
                let alert = [
                    AlertKind::SdkLinkExpiring,
                    AlertKind::StuckWaiting,
                    AlertKind::VerificationError,
                    AlertKind::Drift,
                ][usize::from(*kind) % 4];
                Some(Action::Engine(vec![EngineEvent::Alert {
                    customer_id: id(*n),
                    alert,
                    detail: "fuzz".into(),
                }]))
            }
            Input::Unreachable(down) => Some(Action::Engine(vec![EngineEvent::Api(if *down {
                ApiState::Unreachable {
                    since: now,
                    retry_at: now + Duration::seconds(5),
                    reason: "connection refused".into(),
                }
            } else {
                ApiState::Connected
            })])),
            Input::Stale(ns) => Some(Action::Engine(vec![EngineEvent::Stale(
                ns.iter()
                    .take(12)
                    .map(|n| (id(*n), now - Duration::minutes(5)))
                    .collect(),
            )])),
        };
        if let Some(action) = action {
            app.update(action);
        }
        check(&app);
        if app.quit || app.fatal.is_some() {
            break;
        }
        terminal
            .draw(|frame| hitboxes = view::draw(frame, &app, &keymap, &theme))
            .expect("a test backend draws");
    }
});
