//! `update` as values: keys and engine events in, state and effects out.

use uuid::Uuid;

use super::table::tests::{NOW, state};
use super::*;
use crate::domain::{Customer, Stage};
use crate::sync::engine::{AlertKind, CustomerState, EngineEvent};
use crate::tui::keymap::Command;
use crate::tui::keymap::ModalKey;
use crate::tui::modal::Modal;
use crate::tui::request::{Done, Request};

fn app_with(states: Vec<CustomerState>) -> App {
    let mut app = App::new(Header::default(), NOW);
    app.update(Action::Resize { table_rows: 3 });
    app.update(Action::Engine(vec![EngineEvent::Customers(states)]));
    app
}

fn names(app: &App) -> Vec<&str> {
    app.table.view.iter().map(|&i| app.table.rows[i].name()).collect()
}

fn selected_name(app: &App) -> &str {
    app.selected_row().map(|r| r.name()).unwrap_or("")
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
fn rows_sort_by_stage_most_urgent_first_and_the_first_is_selected() {
    let app = app_with(four());
    assert_eq!(
        names(&app),
        ["Edsger Test", "Grace Test", "Alan Test", "Ada Test"]
    );
    assert_eq!(selected_name(&app), "Edsger Test");
}

#[test]
fn movement_keys_move_the_selection_and_the_window_follows() {
    let mut app = app_with(four());
    let effects = app.update(Action::Key(Command::Down));
    assert_eq!(selected_name(&app), "Grace Test");
    assert_eq!(effects, [Effect::LoadDetails(Uuid::from_u128(2))]);
    app.update(Action::Key(Command::Bottom));
    assert_eq!(selected_name(&app), "Ada Test");
    assert_eq!(app.table.offset, 1, "three rows fit: the window scrolled by one");
    app.update(Action::Key(Command::Down));
    assert_eq!(selected_name(&app), "Ada Test", "the last row stays selected");
    app.update(Action::Key(Command::PageUp));
    assert_eq!(selected_name(&app), "Edsger Test");
    assert_eq!(app.table.offset, 0);
}

#[test]
fn the_selection_stays_on_its_customer_when_a_refresh_reorders_rows() {
    let mut app = app_with(four());
    app.update(Action::Key(Command::Down));
    app.update(Action::Key(Command::Down));
    assert_eq!(selected_name(&app), "Alan Test");
    // Alan's onboarding errors: his row moves to the top.
    app.update(Action::Engine(vec![EngineEvent::Customers(vec![state(
        3,
        "Alan",
        Stage::Errored,
    )])]));
    assert_eq!(names(&app)[..2], ["Alan Test", "Edsger Test"]);
    assert_eq!(selected_name(&app), "Alan Test");
}

#[test]
fn filter_narrows_incrementally_and_a_leading_bang_inverts_it() {
    let mut app = app_with(four());
    app.update(Action::Key(Command::Filter));
    assert!(app.editing_filter);
    for c in "a".chars() {
        app.update(Action::FilterInput(c));
    }
    assert_eq!(
        names(&app),
        ["Edsger Test", "Grace Test", "Alan Test", "Ada Test"],
        "every name has an a"
    );
    app.update(Action::FilterInput('d'));
    assert_eq!(names(&app), ["Ada Test"]);
    assert_eq!(
        selected_name(&app),
        "Ada Test",
        "the selection follows what is left"
    );
    app.update(Action::FilterBackspace);
    app.update(Action::FilterBackspace);
    for c in "!ext-1".chars() {
        app.update(Action::FilterInput(c));
    }
    assert_eq!(names(&app), ["Edsger Test", "Grace Test", "Alan Test"]);
    app.update(Action::FinishFilter { keep: false });
    assert_eq!(app.table.view.len(), 4);
}

#[test]
fn tabs_and_sort_combine_with_the_filter() {
    let mut app = app_with(four());
    app.update(Action::Key(Command::TabAction));
    assert_eq!(names(&app), ["Grace Test"]);
    app.update(Action::Key(Command::TabDenied));
    assert_eq!(names(&app), ["Edsger Test"]);
    app.update(Action::Key(Command::TabAll));
    app.update(Action::Key(Command::Sort));
    assert_eq!(app.table.sort, Column::InStage);
    app.update(Action::Key(Command::Sort));
    app.update(Action::Key(Command::Sort));
    app.update(Action::Key(Command::Sort));
    app.update(Action::Key(Command::Sort));
    app.update(Action::Key(Command::Sort));
    app.update(Action::Key(Command::Sort));
    assert_eq!(app.table.sort, Column::Name);
    assert_eq!(
        names(&app),
        ["Ada Test", "Alan Test", "Edsger Test", "Grace Test"]
    );
    app.update(Action::Key(Command::Reverse));
    assert_eq!(
        names(&app),
        ["Grace Test", "Edsger Test", "Alan Test", "Ada Test"]
    );
    app.update(Action::Key(Command::Filter));
    app.update(Action::FilterInput('a'));
    app.update(Action::FilterInput('l'));
    assert_eq!(names(&app), ["Alan Test"]);
}

#[test]
fn help_opens_and_any_key_closes_it_and_quit_quits() {
    let mut app = app_with(four());
    app.update(Action::Key(Command::Help));
    assert!(app.help);
    app.update(Action::Key(Command::Down));
    assert!(!app.help);
    assert_eq!(
        selected_name(&app),
        "Edsger Test",
        "the closing key does nothing else"
    );
    assert_eq!(app.update(Action::Key(Command::Quit)), [Effect::Quit]);
    assert!(app.quit);
}

#[test]
fn pause_copy_and_refresh_become_effects() {
    let mut app = app_with(four());
    assert_eq!(app.update(Action::Key(Command::Pause)), [Effect::Pause(true)]);
    assert!(app.header.paused);
    assert_eq!(
        app.update(Action::Key(Command::Copy)),
        [Effect::Copy(Uuid::from_u128(4).to_string())]
    );
    assert_eq!(
        app.update(Action::Key(Command::Refresh)),
        [Effect::Refresh(Some(Uuid::from_u128(4)))]
    );
    assert_eq!(
        app.update(Action::Key(Command::RefreshAll)),
        [Effect::Refresh(None)]
    );
}

#[test]
fn alerts_become_toasts_that_expire() {
    let mut app = app_with(four());
    app.update(Action::Engine(vec![EngineEvent::Alert {
        customer_id: Uuid::from_u128(3),
        alert: AlertKind::SdkLinkExpiring,
        detail: "the SDK link expires in 200 s".into(),
    }]));
    assert_eq!(app.toasts.len(), 1);
    assert!(app.toasts[0].text.contains("Alan Test SDK link expiring"));
    assert!(app.timelines[&Uuid::from_u128(3)].back().unwrap().alert);
    app.update(Action::Tick(NOW + time::Duration::seconds(5)));
    assert!(app.toasts.is_empty());
}

#[test]
fn a_click_selects_the_row_under_the_pointer() {
    let mut app = app_with(four());
    app.update(Action::Click(2));
    assert_eq!(selected_name(&app), "Alan Test");
    app.update(Action::Click(7));
    assert_eq!(
        selected_name(&app),
        "Alan Test",
        "a click below the rows changes nothing"
    );
}

fn sandbox_app(states: Vec<CustomerState>) -> App {
    let mut app = App::new(
        Header {
            sandbox: true,
            ..Header::default()
        },
        NOW,
    );
    app.update(Action::Resize { table_rows: 3 });
    app.update(Action::Engine(vec![EngineEvent::Customers(states)]));
    app
}

fn select_named(app: &mut App, name: &str) {
    app.update(Action::Key(Command::Top));
    while selected_name(app) != name {
        app.update(Action::Key(Command::Down));
    }
}

#[test]
fn start_kyc_asks_first_then_sends_shows_it_in_flight_and_opens_the_link() {
    let mut app = sandbox_app(vec![state(5, "Barbara", Stage::ReadyToStart)]);
    let id = Uuid::from_u128(5);
    assert!(app.update(Action::Key(Command::StartKyc)).is_empty());
    assert!(
        matches!(&app.modal, Some(Modal::Confirm { title, .. }) if title == "Start KYC for Barbara Test?")
    );
    // Any other key leaves the question open; `n` closes it without sending.
    assert!(app.update(Action::ModalKey(ModalKey::Char('x'))).is_empty());
    assert!(app.modal.is_some());
    assert!(app.update(Action::ModalKey(ModalKey::Char('n'))).is_empty());
    assert!(app.modal.is_none());

    app.update(Action::Key(Command::StartKyc));
    let effects = app.update(Action::ModalKey(ModalKey::Char('y')));
    let request = Request::StartKyc {
        customer: id,
        name: "Barbara Test".into(),
    };
    assert_eq!(effects, [Effect::Send(request.clone())]);
    assert!(app.modal.is_none());
    assert_eq!(app.in_flight_for(id), Some(&request));
    // A second start while the first is out is not sent.
    app.update(Action::Key(Command::StartKyc));
    assert!(app.modal.is_none());
    assert!(app.toasts.iter().any(|t| t.text.contains("still starting KYC")));

    let link = crate::domain::SdkLink {
        link: "http://127.0.0.1:8080/sdk/abc".into(),
        expires_at: NOW + time::Duration::minutes(30),
    };
    app.update(Action::Done {
        request,
        result: Ok(Done::Started {
            sdk: Some(link.clone()),
        }),
    });
    assert_eq!(app.in_flight_for(id), None);
    assert_eq!(
        app.modal,
        Some(Modal::Sdk {
            name: "Barbara Test".into(),
            link: link.clone()
        })
    );
    assert!(app.needs_tick(), "the link's countdown ticks");
    assert_eq!(
        app.update(Action::ModalKey(ModalKey::Char('y'))),
        [Effect::Copy(link.link)]
    );
    app.update(Action::ModalKey(ModalKey::Esc));
    assert!(app.modal.is_none());
}

#[test]
fn a_failed_request_says_why_and_frees_the_row() {
    let mut app = sandbox_app(vec![state(6, "Radia", Stage::NeedsProfile)]);
    app.update(Action::Key(Command::StartKyc));
    let Some(Modal::Confirm { lines, request, .. }) = app.modal.clone() else {
        panic!("a confirmation")
    };
    assert!(
        lines.iter().any(|l| l.contains("name the missing fields")),
        "{lines:?}"
    );
    app.update(Action::ModalKey(ModalKey::Enter));
    app.update(Action::Done {
        request,
        result: Err(crate::tui::request::Failed::new(
            "HTTP 409 Profile incomplete (kyc.birthDate: required)",
        )),
    });
    assert!(app.in_flight.is_empty());
    let toast = app.toasts.last().map(|t| t.text.as_str()).unwrap_or("");
    assert_eq!(
        toast,
        "starting KYC for Radia Test failed: HTTP 409 Profile incomplete (kyc.birthDate: required)"
    );
    assert!(app.log.back().is_some_and(|l| l.alert && l.text == toast));
}

#[test]
fn read_only_disables_every_write_and_hides_its_hints() {
    let mut app = sandbox_app(four());
    app.header.read_only = true;
    for command in [
        Command::StartKyc,
        Command::Rerun,
        Command::Simulate,
        Command::AdvanceClock,
        Command::Upload,
        Command::New,
        Command::Edit,
        Command::Demo,
    ] {
        assert!(app.update(Action::Key(command)).is_empty());
        assert!(app.modal.is_none(), "{command:?}");
        assert!(!app.available(command));
    }
    assert!(app.toasts.iter().all(|t| t.text.starts_with("read-only:")));
    assert!(app.available(Command::Refresh));
    assert!(app.available(Command::Webhooks), "looking is not writing");
}

#[test]
fn simulate_and_the_clock_exist_only_in_the_sandbox() {
    let mut app = app_with(four());
    app.update(Action::Key(Command::Simulate));
    app.update(Action::Key(Command::AdvanceClock));
    assert!(app.modal.is_none());
    assert!(!app.available(Command::Simulate));
    assert!(app.available(Command::StartKyc));
}

#[test]
fn the_simulate_menu_offers_what_the_stage_allows() {
    let mut app = sandbox_app(four());
    select_named(&mut app, "Alan Test");
    app.update(Action::Key(Command::Simulate));
    // `1` is SDK_COMPLETE, which an onboarding awaiting the SDK accepts.
    let effects = app.update(Action::ModalKey(ModalKey::Char('1')));
    assert_eq!(
        effects,
        [Effect::Send(Request::Simulate {
            customer: Uuid::from_u128(3),
            name: "Alan Test".into(),
            action: crate::api::types::SimulateAction::SdkComplete,
        })]
    );
    app.update(Action::Done {
        request: Request::Simulate {
            customer: Uuid::from_u128(3),
            name: "Alan Test".into(),
            action: crate::api::types::SimulateAction::SdkComplete,
        },
        result: Ok(Done::Simulated),
    });

    select_named(&mut app, "Ada Test");
    app.update(Action::Key(Command::Simulate));
    // Approved: nothing applies; picking says why and sends nothing.
    assert!(app.update(Action::ModalKey(ModalKey::Char('4'))).is_empty());
    assert!(app.modal.is_some());
    assert!(
        app.toasts
            .last()
            .is_some_and(|t| t.text.contains("does not apply"))
    );
}

#[test]
fn the_clock_menu_advances_by_the_chosen_step() {
    let mut app = sandbox_app(four());
    app.update(Action::Key(Command::AdvanceClock));
    app.update(Action::ModalKey(ModalKey::Down));
    let effects = app.update(Action::ModalKey(ModalKey::Enter));
    assert_eq!(effects, [Effect::Send(Request::AdvanceClock { seconds: 1800 })]);
}

#[test]
fn upload_picks_a_file_from_the_inbox_then_its_type_missing_first() {
    use crate::domain::DocumentType;
    use crate::tui::modal::FileEntry;
    use std::path::PathBuf;
    let mut app = sandbox_app(vec![state(8, "Grace", Stage::CollectingRequirements)]);
    app.header.inbox = Some("/data/inbox".into());
    let effects = app.update(Action::Key(Command::Upload));
    assert_eq!(effects, [Effect::ListDir(PathBuf::from("/data/inbox"))]);
    let entry = |name: &str, dir| FileEntry {
        name: name.into(),
        dir,
        size: 1000,
    };
    app.update(Action::Listed(
        PathBuf::from("/data/inbox"),
        Ok(vec![entry("scans", true), entry("w9.pdf", false)]),
    ));
    // Into a folder and back out: both are reads the picker asks for.
    assert_eq!(
        app.update(Action::ModalKey(ModalKey::Enter)),
        [Effect::ListDir(PathBuf::from("/data/inbox/scans"))]
    );
    assert_eq!(
        app.update(Action::ModalKey(ModalKey::Backspace)),
        [Effect::ListDir(PathBuf::from("/data"))]
    );
    // A folder that cannot be read leaves the picker where it was, and says so.
    app.update(Action::Listed(
        PathBuf::from("/data"),
        Err("cannot read /data: denied".into()),
    ));
    assert!(matches!(&app.modal, Some(Modal::Files(f)) if f.dir == std::path::Path::new("/data/inbox")));
    assert!(app.toasts.last().is_some_and(|t| t.text.contains("denied")));

    app.update(Action::ModalKey(ModalKey::Down));
    assert!(app.update(Action::ModalKey(ModalKey::Enter)).is_empty());
    let Some(Modal::Menu { title, items, .. }) = &app.modal else {
        panic!("the type chooser")
    };
    assert_eq!(title, "Upload w9.pdf for Grace Test as");
    assert_eq!(items.len(), DocumentType::ALL.len());
    let effects = app.update(Action::ModalKey(ModalKey::Char('2')));
    let [Effect::Send(Request::Upload { path, .. })] = effects.as_slice() else {
        panic!("an upload: {effects:?}")
    };
    assert_eq!(path, &PathBuf::from("/data/inbox/w9.pdf"));
    assert_eq!(app.last_folder, Some(PathBuf::from("/data/inbox")));

    // Quitting now asks first.
    assert!(app.update(Action::Key(Command::Quit)).is_empty());
    assert!(!app.quit);
    assert!(
        matches!(&app.modal, Some(Modal::ConfirmQuit { lines }) if lines[0].starts_with("still uploading w9.pdf"))
    );
    assert_eq!(app.update(Action::ModalKey(ModalKey::Char('y'))), [Effect::Quit]);
    assert!(app.quit);
}

#[test]
fn a_new_customer_form_checks_locally_then_keeps_everything_on_a_422() {
    use crate::domain::FieldError;
    let mut app = sandbox_app(four());
    app.update(Action::Key(Command::New));
    let type_text = |app: &mut App, text: &str| {
        for c in text.chars() {
            app.update(Action::ModalKey(ModalKey::Char(c)));
        }
    };
    // email, then three fields down: first name.
    type_text(&mut app, "ada@example.com");
    for _ in 0..3 {
        app.update(Action::ModalKey(ModalKey::Tab));
    }
    type_text(&mut app, "Ada");
    app.update(Action::ModalKey(ModalKey::Tab));
    type_text(&mut app, "Lovelace");
    app.update(Action::ModalKey(ModalKey::Tab));
    type_text(&mut app, "12/04/1990");
    // Invalid locally: nothing is sent, the date is marked.
    assert!(app.update(Action::ModalKey(ModalKey::Enter)).is_empty());
    let Some(Modal::Form(form)) = &app.modal else {
        panic!("the form")
    };
    assert_eq!(form.fields[form.focus].path, "kyc.birthDate");
    assert!(form.fields[form.focus].error.is_some());

    for _ in 0.."12/04/1990".len() {
        app.update(Action::ModalKey(ModalKey::Backspace));
    }
    type_text(&mut app, "1990-04-12");
    let effects = app.update(Action::ModalKey(ModalKey::Enter));
    let [Effect::Send(request @ Request::Create { profile })] = effects.as_slice() else {
        panic!("a create: {effects:?}")
    };
    assert_eq!(profile.email.as_deref(), Some("ada@example.com"));
    let request = request.clone();
    // The API refuses a field: it is shown on it, and what was typed stays.
    app.update(Action::Done {
        request: request.clone(),
        result: Err(crate::tui::request::Failed {
            message: "HTTP 422 Invalid customer".into(),
            fields: vec![FieldError::new("email", "is used by another customer")],
        }),
    });
    let Some(Modal::Form(form)) = &app.modal else {
        panic!("the form stays open")
    };
    assert!(!form.sending);
    assert_eq!(form.fields[form.focus].path, "email");
    assert_eq!(
        form.fields[form.focus].error.as_deref(),
        Some("is used by another customer")
    );
    assert_eq!(form.fields[form.focus].input.value(), "ada@example.com");

    // Sent again as it is; saved: the form closes and the new row is selected when it arrives.
    let effects = app.update(Action::ModalKey(ModalKey::Enter));
    let [Effect::Send(request)] = effects.as_slice() else {
        panic!("sent again: {effects:?}")
    };
    let id = Uuid::from_u128(42);
    app.update(Action::Done {
        request: request.clone(),
        result: Ok(Done::Saved {
            customer: id,
            name: "Ada Lovelace".into(),
        }),
    });
    assert!(app.modal.is_none());
    // Shown even where the tab would hide it.
    app.update(Action::Key(Command::TabApproved));
    app.update(Action::Engine(vec![EngineEvent::Customers(vec![state(
        42,
        "Zed",
        Stage::ReadyToStart,
    )])]));
    assert_eq!(app.table.selected, Some(id));
    assert_eq!(app.table.tab, Tab::All);
}

#[test]
fn edit_opens_on_the_fields_update_profile_asks_for() {
    let mut app = sandbox_app(four());
    select_named(&mut app, "Grace Test");
    app.update(Action::Key(Command::Edit));
    assert!(app.modal.is_none(), "not before the profile is loaded");
    assert!(
        app.toasts
            .last()
            .is_some_and(|t| t.text.contains("still loading"))
    );
    let profile: crate::domain::CustomerProfile = serde_json::from_value(serde_json::json!({
        "kyc": {"firstName": "Grace", "lastName": "Test"}
    }))
    .unwrap();
    let customer = Customer::new(Uuid::from_u128(2), profile, NOW);
    let view = crate::domain::WorkflowView {
        stage: Stage::NeedsProfile,
        onboarding: None,
        sdk: None,
        identity_verified: false,
    };
    let status = crate::domain::evaluate(
        &customer,
        &Default::default(),
        &view,
        crate::domain::Strategy::CfKyc,
        NOW,
    );
    app.update(Action::Details(Box::new(Details {
        id: customer.id,
        customer: Some(customer),
        status: Some(status),
        history: Vec::new(),
        documents: None,
    })));
    app.update(Action::Key(Command::Edit));
    let Some(Modal::Form(form)) = &app.modal else {
        panic!("the form")
    };
    assert_eq!(form.fields[form.focus].path, "kyc.birthDate");
    assert_eq!(form.title(), "Edit Grace Test");
    // Unchanged: Enter says so and sends nothing.
    assert!(app.update(Action::ModalKey(ModalKey::Enter)).is_empty());
    assert!(app.modal.is_none());
}

#[test]
fn an_answer_reaches_only_the_form_that_sent_it() {
    let mut app = sandbox_app(four());
    app.update(Action::Key(Command::New));
    for c in "a@example.com".chars() {
        app.update(Action::ModalKey(ModalKey::Char(c)));
    }
    let effects = app.update(Action::ModalKey(ModalKey::Enter));
    let [Effect::Send(sent)] = effects.as_slice() else {
        panic!("a create: {effects:?}")
    };
    let sent = sent.clone();
    // While it is out, keys change nothing and a second new customer waits.
    app.update(Action::ModalKey(ModalKey::Char('x')));
    let Some(Modal::Form(form)) = &app.modal else {
        panic!("the form")
    };
    assert_eq!(form.fields[0].input.value(), "a@example.com");
    // Another form, by some path, is open when the answer comes: it is left alone.
    app.modal = Some(Modal::Form(Box::default()));
    app.update(Action::Done {
        request: sent.clone(),
        result: Err(crate::tui::request::Failed {
            message: "HTTP 422".into(),
            fields: vec![crate::domain::FieldError::new("email", "taken")],
        }),
    });
    let Some(Modal::Form(other)) = &app.modal else {
        panic!("still open")
    };
    assert!(other.fields.iter().all(|f| f.error.is_none()));
    app.update(Action::Done {
        request: sent,
        result: Ok(Done::Saved {
            customer: Uuid::from_u128(77),
            name: "A".into(),
        }),
    });
    assert!(
        matches!(app.modal, Some(Modal::Form(_))),
        "not closed by someone else's answer"
    );
}

#[test]
fn a_paste_and_the_end_of_the_filter_are_actions_like_any_other() {
    let mut app = app_with(four());
    app.update(Action::Key(Command::Filter));
    app.update(Action::FilterPaste("gra\nce".into()));
    assert_eq!(app.table.filter, "grace", "control characters are not pasted");
    assert_eq!(names(&app), ["Grace Test"]);
    app.update(Action::FinishFilter { keep: true });
    assert!(!app.editing_filter);
    assert_eq!(names(&app), ["Grace Test"], "Enter keeps the filter");
    app.update(Action::Key(Command::Filter));
    app.update(Action::FinishFilter { keep: false });
    assert_eq!(app.table.view.len(), 4, "Esc clears it");
    assert_eq!(
        selected_name(&app),
        "Grace Test",
        "the selection stays on its customer"
    );
}

/// SPEC §11: `x` exports the rows of the current tab and filter, in their order (read-only
/// may export: it writes nothing through the API), and says where.
#[test]
fn x_exports_the_rows_shown_and_says_where() {
    let mut app = app_with(four());
    app.header.read_only = true;
    app.update(Action::Key(Command::Filter));
    for c in "!ada".chars() {
        app.update(Action::FilterInput(c));
    }
    app.update(Action::FinishFilter { keep: true });
    assert!(app.available(Command::Export));
    let effects = app.update(Action::Key(Command::Export));
    let shown: Vec<Uuid> = [4, 2, 3].into_iter().map(Uuid::from_u128).collect();
    assert_eq!(effects, [Effect::Export(shown)]);

    let path = std::path::PathBuf::from("/data/exports/kycdash-20261206T050312Z.csv");
    app.update(Action::Exported(Ok((path, 3))));
    let said = "exported 3 customers to /data/exports/kycdash-20261206T050312Z.csv";
    assert!(app.toasts.iter().any(|t| t.text == said), "a toast says where");
    app.update(Action::Exported(Err("disk full".into())));
    assert!(
        app.toasts
            .iter()
            .any(|t| t.text == "the export failed: disk full")
    );

    // Nothing shown, nothing exported.
    let mut empty = app_with(Vec::new());
    assert_eq!(empty.update(Action::Key(Command::Export)), []);
}

/// SPEC §11, marks: Space marks and unmarks, `*` marks every row shown, Esc clears; marks
/// belong to customers, so they survive sorting and filtering; `R`, `y`, `x` then act on them.
#[test]
fn marks_survive_sort_and_filter_and_r_y_x_act_on_them() {
    let mut app = app_with(four());
    // Edsger (selected first), then Alan.
    app.update(Action::Key(Command::Mark));
    app.update(Action::Key(Command::Down));
    app.update(Action::Key(Command::Down));
    app.update(Action::Key(Command::Mark));
    let (edsger, alan) = (Uuid::from_u128(4), Uuid::from_u128(3));
    assert_eq!(app.table.marked(), [edsger, alan]);
    // Unmark and mark again.
    app.update(Action::Key(Command::Mark));
    assert_eq!(app.table.marked(), [edsger]);
    app.update(Action::Key(Command::Mark));

    app.update(Action::Key(Command::Sort));
    app.update(Action::Key(Command::Reverse));
    app.update(Action::Key(Command::Filter));
    app.update(Action::FilterInput('g'));
    app.update(Action::FinishFilter { keep: true });
    let mut shown = names(&app);
    shown.sort();
    assert_eq!(shown, ["Edsger Test", "Grace Test"]);
    let mut marked = app.table.marked();
    marked.sort();
    assert_eq!(
        marked,
        [alan, edsger],
        "Alan is hidden by the filter and still marked"
    );

    // R refreshes the marked ones, y copies their ids, x exports them.
    let refreshed = app.update(Action::Key(Command::Refresh));
    assert_eq!(refreshed.len(), 2);
    assert!(refreshed.contains(&Effect::Refresh(Some(alan))));
    let copied = app.update(Action::Key(Command::Copy));
    assert_eq!(copied, [Effect::Copy(format!("{edsger}\n{alan}"))]);
    assert_eq!(
        app.update(Action::Key(Command::Export)),
        [Effect::Export(vec![edsger, alan])]
    );

    // `*` marks every row shown (Grace); Esc clears the filter first, then the marks.
    app.update(Action::Key(Command::MarkShown));
    assert_eq!(app.table.marks.len(), 3);
    app.update(Action::Key(Command::Back));
    assert!(app.table.filter.is_empty());
    assert_eq!(app.table.marks.len(), 3);
    app.update(Action::Key(Command::Back));
    assert!(app.table.marks.is_empty());
    let in_view: Vec<Uuid> = app.table.view.iter().map(|&i| app.table.rows[i].id()).collect();
    assert_eq!(
        app.update(Action::Key(Command::Export)),
        [Effect::Export(in_view)]
    );
}

/// SPEC §11: `r` with marks reruns only the marked onboardings that expired, after a confirm
/// that names how many are rerun and who is skipped and why; the result is one toast and a
/// log line per failure, in the API's words.
#[test]
fn r_with_marks_reruns_the_expired_ones_and_names_the_skipped() {
    let mut app = app_with(vec![
        state(1, "Ada", Stage::Expired),
        state(2, "Grace", Stage::ReadyToStart),
        state(3, "Alan", Stage::Expired),
    ]);
    app.update(Action::Key(Command::MarkShown));
    app.update(Action::Key(Command::Rerun));
    let Some(Modal::Confirm {
        title,
        lines,
        request,
    }) = app.modal.clone()
    else {
        panic!("a confirm, not {:?}", app.modal);
    };
    assert_eq!(title, "Rerun KYC for 2 marked customers?");
    assert_eq!(
        lines[0],
        "Reruns 2 expired onboardings: each gets a new onboarding and new SDK links."
    );
    assert_eq!(lines[1], "Skipped 1: Grace Test (ready_to_start, not expired).");
    let Request::RerunMany { customers } = &request else {
        panic!("{request:?}");
    };
    let mut ids: Vec<Uuid> = customers.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, [Uuid::from_u128(1), Uuid::from_u128(3)]);

    app.modal = None;
    app.update(Action::Done {
        request,
        result: Ok(Done::Many {
            succeeded: 1,
            failed: vec![("Alan Test".into(), "HTTP 409 Conflict: not expired".into())],
        }),
    });
    assert!(
        app.toasts
            .iter()
            .any(|t| t.text == "rerunning KYC: done for 1 of 2; 1 failed (see the event log)"),
        "{:?}",
        app.toasts
    );
    assert!(
        app.log
            .iter()
            .any(|l| l.text == "rerunning KYC for Alan Test failed: HTTP 409 Conflict: not expired")
    );

    // Nothing expired among the marks: said, nothing asked.
    let mut none = app_with(vec![state(2, "Grace", Stage::ReadyToStart)]);
    none.update(Action::Key(Command::MarkShown));
    assert_eq!(none.update(Action::Key(Command::Rerun)), []);
    assert!(none.modal.is_none());
}

