//! Actions that write, from the key to the answer: open the action's dialog (or say why it
//! cannot be used now), send what the dialog decided, and read what came back.

use std::path::PathBuf;

use uuid::Uuid;

use super::{App, Effect};
use crate::domain::SdkLink;
use crate::tui::form::{Checked, Form, FormKind};
use crate::tui::keymap::Command;
use crate::tui::modal::{self, Modal};
use crate::tui::request::{Done, Failed, Request};

impl App {
    /// Opens the dialog of an action that writes, or says why it cannot be used now.
    pub(super) fn open_action(&mut self, command: Command, effects: &mut Vec<Effect>) {
        if self.header.read_only {
            return self.toast(
                "read-only: actions that write are disabled (--read-only, or read_only in the profile)"
                    .into(),
            );
        }
        if command.sandbox_only() && !self.header.sandbox {
            return self.toast("simulating and moving the clock exist only in the sandbox".into());
        }
        match command {
            Command::AdvanceClock => self.modal = Some(modal::clock_menu()),
            Command::New => self.open_new(),
            _ => self.open_for_selected(command, effects),
        }
    }

    fn open_new(&mut self) {
        if self.in_flight.iter().any(|r| matches!(r, Request::Create { .. })) {
            return self.toast("still creating the last customer; a moment".into());
        }
        self.modal = Some(Modal::Form(Box::default()));
    }

    /// The dialog of an action on the selected customer, unless one is in flight for them.
    fn open_for_selected(&mut self, command: Command, effects: &mut Vec<Effect>) {
        let Some(row) = self.selected_row() else {
            return self.toast("select a customer first".into());
        };
        let (id, name, stage) = (row.id(), row.name().to_string(), row.stage());
        if let Some(request) = self.in_flight_for(id) {
            return self.toast(format!("still {} for {name}", request.doing()));
        }
        match command {
            Command::Edit => self.open_edit(id, &name),
            Command::Upload => self.open_upload(id, &name, effects),
            Command::StartKyc => self.modal = Some(modal::confirm_start(id, &name, stage)),
            Command::Rerun => self.modal = Some(modal::confirm_rerun(id, &name, stage)),
            _ => self.modal = Some(modal::simulate_menu(id, &name, stage)),
        }
    }

    /// `r` with marks: a confirm naming how many expired onboardings will be rerun and how
    /// many marked customers are skipped, and why; then one request for each.
    pub(super) fn rerun_marked(&mut self) {
        if self.header.read_only {
            return self.toast(
                "read-only: actions that write are disabled (--read-only, or read_only in the profile)"
                    .into(),
            );
        }
        let mut expired = Vec::new();
        let mut skipped = Vec::new();
        for id in self.table.marked() {
            let Some(row) = self.table.row(id) else { continue };
            let name = row.name().to_string();
            match (row.stage(), self.in_flight_for(id)) {
                (_, Some(request)) => skipped.push(format!("{name} (still {})", request.doing())),
                (Some(crate::domain::Stage::Expired), None) => expired.push((id, name)),
                (stage, None) => skipped.push(format!(
                    "{name} ({}, not expired)",
                    stage.map_or("stage unknown yet", |s| s.as_str())
                )),
            }
        }
        if expired.is_empty() {
            return self.toast(format!(
                "none of the {} marked customers has an expired onboarding: nothing to rerun",
                skipped.len()
            ));
        }
        let mut lines = vec![format!(
            "Reruns {} expired onboarding{}: each gets a new onboarding and new SDK links.",
            expired.len(),
            if expired.len() == 1 { "" } else { "s" }
        )];
        if !skipped.is_empty() {
            const NAMED: usize = 5;
            let mut named = skipped.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
            if skipped.len() > NAMED {
                named.push_str(&format!(" and {} more", skipped.len() - NAMED));
            }
            lines.push(format!("Skipped {}: {named}.", skipped.len()));
        }
        self.modal = Some(Modal::Confirm {
            title: format!("Rerun KYC for {} marked customers?", expired.len()),
            lines,
            request: Request::RerunMany { customers: expired },
        });
    }

    /// The profile form, once the profile is loaded, open on the fields UPDATE_PROFILE asks for.
    fn open_edit(&mut self, id: Uuid, name: &str) {
        let loaded = self.details.as_ref().filter(|d| d.id == id);
        let Some(customer) = loaded.and_then(|d| d.customer.as_ref()) else {
            return self.toast(format!(
                "{name}'s profile is still loading; try again in a moment"
            ));
        };
        let focus = loaded
            .and_then(|d| d.status.as_ref())
            .map(|status| crate::domain::advise(customer, status).fields_to_patch)
            .unwrap_or_default();
        self.modal = Some(Modal::Form(Box::new(Form::edit(customer, name, &focus))));
    }

