//! The screens as text: insta snapshots of `TestBackend` with fixed data (times, ids and links
//! are constants), reviewed like code.

use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use time::macros::datetime;
use uuid::Uuid;

use super::*;
use crate::domain::{
    ComplianceStatus, Customer, CustomerProfile, DocumentType, DocumentsOnFile, OnboardingRef, SdkLink,
    Stage, Strategy, WorkflowView, evaluate,
};
use crate::sync::cache::{CustomerSummary, StatusSummary};
use crate::sync::engine::{AlertKind, ApiState, CustomerState, EngineEvent};
use crate::tui::app::{Action, App, Details, Header, LogLine};
use crate::tui::keymap::Command;
use crate::tui::theme::ThemeName;

const NOW: time::OffsetDateTime = datetime!(2026-11-30 10:00 UTC);

struct Person {
    n: u128,
    first: &'static str,
    nationality: Option<&'static str>,
    complete: bool,
    ip: bool,
    stage: Stage,
    strategy: Strategy,
    documents: &'static [DocumentType],
}

fn person(n: u128, first: &'static str, stage: Stage) -> Person {
    Person {
        n,
        first,
        nationality: Some("US"),
        complete: true,
        ip: true,
        stage,
        strategy: Strategy::CfKyc,
        documents: &[],
    }
}

fn customer(p: &Person) -> Customer {
    let mut kyc = json!({"firstName": p.first, "lastName": "Example",
        "mainAddress": {"street1": "1 Main St", "cityCounty": "Springfield", "zip": "10001", "countryCode": "US"},
        "occupation": "15"});
    if let Some(n) = p.nationality {
        kyc["nationality"] = json!(n);
    }
    if p.complete {
        kyc["birthDate"] = json!("1985-06-15");
        kyc["documentNumber"] = json!("P1234567");
    }
    let mut body = json!({"email": format!("{}@example.com", p.first.to_lowercase()), "externalId": format!("ext-{}", p.n), "kyc": kyc});
    if p.ip {
        body["ipAddress"] = json!("203.0.113.7");
    }
    let profile: CustomerProfile = serde_json::from_value(body).unwrap();
    Customer::new(Uuid::from_u128(p.n), profile, NOW)
}

fn status(p: &Person) -> ComplianceStatus {
    let onboarding = p.stage.onboarding_status().map(|_| OnboardingRef {
        id: Uuid::from_u128(1000 + p.n),
        strategy: p.strategy,
    });
    let identity_verified = matches!(
        p.stage,
        Stage::CollectingRequirements | Stage::AwaitingDecision | Stage::Approved
    );
    let view = WorkflowView {
        stage: p.stage,
        onboarding,
        sdk: (p.stage == Stage::AwaitingSdk).then(|| SdkLink {
            link: format!("http://127.0.0.1:8080/sdk/token{}", p.n),
            expires_at: NOW + time::Duration::minutes(4),
        }),
        identity_verified,
    };
    let documents: DocumentsOnFile = p.documents.iter().copied().collect();
    evaluate(&customer(p), &documents, &view, Strategy::CfKyc, NOW)
}

fn state(p: &Person) -> CustomerState {
    CustomerState {
        customer: CustomerSummary::of(&customer(p)).unwrap().0.into(),
        status: Some(StatusSummary::of(&status(p)).unwrap().0.into()),
        stage: Some(p.stage),
        since: Some(NOW - time::Duration::minutes(p.n as i64 * 7)),
    }
}

const ALL_DOCS: &[DocumentType] = &[DocumentType::SourceOfFunds, DocumentType::W9];

fn people() -> Vec<Person> {
    vec![
        Person {
            complete: false,
            ..person(1, "Niklaus", Stage::NeedsProfile)
        },
        person(2, "Edsger", Stage::ReadyToStart),
        person(3, "Radia", Stage::AwaitingSdk),
        person(4, "Tim", Stage::InReview),
        Person {
            nationality: Some("GB"),
            documents: &[DocumentType::SourceOfFunds],
            ..person(5, "Ada", Stage::CollectingRequirements)
        },
        Person {
            documents: ALL_DOCS,
            ..person(6, "Donald", Stage::AwaitingDecision)
        },
        person(7, "Jean", Stage::Expired),
        person(8, "John", Stage::Errored),
        Person {
            documents: ALL_DOCS,
            ..person(9, "Joan", Stage::Approved)
        },
        Person {
            documents: ALL_DOCS,
            ..person(10, "Ken", Stage::Denied)
        },
        Person {
            strategy: Strategy::ExternalKyc,
            ip: false,
            documents: &[DocumentType::SourceOfFunds],
            ..person(11, "Frances", Stage::CollectingRequirements)
        },
    ]
}

