//! Customers and their KYC profile: the wire shape (SPEC §2), validation with field-level
//! errors, and RFC 7396 merge patches that are validated as a whole after merging.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime, format_description::well_known::Iso8601, macros::format_description};
use utoipa::ToSchema;
use uuid::Uuid;

/// A customer as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc: Option<Kyc>,
}

/// The part of a customer a client writes: the body of `POST /v1/customers`, and what a merge
/// patch produces. A request naming an unknown field is refused ([`CustomerProfile::from_json`])
/// so that a typo never silently drops data; reading what a server sends tolerates new fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfile {
    /// Your own id for the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Email, max_length = 200)]
    pub email: Option<String>,
    /// An IPv4 or IPv6 address. Without one, a proof of address is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "203.0.113.7")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc: Option<Kyc>,
}

/// The KYC data of a customer. Every field is optional on the wire: the compliance checks say
/// which ones are still missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Kyc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "Ada")]
    pub first_name: Option<String>,
    /// In the sandbox, REVIEW, DENY, ERROR and EXPIRE steer the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200, example = "Lovelace")]
    pub last_name: Option<String>,
    /// YYYY-MM-DD, a real date in the past, not before 1900.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Date, example = "1990-04-12")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub document_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_address: Option<Address>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}$", example = "US")]
    pub nationality: Option<String>,
    /// SOC-2018 major group code, two digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^(11|13|15|17|19|21|23|25|27|29|31|33|35|37|39|41|43|45|47|49|51|53|55)$",
        example = "11"
    )]
    pub occupation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub street1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub street2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub city_county: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub state_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}$", example = "US")]
    pub country_code: Option<String>,
}

/// One invalid field: `field` is the JSON path in camelCase (`kyc.mainAddress.countryCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every invalid field of one input, in the order they were found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", summarize(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn summarize(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.field.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.field, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// SOC-2018 major groups: the two-digit codes an `occupation` may take.
pub const SOC_MAJOR_GROUPS: [&str; 23] = [
    "11", "13", "15", "17", "19", "21", "23", "25", "27", "29", "31", "33", "35", "37", "39", "41", "43",
    "45", "47", "49", "51", "53", "55",
];

const MAX_TEXT: usize = 200;
const EARLIEST_BIRTH_DATE: Date = time::macros::date!(1900 - 01 - 01);

const PROFILE_FIELDS: [&str; 4] = ["externalId", "email", "ipAddress", "kyc"];
const KYC_FIELDS: [&str; 7] = [
    "firstName",
    "lastName",
    "birthDate",
    "documentNumber",
    "mainAddress",
    "nationality",
    "occupation",
];
const ADDRESS_FIELDS: [&str; 6] = [
    "street1",
    "street2",
    "cityCounty",
    "stateRegion",
    "zip",
    "countryCode",
];

/// Every field of a request body the API does not know, with its path.
fn unknown_fields(value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |object: Option<&Value>, prefix: &str, known: &[&str]| {
        let Some(object) = object.and_then(Value::as_object) else {
            return;
        };
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            errors.push(FieldError::new(
                format!("{prefix}{key}"),
                format!("unknown field `{key}`, expected one of {}", expected.join(", ")),
            ));
        }
    };
    check(Some(value), "", &PROFILE_FIELDS);
    check(value.get("kyc"), "kyc.", &KYC_FIELDS);
    check(
        value.pointer("/kyc/mainAddress"),
        "kyc.mainAddress.",
        &ADDRESS_FIELDS,
    );
    errors
}

/// Fields the server owns; a merge patch may not touch them.
const READ_ONLY_FIELDS: [&str; 3] = ["id", "createdAt", "updatedAt"];

