//! The customer form of `n` (new customer) and `e` (edit profile): one text input per profile
//! field, checked with the domain's own validation before anything is sent, and the API's
//! 422 field errors shown on their fields after. What was typed is kept until it is saved or
//! knowingly discarded.

use serde_json::{Map, Value};
use time::Date;
use tui_input::{Input, InputRequest};
use uuid::Uuid;

use super::keymap::ModalKey;
use super::request::Request;
use crate::domain::{Customer, CustomerProfile, FieldError};

/// One field: its JSON path (as the API's field errors name it), its label, and the accepted
/// values in words.
struct Spec {
    path: &'static str,
    label: &'static str,
    hint: &'static str,
}

const SPECS: [Spec; 15] = [
    spec("email", "Email", ""),
    spec("externalId", "External id", "your own id for the customer"),
    spec(
        "ipAddress",
        "IP address",
        "IPv4 or IPv6; without one a proof of address is needed",
    ),
    spec("kyc.firstName", "First name", ""),
    spec(
        "kyc.lastName",
        "Last name",
        "sandbox: REVIEW, DENY, ERROR or EXPIRE steer the outcome",
    ),
    spec(
        "kyc.birthDate",
        "Birth date",
        "YYYY-MM-DD, in the past, not before 1900",
    ),
    spec("kyc.documentNumber", "Document number", ""),
    spec(
        "kyc.nationality",
        "Nationality",
        "ISO 3166 alpha-2: US, GB, FR, DE, …",
    ),
    spec(
        "kyc.occupation",
        "Occupation",
        "SOC-2018 major group: 11 13 15 17 19 21 23 25 27 29 31 33 35 37 39 41 43 45 47 49 51 53 55",
    ),
    spec("kyc.mainAddress.street1", "Street", ""),
    spec("kyc.mainAddress.street2", "Street (2)", ""),
    spec("kyc.mainAddress.cityCounty", "City", ""),
    spec("kyc.mainAddress.stateRegion", "State / region", ""),
    spec("kyc.mainAddress.zip", "ZIP", ""),
    spec(
        "kyc.mainAddress.countryCode",
        "Country",
        "ISO 3166 alpha-2: US, GB, FR, DE, …",
    ),
];

const fn spec(path: &'static str, label: &'static str, hint: &'static str) -> Spec {
    Spec { path, label, hint }
}

/// Fields whose values are codes: sent in upper case whatever was typed.
fn is_code(path: &str) -> bool {
    matches!(path, "kyc.nationality" | "kyc.mainAddress.countryCode")
}

#[derive(Debug, Clone)]
pub struct Field {
    pub path: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub input: Input,
    /// The value when the form opened (empty for a new customer).
    pub original: String,
    pub error: Option<String>,
}

/// `Input` compares nothing; a field is its value, its cursor and what is said about it.
impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        (
            self.path,
            &self.original,
            &self.error,
            self.input.value(),
            self.input.cursor(),
        ) == (
            other.path,
            &other.original,
            &other.error,
            other.input.value(),
            other.input.cursor(),
        )
    }
}

impl Eq for Field {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormKind {
    New,
    Edit { customer: Box<Customer>, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub kind: FormKind,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// Sent, not answered yet.
    pub sending: bool,
    /// Esc with unsaved changes: asking whether to discard them.
    pub confirm_discard: bool,
    /// What went wrong that no field explains.
    pub message: Option<String>,
}

/// What a form's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// A new customer, valid.
    Create(Box<CustomerProfile>),
    /// A valid merge patch of what changed (maybe nothing).
    Patch(Value),
    /// The fields say what is wrong.
    Invalid,
}

/// What a key did to a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormOutcome {
    Stay,
    Close,
    Submit,
}

impl Form {
    pub fn new() -> Form {
        Form::with_values(FormKind::New, |_| String::new())
    }

    /// The form for editing a customer, focused on the first of `focus_on` (the fields an
    /// UPDATE_PROFILE asks for), else the first field.
    pub fn edit(customer: &Customer, name: &str, focus_on: &[&str]) -> Form {
        let document = serde_json::to_value(customer.profile()).unwrap_or(Value::Null);
        let mut form = Form::with_values(
            FormKind::Edit {
                customer: Box::new(customer.clone()),
                name: name.into(),
            },
            |path| {
                document
                    .pointer(&pointer(path))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            },
        );
        form.focus = form
            .fields
            .iter()
            .position(|f| focus_on.contains(&f.path))
            .unwrap_or(0);
        form
    }

    fn with_values(kind: FormKind, value: impl Fn(&str) -> String) -> Form {
        let fields = SPECS
            .iter()
            .map(|spec| {
                let original = value(spec.path);
                Field {
                    path: spec.path,
                    label: spec.label,
                    hint: spec.hint,
                    input: Input::new(original.clone()),
                    original,
                    error: None,
                }
            })
            .collect();
        Form {
            kind,
            fields,
            focus: 0,
            sending: false,
            confirm_discard: false,
            message: None,
        }
    }