    /// The file picker, where it was last, else in the inbox.
    fn open_upload(&mut self, id: Uuid, name: &str, effects: &mut Vec<Effect>) {
        let dir = self
            .last_folder
            .clone()
            .or_else(|| self.header.inbox.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."));
        self.modal = Some(Modal::Files(modal::Files::new(id, name, dir.clone())));
        effects.push(Effect::ListDir(dir));
    }

    /// The document type chooser for a picked file, with what the customer is missing (from
    /// their status when it is loaded, else the FATCA form their nationality calls for).
    pub(super) fn choose_type(&mut self, path: PathBuf) {
        let Some(Modal::Files(files)) = self.modal.take() else {
            return;
        };
        let details = self.details.as_ref().filter(|d| d.id == files.customer);
        let missing = match details.and_then(|d| Some((d.customer.as_ref()?, d.status.as_ref()?))) {
            Some((customer, status)) => crate::domain::advise(customer, status).documents_to_upload,
            None => details
                .and_then(|d| d.customer.as_ref())
                .map(|c| vec![crate::domain::fatca_form(c)])
                .unwrap_or_default(),
        };
        self.modal = Some(modal::type_menu(files.customer, &files.name, path, &missing));
    }

    /// The form asks to be saved: checked here first, as the API will check it.
    pub(super) fn submit(&mut self, effects: &mut Vec<Effect>) {
        let today = self.now.date();
        let Some(Modal::Form(form)) = &mut self.modal else {
            return;
        };
        if form.sending {
            return;
        }
        let request = match form.check(today) {
            Checked::Invalid => return,
            Checked::Create(profile) => Request::Create { profile },
            Checked::Patch(patch) => {
                if patch.as_object().is_some_and(|o| o.is_empty()) {
                    self.modal = None;
                    return self.toast("nothing changed".into());
                }
                let (Some(customer), FormKind::Edit { name, .. }) = (form.customer(), &form.kind) else {
                    return;
                };
                Request::Patch {
                    customer,
                    name: name.clone(),
                    patch,
                }
            }
        };
        form.sending = true;
        form.message = None;
        self.send(request, effects);
    }

    pub(super) fn send(&mut self, request: Request, effects: &mut Vec<Effect>) {
        let text = format!("{}{}…", request.doing(), request.subject());
        self.push_log(request.customer(), text, false);
        self.in_flight.push(request.clone());
        effects.push(Effect::Send(request));
    }

    /// What the row shows while a request for it is in flight.
    pub fn in_flight_for(&self, id: Uuid) -> Option<&Request> {
        self.in_flight.iter().find(|r| r.customer() == Some(id))
    }

    /// A request's answer: logged, said in a toast, and shown where it belongs.
    pub(super) fn done(&mut self, request: Request, result: Result<Done, Failed>, effects: &mut Vec<Effect>) {
        if let Some(at) = self.in_flight.iter().position(|r| *r == request) {
            self.in_flight.remove(at);
        }
        let customer = request.customer();
        let (doing, subject) = (request.doing(), request.subject());
        match result {
            Ok(Done::Started { sdk }) => self.started(&request, sdk),
            Ok(Done::Simulated) => self.report(customer, format!("{doing}{subject}: done")),
            Ok(Done::Uploaded { duplicate: true }) => self.report(
                customer,
                format!("{doing}{subject}: the same file was uploaded before for this type, not sent again"),
            ),
            Ok(Done::Uploaded { duplicate: false }) => {
                self.report(customer, format!("{doing}{subject}: done"))
            }
            Ok(Done::ClockAdvanced { now }) => {
                let now = now
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                self.report(None, format!("{doing}: the sandbox clock reads {now}"));
            }
            Ok(Done::Resent) => {
                self.report(None, format!("{doing}: queued again"));
                if let (Request::Resend { endpoint, .. }, Some(Modal::Webhooks(view))) =
                    (&request, &mut self.modal)
                {
                    view.deliveries = None;
                    effects.push(Effect::LoadDeliveries(*endpoint));
                }
            }
            Ok(Done::Saved { customer, name }) => self.saved(&request, customer, name),
            Ok(Done::Many { succeeded, failed }) => {
                // One line per failure, in the API's words; one toast for the whole.
                for (name, why) in &failed {
                    self.push_log(None, format!("{doing} for {name} failed: {why}"), true);
                }
                let total = succeeded + failed.len();
                let text = match failed.len() {
                    0 => format!("{doing}: done for all {total}"),
                    n => format!("{doing}: done for {succeeded} of {total}; {n} failed (see the event log)"),
                };
                self.push_log(None, text.clone(), !failed.is_empty());
                self.toast(text);
            }
            Err(error) => self.failed(&request, error),
        }
    }

    /// Said in the event log (and the customer's timeline) and in a toast.
    fn report(&mut self, customer: Option<Uuid>, text: String) {
        self.push_log(customer, text.clone(), false);
        self.toast(text);
    }

    /// KYC started: its SDK link in a dialog, unless another dialog is open.
    fn started(&mut self, request: &Request, sdk: Option<SdkLink>) {
        let name = match request {
            Request::StartKyc { name, .. } | Request::Rerun { name, .. } => name.clone(),
            _ => String::new(),
        };
        self.push_log(request.customer(), format!("KYC started for {name}"), false);
        match sdk {
            Some(link) if self.modal.is_none() => self.modal = Some(Modal::Sdk { name, link }),
            Some(_) => self.toast(format!("KYC started for {name}: its SDK link is in the details")),
            None => self.toast(format!("KYC started for {name} (external path: no SDK link)")),
        }
    }

    /// A customer created or saved: the form that sent it closes; a new customer is
    /// selected now if the engine reported the row already, else when it does.
    fn saved(&mut self, request: &Request, customer: Uuid, name: String) {
        if matches!(&self.modal, Some(Modal::Form(form)) if form.answers(request)) {
            self.modal = None;
        }
        let text = match request {
            Request::Create { .. } => {
                self.select_when_seen = Some(customer);
                self.select_created();
                format!("created {name}")
            }
            _ => format!("saved the profile of {name}"),
        };
        self.report(Some(customer), text);
    }

    /// A request failed: said for longer, and a form that sent it stays open with everything
    /// typed and the API's complaints on its fields.
    fn failed(&mut self, request: &Request, error: Failed) {
        let text = format!("{}{} failed: {error}", request.doing(), request.subject());
        self.push_log(request.customer(), text.clone(), true);
        self.toast_for(text, time::Duration::seconds(10));
        if let Some(Modal::Form(form)) = &mut self.modal
            && form.answers(request)
        {
            form.sending = false;
            form.show_errors(&error.fields);
            if error.fields.is_empty() {
                form.message = Some(error.message);
            }
        }
    }
}