impl CustomerProfile {
    /// Parses a JSON body into a profile and validates it, reporting every problem with the
    /// path of its field. `today` is the caller's clock: a birth date must be before it.
    pub fn from_json(value: Value, today: Date) -> Result<Self, ValidationErrors> {
        if !value.is_object() {
            return Err(ValidationErrors(vec![FieldError::new(
                "",
                "expected a JSON object with the customer's fields",
            )]));
        }
        // serde would read a struct from an array too; the API takes objects only.
        for (field, pointer) in [("kyc", "/kyc"), ("kyc.mainAddress", "/kyc/mainAddress")] {
            if value
                .pointer(pointer)
                .is_some_and(|v| !v.is_object() && !v.is_null())
            {
                return Err(ValidationErrors(vec![FieldError::new(
                    field,
                    "expected a JSON object (or null to remove it)",
                )]));
            }
        }
        let unknown = unknown_fields(&value);
        if !unknown.is_empty() {
            return Err(ValidationErrors(unknown));
        }
        let profile: CustomerProfile = serde_path_to_error::deserialize(value).map_err(|err| {
            let field = err.path().to_string();
            let field = if field == "." { String::new() } else { field };
            ValidationErrors(vec![FieldError::new(field, err.into_inner().to_string())])
        })?;
        profile.validate(today)?;
        Ok(profile)
    }

    /// Checks every present value; absent values are allowed (the compliance checks report
    /// what is missing, validation reports what is wrong).
    pub fn validate(&self, today: Date) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        if let Some(external_id) = &self.external_id {
            check_text(&mut errors, "externalId", external_id);
        }
        if let Some(email) = &self.email {
            check_email(&mut errors, email);
        }
        if let Some(ip) = &self.ip_address
            && ip.parse::<IpAddr>().is_err()
        {
            errors.push(FieldError::new(
                "ipAddress",
                format!("\"{ip}\" is not an IPv4 or IPv6 address"),
            ));
        }
        if let Some(kyc) = &self.kyc {
            kyc.validate_into(&mut errors, today);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }
}

impl Kyc {
    fn validate_into(&self, errors: &mut Vec<FieldError>, today: Date) {
        if let Some(name) = &self.first_name {
            check_text(errors, "kyc.firstName", name);
        }
        if let Some(name) = &self.last_name {
            check_text(errors, "kyc.lastName", name);
        }
        if let Some(birth_date) = &self.birth_date {
            check_birth_date(errors, birth_date, today);
        }
        if let Some(number) = &self.document_number {
            check_text(errors, "kyc.documentNumber", number);
        }
        if let Some(nationality) = &self.nationality {
            check_country(errors, "kyc.nationality", nationality);
        }
        if let Some(occupation) = &self.occupation
            && !SOC_MAJOR_GROUPS.contains(&occupation.as_str())
        {
            errors.push(FieldError::new(
                "kyc.occupation",
                format!(
                    "\"{occupation}\" is not a SOC-2018 major group code; expected one of {}",
                    SOC_MAJOR_GROUPS.join(", ")
                ),
            ));
        }
        if let Some(address) = &self.main_address {
            address.validate_into(errors);
        }
    }

    /// The fields KYC_DATA_PRESENT needs that are missing, as JSON paths.
    pub fn missing_identity_fields(kyc: Option<&Kyc>) -> Vec<&'static str> {
        let present = |v: Option<&String>| v.is_some_and(|s| !s.trim().is_empty());
        let mut missing = Vec::new();
        if !present(kyc.and_then(|k| k.first_name.as_ref())) {
            missing.push("kyc.firstName");
        }
        if !present(kyc.and_then(|k| k.last_name.as_ref())) {
            missing.push("kyc.lastName");
        }
        if !present(kyc.and_then(|k| k.birth_date.as_ref())) {
            missing.push("kyc.birthDate");
        }
        if !present(kyc.and_then(|k| k.document_number.as_ref())) {
            missing.push("kyc.documentNumber");
        }
        missing
    }
}

impl Address {
    fn validate_into(&self, errors: &mut Vec<FieldError>) {
        let fields = [
            ("kyc.mainAddress.street1", &self.street1),
            ("kyc.mainAddress.street2", &self.street2),
            ("kyc.mainAddress.cityCounty", &self.city_county),
            ("kyc.mainAddress.stateRegion", &self.state_region),
            ("kyc.mainAddress.zip", &self.zip),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                check_text(errors, field, value);
            }
        }
        if let Some(code) = &self.country_code {
            check_country(errors, "kyc.mainAddress.countryCode", code);
        }
    }
}

impl Customer {
    /// The writable part of this customer.
    pub fn profile(&self) -> CustomerProfile {
        CustomerProfile {
            external_id: self.external_id.clone(),
            email: self.email.clone(),
            ip_address: self.ip_address.clone(),
            kyc: self.kyc.clone(),
        }
    }