    pub fn title(&self) -> String {
        match &self.kind {
            FormKind::New => "New customer".into(),
            FormKind::Edit { name, .. } => format!("Edit {name}"),
        }
    }

    /// Whether anything differs from when the form opened.
    pub fn dirty(&self) -> bool {
        self.fields.iter().any(|f| f.input.value() != f.original)
    }

    fn value(field: &Field) -> String {
        let value = field.input.value().trim();
        if is_code(field.path) {
            value.to_ascii_uppercase()
        } else {
            value.to_string()
        }
    }

    /// The request body: every filled field for a new customer; for an edit, a merge patch
    /// of what changed (a cleared field is `null`, which removes it).
    pub fn body(&self) -> Value {
        let mut body = Value::Object(Map::new());
        for field in &self.fields {
            let value = Form::value(field);
            let changed = field.input.value() != field.original;
            match (&self.kind, value.is_empty()) {
                (FormKind::New, false) => set(&mut body, field.path, Value::String(value)),
                (FormKind::Edit { .. }, false) if changed => set(&mut body, field.path, Value::String(value)),
                (FormKind::Edit { .. }, true) if changed => set(&mut body, field.path, Value::Null),
                _ => {}
            }
        }
        body
    }

    /// Checks the form with the domain's validation, as the API will; marks the fields that
    /// fail.
    pub fn check(&mut self, today: Date) -> Checked {
        let body = self.body();
        let result = match &self.kind {
            FormKind::New => CustomerProfile::from_json(body, today).map(|p| Checked::Create(Box::new(p))),
            FormKind::Edit { customer, .. } => {
                customer.merge_patch(&body, today).map(|_| Checked::Patch(body))
            }
        };
        match result {
            Ok(checked) => {
                self.show_errors(&[]);
                checked
            }
            Err(errors) => {
                self.show_errors(&errors.0);
                Checked::Invalid
            }
        }
    }

    /// Puts each error on its field (an error of a group, `kyc.mainAddress`, on its first
    /// field), moves the focus to the first failing field, and keeps the rest as a message.
    pub fn show_errors(&mut self, errors: &[FieldError]) {
        let mut unplaced = Vec::new();
        for field in &mut self.fields {
            field.error = None;
        }
        for error in errors {
            let at = self
                .fields
                .iter()
                .position(|f| f.path == error.field)
                .or_else(|| {
                    (!error.field.is_empty())
                        .then(|| self.fields.iter().position(|f| f.path.starts_with(&error.field)))
                        .flatten()
                });
            match at {
                Some(at) => {
                    let field = &mut self.fields[at];
                    field.error = Some(match field.error.take() {
                        Some(known) => format!("{known}; {}", error.message),
                        None => error.message.clone(),
                    });
                }
                None if error.field.is_empty() => unplaced.push(error.message.clone()),
                None => unplaced.push(format!("{}: {}", error.field, error.message)),
            }
        }
        if let Some(first) = self.fields.iter().position(|f| f.error.is_some()) {
            self.focus = first;
        }
        self.message = (!unplaced.is_empty()).then(|| unplaced.join("; "));
    }

    /// Whether `request` is the one this form sent and waits for.
    pub fn answers(&self, request: &Request) -> bool {
        self.sending
            && match (&self.kind, request) {
                (FormKind::New, Request::Create { .. }) => true,
                (FormKind::Edit { customer, .. }, Request::Patch { customer: id, .. }) => customer.id == *id,
                _ => false,
            }
    }

    pub fn key(&mut self, key: ModalKey) -> FormOutcome {
        if self.sending {
            // What is on screen is what was sent; the answer decides what happens to it.
            return FormOutcome::Stay;
        }
        if self.confirm_discard {
            return match key {
                ModalKey::Char('y' | 'Y') => FormOutcome::Close,
                _ => {
                    self.confirm_discard = false;
                    FormOutcome::Stay
                }
            };
        }
        let count = self.fields.len();
        let dirty = self.dirty();
        let input = &mut self.fields[self.focus].input;
        let edit = |input: &mut Input, request| {
            input.handle(request);
        };
        match key {
            ModalKey::Esc if dirty => self.confirm_discard = true,
            ModalKey::Esc => return FormOutcome::Close,
            ModalKey::Enter => return FormOutcome::Submit,
            ModalKey::Tab | ModalKey::Down => self.focus = (self.focus + 1) % count,
            ModalKey::BackTab | ModalKey::Up => self.focus = (self.focus + count - 1) % count,
            ModalKey::Left => edit(input, InputRequest::GoToPrevChar),
            ModalKey::Right => edit(input, InputRequest::GoToNextChar),
            ModalKey::Home => edit(input, InputRequest::GoToStart),
            ModalKey::End => edit(input, InputRequest::GoToEnd),
            ModalKey::Backspace => edit(input, InputRequest::DeletePrevChar),
            ModalKey::Delete => edit(input, InputRequest::DeleteNextChar),
            ModalKey::Char(c) => edit(input, InputRequest::InsertChar(c)),
        }
        FormOutcome::Stay
    }