fn header() -> Header {
    Header {
        sandbox: true,
        api_url: "http://127.0.0.1:8080".into(),
        webhook_url: Some("http://127.0.0.1:9000/webhooks".into()),
        inbox: Some("/data/inbox".into()),
        last_webhook: Some(NOW - time::Duration::seconds(12)),
        demo: true,
        api: ApiState::Connected,
        ..Header::default()
    }
}

fn app(width: u16, height: u16) -> App {
    let mut app = App::new(header(), NOW);
    app.update(Action::Resize {
        table_rows: table_rows_for(width, height),
    });
    let states = people().iter().map(state).collect();
    app.update(Action::Engine(vec![EngineEvent::Customers(states)]));
    app
}

/// Selects a customer by name (through the filter) and loads their whole status.
fn select(app: &mut App, first: &str) {
    let person = people().into_iter().find(|p| p.first == first).unwrap();
    app.update(Action::Key(Command::Filter));
    for c in first.chars() {
        app.update(Action::FilterInput(c));
    }
    app.update(Action::FinishFilter { keep: false });
    while app.selected_row().map(|r| r.state.customer.id) != Some(Uuid::from_u128(person.n)) {
        app.update(Action::Key(Command::Down));
    }
    app.update(Action::Details(Box::new(Details {
        id: Uuid::from_u128(person.n),
        customer: Some(customer(&person)),
        status: Some(status(&person)),
        history: Vec::new(),
        documents: None,
    })));
}

fn render(app: &App, width: u16, height: u16, theme: ThemeName) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| {
            draw(frame, app, &Keymap::default(), &Theme::new(theme));
        })
        .unwrap();
    terminal
}

#[test]
fn the_list() {
    let mut app = app(120, 40);
    select(&mut app, "Ada");
    assert_snapshot!(render(&app, 120, 40, ThemeName::Dark).backend());
}

/// SPEC §10: the API unreachable since a time (this machine's clock) with the next retry,
/// recent errors counted, and rows whose status outlived their polling interval showing its
/// age; once the API answers again, the ages go.
#[test]
fn the_api_unreachable_with_stale_rows() {
    let mut app = app(120, 24);
    let since = NOW - time::Duration::minutes(14);
    let stale: Vec<(Uuid, time::OffsetDateTime)> = ["Ada", "Jean"]
        .iter()
        .filter_map(|first| app.table.rows.iter().find(|r| r.name().starts_with(first)))
        .map(|row| (row.id(), NOW - time::Duration::minutes(12)))
        .collect();
    assert_eq!(stale.len(), 2);
    app.update(Action::Engine(vec![
        EngineEvent::Api(ApiState::Unreachable {
            since,
            retry_at: NOW + time::Duration::seconds(40),
            reason: "cannot reach the API: connection failed".into(),
        }),
        EngineEvent::PollError {
            customer_id: None,
            status: None,
            error: "listing customers failed: cannot reach the API".into(),
            retry_in_seconds: 40,
            queued: 0,
            in_flight: 0,
        },
        EngineEvent::Stale(stale),
        EngineEvent::Receiver {
            webhook_url: None,
            reason: Some(
                "webhook registration failed (API unreachable): cannot reach the API; polling alone meanwhile"
                    .into(),
            ),
            why: Some("API unreachable".into()),
        },
    ]));
    assert_snapshot!(render(&app, 120, 24, ThemeName::Dark).backend());

    app.update(Action::Engine(vec![EngineEvent::Api(ApiState::Connected)]));
    let screen = format!("{:?}", render(&app, 120, 24, ThemeName::Dark).backend());
    assert!(screen.contains("● connected"), "{screen}");
    assert!(
        !screen.contains(" old)"),
        "no stale ages once it answers:\n{screen}"
    );
    assert!(screen.contains("the API answers again"), "{screen}");
}

#[test]
fn the_list_wide_with_details_beside_it() {
    let mut app = app(160, 40);
    select(&mut app, "Radia");
    assert_snapshot!(render(&app, 160, 40, ThemeName::Dark).backend());
}

#[test]
fn details_in_every_stage() {
    for p in people() {
        let mut app = app(100, 40);
        select(&mut app, p.first);
        app.update(Action::Key(Command::Open));
        let name = format!("details_{}_{}", p.n, p.stage);
        assert_snapshot!(name, render(&app, 100, 40, ThemeName::Dark).backend());
    }
}

#[test]
fn help() {
    let mut app = app(120, 40);
    app.update(Action::Key(Command::Help));
    assert_snapshot!(render(&app, 120, 40, ThemeName::Dark).backend());
}