/// Found by the dashboard fuzz target (its crash input, as values): one batch naming a new
/// customer and a changed one (twice) left the table out of the order a fresh sort gives.
#[test]
fn a_batch_changing_several_rows_leaves_the_table_in_order() {
    let row = |n: u128, name: &str, stage: Option<Stage>| {
        let profile = crate::domain::CustomerProfile {
            kyc: (!name.is_empty()).then(|| crate::domain::Kyc {
                first_name: Some(name.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        CustomerState {
            customer: crate::sync::cache::CustomerSummary::of(&Customer::new(
                Uuid::from_u128(n),
                profile,
                NOW,
            ))
            .unwrap()
            .0
            .into(),
            status: None,
            stage,
            since: Some(NOW),
        }
    };
    let mut app = App::new(Header::default(), NOW);
    app.update(Action::Resize { table_rows: 26 });
    app.update(Action::Engine(vec![EngineEvent::Customers(vec![
        row(9, "", Some(Stage::CollectingRequirements)),
        row(8, "\0E", None),
        row(1, "", None),
    ])]));
    app.update(Action::Engine(vec![EngineEvent::Customers(vec![
        row(2, "", None),
        row(8, "", Some(Stage::ReadyToStart)),
        row(8, "", None),
    ])]));
    let mut fresh = app.table.clone();
    fresh.refilter(NOW);
    assert_eq!(app.table.view, fresh.view);
}