    /// The customer this form edits.
    pub fn customer(&self) -> Option<Uuid> {
        match &self.kind {
            FormKind::New => None,
            FormKind::Edit { customer, .. } => Some(customer.id),
        }
    }
}

impl Default for Form {
    fn default() -> Self {
        Form::new()
    }
}

fn pointer(path: &str) -> String {
    format!("/{}", path.replace('.', "/"))
}

/// Sets `a.b.c` in a JSON object, making the objects on the way.
fn set(document: &mut Value, path: &str, value: Value) {
    let mut at = document;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = at else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        at = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::{date, datetime};

    fn type_into(form: &mut Form, path: &str, text: &str) {
        form.focus = form.fields.iter().position(|f| f.path == path).unwrap();
        for c in text.chars() {
            form.key(ModalKey::Char(c));
        }
    }

    #[test]
    fn a_new_customer_is_the_fields_filled_in_nested_and_codes_upper_case() {
        let mut form = Form::new();
        type_into(&mut form, "email", "ada@example.com");
        type_into(&mut form, "kyc.firstName", "Ada");
        type_into(&mut form, "kyc.nationality", "gb");
        type_into(&mut form, "kyc.mainAddress.zip", "N1 9GU");
        assert_eq!(
            form.body(),
            json!({"email": "ada@example.com",
                   "kyc": {"firstName": "Ada", "nationality": "GB", "mainAddress": {"zip": "N1 9GU"}}})
        );
        let Checked::Create(profile) = form.check(date!(2026 - 11 - 30)) else {
            panic!("a valid new customer")
        };
        assert_eq!(profile.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn local_errors_land_on_their_fields_and_take_the_focus() {
        let mut form = Form::new();
        type_into(&mut form, "kyc.birthDate", "2090-01-01");
        type_into(&mut form, "kyc.occupation", "99");
        assert_eq!(form.check(date!(2026 - 11 - 30)), Checked::Invalid);
        let error = |path: &str| form.fields.iter().find(|f| f.path == path).unwrap().error.clone();
        assert!(error("kyc.birthDate").is_some());
        assert!(error("kyc.occupation").is_some_and(|e| e.contains("SOC-2018")));
        assert_eq!(form.fields[form.focus].path, "kyc.birthDate");
        // Nothing typed is lost.
        assert_eq!(form.fields[form.focus].input.value(), "2090-01-01");
    }

    #[test]
    fn an_edit_sends_only_what_changed_and_null_for_what_was_cleared() {
        let profile: CustomerProfile = serde_json::from_value(json!({
            "email": "ada@example.com",
            "kyc": {"firstName": "Ada", "lastName": "Lovelace"}
        }))
        .unwrap();
        let customer = Customer::new(Uuid::nil(), profile, datetime!(2026-11-30 10:00 UTC));
        let mut form = Form::edit(&customer, "Ada Lovelace", &["kyc.birthDate", "kyc.nationality"]);
        assert_eq!(
            form.fields[form.focus].path, "kyc.birthDate",
            "focused on what UPDATE_PROFILE asks"
        );
        assert!(!form.dirty());
        type_into(&mut form, "kyc.birthDate", "1990-04-12");
        form.focus = form.fields.iter().position(|f| f.path == "email").unwrap();
        form.key(ModalKey::End);
        for _ in 0.."ada@example.com".len() {
            form.key(ModalKey::Backspace);
        }
        assert_eq!(
            form.body(),
            json!({"email": null, "kyc": {"birthDate": "1990-04-12"}})
        );
        assert!(matches!(form.check(date!(2026 - 11 - 30)), Checked::Patch(_)));
    }

    #[test]
    fn esc_with_changes_asks_first_and_server_errors_show_on_fields() {
        let mut form = Form::new();
        type_into(&mut form, "email", "x");
        assert_eq!(form.key(ModalKey::Esc), FormOutcome::Stay);
        assert!(form.confirm_discard);
        assert_eq!(form.key(ModalKey::Char('n')), FormOutcome::Stay);
        assert!(!form.confirm_discard, "n keeps the form");
        form.key(ModalKey::Esc);
        assert_eq!(form.key(ModalKey::Char('y')), FormOutcome::Close);

        let mut form = Form::new();
        form.show_errors(&[
            FieldError::new("kyc.mainAddress", "expected a JSON object"),
            FieldError::new("email", "already used by another customer"),
            FieldError::new("", "the tenant is suspended"),
        ]);
        assert_eq!(form.fields[form.focus].path, "email");
        assert!(
            form.fields
                .iter()
                .any(|f| f.path == "kyc.mainAddress.street1" && f.error.is_some())
        );
        assert_eq!(form.message.as_deref(), Some("the tenant is suspended"));
    }
}