#[test]
fn an_alert_toast() {
    let mut app = app(120, 40);
    app.update(Action::Engine(vec![EngineEvent::Alert {
        customer_id: Uuid::from_u128(3),
        alert: AlertKind::SdkLinkExpiring,
        detail: "the SDK link expires in 240 s (2026-11-30T10:04:00Z); remind the customer to finish".into(),
    }]));
    assert_snapshot!(render(&app, 120, 40, ThemeName::Dark).backend());
}

#[test]
fn the_smallest_usable_terminal() {
    let mut app = app(80, 24);
    select(&mut app, "Ada");
    assert_snapshot!(render(&app, 80, 24, ThemeName::Dark).backend());
}

#[test]
fn too_small_says_so() {
    let app = app(60, 20);
    assert_snapshot!(render(&app, 60, 20, ThemeName::Dark).backend());
}

#[test]
fn no_color_draws_no_colour_and_keeps_the_symbols() {
    let mut app = app(120, 40);
    select(&mut app, "Ada");
    let terminal = render(&app, 120, 40, ThemeName::Plain);
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{cell:?}");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{cell:?}");
    }
    let text = terminal.backend().to_string();
    for symbol in ["✎", "○", "◔", "◑", "◕", "◷", "⊘", "✖", "✔", "✘"] {
        assert!(text.contains(symbol), "{symbol} is missing");
    }
    // With colour, stages are coloured.
    let coloured = render(&app, 120, 40, ThemeName::Dark);
    assert!(
        coloured
            .backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != ratatui::style::Color::Reset)
    );
}

#[test]
fn details_with_documents_and_an_earlier_timeline() {
    let mut app = app(100, 40);
    select(&mut app, "Tim");
    let id = app.selected_row().unwrap().id();
    let document = |n: u128, document_type, name: &str, size, current| crate::api::types::Document {
        id: Uuid::from_u128(5000 + n),
        customer_id: id,
        document_type,
        format: crate::domain::ContentFormat::Pdf,
        file_name: Some(name.into()),
        size,
        sha256: "0".repeat(64),
        current,
        uploaded_at: NOW - time::Duration::hours(n as i64),
    };
    let mut details = app.details.clone().unwrap();
    details.history = vec![
        LogLine {
            at: datetime!(2026-11-28 09:12 UTC),
            customer: Some(id),
            text: "first seen: ready_to_start".into(),
            alert: false,
        },
        LogLine {
            at: datetime!(2026-11-29 17:40 UTC),
            customer: Some(id),
            text: "the SDK link expires in 240 s; remind the customer to finish".into(),
            alert: true,
        },
        // From this session: already in the session's own timeline, not shown twice.
        LogLine {
            at: NOW + time::Duration::seconds(1),
            customer: Some(id),
            text: "never shown".into(),
            alert: false,
        },
    ];
    app.update(Action::Details(Box::new(details)));
    app.update(Action::Documents(
        id,
        Ok(vec![
            document(1, DocumentType::SourceOfFunds, "statement.pdf", 18_734, true),
            document(
                30,
                DocumentType::SourceOfFunds,
                "old statement.pdf",
                2_400_000,
                false,
            ),
        ]),
    ));
    app.update(Action::Key(Command::Open));
    let screen = render(&app, 100, 40, ThemeName::Dark);
    assert_snapshot!(screen.backend());
    let text = format!("{:?}", screen.backend().buffer());
    assert!(!text.contains("never shown"));
}

#[test]
fn documents_that_cannot_be_read_say_why() {
    let mut app = app(100, 40);
    select(&mut app, "Tim");
    let id = app.selected_row().unwrap().id();
    app.update(Action::Documents(id, Err("the API is unreachable".into())));
    // Documents of someone no longer selected are not shown.
    app.update(Action::Documents(Uuid::from_u128(999), Ok(Vec::new())));
    app.update(Action::Key(Command::Open));
    let screen = format!("{:?}", render(&app, 100, 40, ThemeName::Dark).backend().buffer());
    assert!(
        screen.contains("cannot be read: the API is unreachable"),
        "{screen}"
    );
}