    /// A new customer from a validated profile.
    pub fn new(id: Uuid, profile: CustomerProfile, now: OffsetDateTime) -> Self {
        Self {
            id,
            external_id: profile.external_id,
            email: profile.email,
            ip_address: profile.ip_address,
            created_at: now,
            updated_at: now,
            kyc: profile.kyc,
        }
    }

    /// What the customer is called: the KYC name, else the email, the externalId or the id.
    pub fn display_name(&self) -> String {
        let kyc = self.kyc.as_ref();
        let name: Vec<&str> = [
            kyc.and_then(|k| k.first_name.as_deref()),
            kyc.and_then(|k| k.last_name.as_deref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !name.is_empty() {
            return name.join(" ");
        }
        self.email
            .clone()
            .or_else(|| self.external_id.clone())
            .unwrap_or_else(|| self.id.to_string())
    }

    /// Replaces the writable part of this customer.
    pub fn apply(&mut self, profile: CustomerProfile, now: OffsetDateTime) {
        self.external_id = profile.external_id;
        self.email = profile.email;
        self.ip_address = profile.ip_address;
        self.kyc = profile.kyc;
        self.updated_at = now;
    }

    /// Applies an RFC 7396 JSON merge patch to this customer's profile (so `kyc` merges deeply
    /// and `null` removes a field) and validates the result as a whole. Returns the new profile
    /// without changing `self`, so a refused patch changes nothing.
    pub fn merge_patch(&self, patch: &Value, today: Date) -> Result<CustomerProfile, ValidationErrors> {
        let Some(fields) = patch.as_object() else {
            return Err(ValidationErrors(vec![FieldError::new(
                "",
                "a merge patch must be a JSON object (RFC 7396)",
            )]));
        };
        let read_only: Vec<FieldError> = READ_ONLY_FIELDS
            .iter()
            .filter(|name| fields.contains_key(**name))
            .map(|name| FieldError::new(*name, "is set by the server and cannot be changed"))
            .collect();
        if !read_only.is_empty() {
            return Err(ValidationErrors(read_only));
        }
        let mut document = serde_json::to_value(self.profile()).map_err(|e| {
            ValidationErrors(vec![FieldError::new(
                "",
                format!("the customer's current profile could not be serialized ({e}); nothing was changed"),
            )])
        })?;
        json_patch::merge(&mut document, patch);
        CustomerProfile::from_json(document, today)
    }
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(
            field,
            "must not be empty; omit the field or send null to leave it unset",
        ));
    } else if value.chars().count() > MAX_TEXT {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
}

fn check_email(errors: &mut Vec<FieldError>, email: &str) {
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !valid {
        errors.push(FieldError::new(
            "email",
            format!("\"{email}\" is not an email address"),
        ));
    } else if email.len() > MAX_TEXT {
        errors.push(FieldError::new(
            "email",
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
}

fn check_country(errors: &mut Vec<FieldError>, field: &str, code: &str) {
    if !is_country_code(code) {
        errors.push(FieldError::new(
            field,
            format!(
                "\"{code}\" is not an ISO 3166-1 alpha-2 country code (two capital letters, e.g. \"US\")"
            ),
        ));
    }
}

/// Whether `code` is an assigned ISO 3166-1 alpha-2 code, in capitals as the API writes them.
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && isocountry::CountryCode::for_alpha2(code).is_ok()
}

fn check_birth_date(errors: &mut Vec<FieldError>, value: &str, today: Date) {
    const FIELD: &str = "kyc.birthDate";
    let format = format_description!("[year]-[month]-[day]");
    match Date::parse(value, &format) {
        Err(_) => errors.push(FieldError::new(
            FIELD,
            format!("\"{value}\" is not a real date in the form YYYY-MM-DD"),
        )),
        Ok(date) if date >= today => errors.push(FieldError::new(
            FIELD,
            format!(
                "must be in the past (today is {})",
                today.format(&Iso8601::DATE).unwrap_or_default()
            ),
        )),
        Ok(date) if date < EARLIEST_BIRTH_DATE => {
            errors.push(FieldError::new(FIELD, "must be on or after 1900-01-01"))
        }
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests;