#[test]
fn the_dialogs_of_actions() {
    use crate::tui::keymap::ModalKey;
    let mut app = app(100, 40);
    select(&mut app, "Edsger");
    app.update(Action::Key(Command::StartKyc));
    assert_snapshot!(
        "dialog_confirm_start",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
    app.update(Action::ModalKey(ModalKey::Esc));

    select(&mut app, "Radia");
    app.update(Action::Key(Command::Simulate));
    assert_snapshot!(
        "dialog_simulate",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
    app.update(Action::ModalKey(ModalKey::Esc));

    app.update(Action::Key(Command::AdvanceClock));
    assert_snapshot!("dialog_clock", render(&app, 100, 40, ThemeName::Dark).backend());
    app.update(Action::ModalKey(ModalKey::Esc));

    app.header.inbox = Some("/data/inbox".into());
    app.update(Action::Key(Command::Upload));
    let entry = |name: &str, dir, size| crate::tui::modal::FileEntry {
        name: name.into(),
        dir,
        size,
    };
    app.update(Action::Listed(
        "/data/inbox".into(),
        Ok(vec![
            entry("scans", true, 0),
            entry("bank statement.pdf", false, 18_734),
            entry("w8ben.pdf", false, 2_400_000),
        ]),
    ));
    app.update(Action::ModalKey(ModalKey::Down));
    assert_snapshot!(
        "dialog_file_picker",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
    app.update(Action::ModalKey(ModalKey::Enter));
    assert_snapshot!(
        "dialog_document_type",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
    app.update(Action::ModalKey(ModalKey::Esc));

    app.update(Action::Key(Command::New));
    assert_snapshot!("form_new_empty", render(&app, 100, 40, ThemeName::Dark).backend());
    for c in "ada@".chars() {
        app.update(Action::ModalKey(ModalKey::Char(c)));
    }
    for _ in 0..5 {
        app.update(Action::ModalKey(ModalKey::Tab));
    }
    for c in "1990-13-45".chars() {
        app.update(Action::ModalKey(ModalKey::Char(c)));
    }
    app.update(Action::ModalKey(ModalKey::Enter));
    assert_snapshot!(
        "form_new_local_errors",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
    if let Some(crate::tui::modal::Modal::Form(form)) = &mut app.modal {
        form.show_errors(&[crate::domain::FieldError::new(
            "externalId",
            "is already used by customer 0193…",
        )]);
    }
    assert_snapshot!(
        "form_new_server_errors",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
    app.modal = None;

    app.modal = Some(crate::tui::modal::Modal::Sdk {
        name: "Radia Example".into(),
        link: SdkLink {
            link: "http://127.0.0.1:8080/sdk/token3".into(),
            expires_at: NOW + time::Duration::minutes(30),
        },
    });
    assert_snapshot!(
        "dialog_sdk_link",
        render(&app, 100, 40, ThemeName::Dark).backend()
    );
}

#[test]
fn the_webhooks_view_and_a_resend() {
    use crate::api::types::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint};
    use crate::tui::app::Effect;
    use crate::tui::keymap::ModalKey;
    use crate::tui::request::Request;
    let mut app = app(120, 40);
    let effects = app.update(Action::Key(Command::Webhooks));
    assert_eq!(effects, [Effect::LoadWebhooks]);
    let endpoint = WebhookEndpoint {
        id: Uuid::from_u128(900),
        url: "http://127.0.0.1:9000/webhooks".into(),
        description: None,
        event_types: None,
        secret: None,
        secret_hint: "whsec_Mf…".into(),
        created_at: NOW - time::Duration::hours(1),
    };
    let effects = app.update(Action::WebhooksLoaded(Ok(vec![endpoint.clone()])));
    assert_eq!(effects, [Effect::LoadDeliveries(Uuid::from_u128(900))]);
    let attempt = |minutes: i64, status: Option<u16>, error: Option<&str>| DeliveryAttempt {
        attempted_at: NOW - time::Duration::minutes(minutes),
        response_status: status,
        error: error.map(String::from),
        duration_ms: 12,
    };
    let delivery = |n: u128, event: &str, status, attempts, next| Delivery {
        id: Uuid::from_u128(n),
        endpoint_id: Uuid::from_u128(900),
        event_id: format!("evt_{n}"),
        event_type: event.into(),
        customer_id: Uuid::from_u128(3),
        status,
        next_attempt_at: next,
        attempts,
        created_at: NOW - time::Duration::minutes(30 - n as i64),
    };
    let delivered = delivery(
        1,
        "CUSTOMER_CREATED",
        DeliveryStatus::Delivered,
        vec![attempt(29, Some(200), None)],
        None,
    );
    app.update(Action::DeliveriesLoaded(
        Uuid::from_u128(900),
        Ok(vec![
            delivered.clone(),
            delivery(
                2,
                "CUSTOMER_KYC_STARTED",
                DeliveryStatus::Pending,
                vec![
                    attempt(20, Some(500), None),
                    attempt(19, None, Some("connection refused")),
                ],
                Some(NOW + time::Duration::seconds(90)),
            ),
        ]),
    ));
    assert_snapshot!("webhooks_view", render(&app, 120, 40, ThemeName::Dark).backend());
    // Newest first: the pending delivery is selected; Enter asks, y resends.
    assert!(app.update(Action::ModalKey(ModalKey::Enter)).is_empty());
    let effects = app.update(Action::ModalKey(ModalKey::Char('y')));
    assert_eq!(
        effects,
        [Effect::Send(Request::Resend {
            endpoint: Uuid::from_u128(900),
            delivery: Uuid::from_u128(2),
            event_type: "CUSTOMER_KYC_STARTED".into(),
        })]
    );
    // The view stays open after a resend, to show it.
    assert!(matches!(app.modal, Some(crate::tui::modal::Modal::Webhooks(_))));
    // Read-only: the view opens, resending does not.
    app.update(Action::ModalKey(ModalKey::Esc));
    app.header.read_only = true;
    app.update(Action::Key(Command::Webhooks));
    app.update(Action::WebhooksLoaded(Ok(vec![endpoint.clone()])));
    app.update(Action::DeliveriesLoaded(
        Uuid::from_u128(900),
        Ok(vec![delivered.clone()]),
    ));
    assert!(app.update(Action::ModalKey(ModalKey::Enter)).is_empty());
    assert!(app.update(Action::ModalKey(ModalKey::Char('y'))).is_empty());
    assert!(app.toasts.last().is_some_and(|t| t.text.starts_with("read-only")));
}

/// The help overlay's text, row by row, as one line: what is inside its borders, with runs
/// of spaces made one (a wrapped line reads on from the one above).
fn help_text(app: &App, width: u16, height: u16) -> String {
    let terminal = render(app, width, height, ThemeName::Plain);
    let buffer = terminal.backend().buffer();
    let rows: Vec<String> = (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect();
    let top = rows
        .iter()
        .position(|r| r.contains("┌ Keys "))
        .expect("the help is on screen");
    let left = rows[top].chars().position(|c| c == '┌').unwrap();
    let inside: Vec<String> = rows[top + 1..]
        .iter()
        .take_while(|r| r.chars().nth(left) == Some('│'))
        .map(|r| r.chars().skip(left + 1).take_while(|c| *c != '│').collect())
        .collect();
    inside.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn help_is_as_wide_as_its_lines_and_wraps_rather_than_cuts() {
    let keymap = Keymap::default();
    // Wide: every line whole on its row; narrow: wrapped, every word still there in order.
    for (width, height) in [(160, 40), (80, 60)] {
        let mut app = app(width, height);
        app.update(Action::Key(Command::Help));
        let text = help_text(&app, width, height);
        for (keys, what) in keymap.help() {
            assert!(
                text.contains(&format!("{keys} {what}")),
                "{width} columns: {keys} {what:?} is cut:\n{text}"
            );
        }
        assert!(text.ends_with("Any key closes this help."), "{text}");
    }
}

#[test]
fn an_sdk_link_says_when_it_expires_or_how_long_ago_it_did() {
    let screen = |app: &App| format!("{:?}", render(app, 100, 40, ThemeName::Plain).backend().buffer());
    let mut app = app(100, 40);
    select(&mut app, "Radia");
    app.update(Action::Key(Command::Open));
    assert!(screen(&app).contains("expires in 4:00"), "{}", screen(&app));
    // Seven minutes on, the four-minute link is three minutes past.
    app.update(Action::Tick(NOW + time::Duration::minutes(7)));
    assert!(screen(&app).contains("  expired 3m ago"), "{}", screen(&app));

    app.modal = Some(crate::tui::modal::Modal::Sdk {
        name: "Radia Example".into(),
        link: SdkLink {
            link: "http://127.0.0.1:8080/sdk/token3".into(),
            expires_at: NOW + time::Duration::minutes(5),
        },
    });
    assert!(screen(&app).contains("│expired 2m ago"), "{}", screen(&app));
}

#[test]
fn the_details_pane_s_qr_code_scans_on_light_and_dark_terminals() {
    use crate::tui::qr::scan;
    let mut app = app(100, 40);
    select(&mut app, "Radia");
    app.update(Action::Key(Command::Open));
    for theme in [ThemeName::Dark, ThemeName::Light] {
        let screen = render(&app, 100, 40, theme);
        let buffer = screen.backend().buffer();
        let pane = scan::inside(buffer, "Radia Example");
        for terminal in [scan::LIGHT, scan::DARK] {
            assert_eq!(
                scan::decode(buffer, pane, terminal, true).as_deref(),
                Some("http://127.0.0.1:8080/sdk/token3"),
                "{theme:?} theme on a {terminal:?} terminal"
            );
        }
    }
}
