//! `kycdash export` (SPEC §11): one record per customer from what the cache holds, written as
//! CSV (RFC 4180, a header row, formula-like cells neutralised) or NDJSON. Pure functions over
//! the cache's rows; reading the cache and choosing where the bytes go is the CLI's part.
//!
//! A value the cache does not know is empty (CSV) or null (NDJSON), never guessed: a decision
//! time is only that of a stage line that saw the move, documents are the ones this engine
//! uploaded.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Customer, Stage};
use crate::sync::cache::CustomerRows;
use crate::sync::rfc3339;
use crate::sync::timeline::parse_stage_text;

/// How many hex digits of a document's SHA-256 an export shows: enough to tell files apart
/// and to match one with `sha256sum`, short enough for a cell.
pub const SHA256_PREFIX: usize = 12;

/// The columns of every export, in order.
pub const COLUMNS: [&str; 12] = [
    "customerId",
    "externalId",
    "stage",
    "onboardingStatus",
    "nextAction",
    "isCompliant",
    "failedChecks",
    "stageSince",
    "firstSeen",
    "decidedAt",
    "documents",
    "sdkLinkExpiresAt",
];

/// The personal data columns `--include-pii` adds after them.
pub const PII_COLUMNS: [&str; 6] = [
    "name",
    "email",
    "birthDate",
    "address",
    "documentNumber",
    "ipAddress",
];

/// What an export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
}

/// One customer's line of an export. `None` is what the cache does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub customer_id: String,
    pub external_id: Option<String>,
    pub stage: Option<String>,
    pub onboarding_status: Option<String>,
    pub next_action: Option<String>,
    pub is_compliant: Option<bool>,
    /// The failed required checks, `;`-joined (empty when none failed).
    pub failed_checks: Option<String>,
    pub stage_since: Option<String>,
    pub first_seen: Option<String>,
    pub decided_at: Option<String>,
    /// `TYPE:sha256-prefix`, `;`-joined: the newest upload of each type.
    pub documents: String,
    pub sdk_link_expires_at: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<Pii>,
}

/// The personal data of a record, only with `--include-pii`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pii {
    pub name: Option<String>,
    pub email: Option<String>,
    pub birth_date: Option<String>,
    /// One line: street, city, state, zip, country, comma-separated.
    pub address: Option<String>,
    pub document_number: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write the export: {0}")]
    Io(#[from] io::Error),
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot encode a record as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The record of one customer as the cache knows them.
pub fn record(rows: &CustomerRows, include_pii: bool) -> Record {
    let status = rows.status.as_ref().map(|(status, _)| status);
    let workflow = rows.workflow.as_ref();
    let stage = workflow
        .map(|(view, _)| view.stage)
        .or_else(|| status.map(Stage::from_status));
    let failed_checks = status.map(|status| {
        let failed: Vec<&str> = status
            .checks
            .iter()
            .filter(|c| c.required && !c.passed)
            .map(|c| c.check_type.as_str())
            .collect();
        failed.join(";")
    });
    let sdk = status
        .and_then(|s| s.sdk.as_ref())
        .or_else(|| workflow.and_then(|(view, _)| view.sdk.as_ref()));
    Record {
        customer_id: rows.customer.id.to_string(),
        external_id: rows.customer.external_id.clone(),
        stage: stage.map(|s| s.as_str().to_string()),
        onboarding_status: status
            .and_then(|s| s.onboarding_status)
            .map(|s| s.as_str().to_string()),
        next_action: status.and_then(|s| s.next_action).map(|a| a.as_str().to_string()),
        is_compliant: status.map(|s| s.is_compliant),
        failed_checks,
        stage_since: workflow.map(|(_, since)| rfc3339(*since)),
        first_seen: rows.first_seen.map(rfc3339),
        decided_at: stage
            .and_then(|stage| decided_at(stage, &rows.stage_lines))
            .map(rfc3339),
        documents: documents(rows),
        sdk_link_expires_at: sdk.map(|sdk| rfc3339(sdk.expires_at)),
        pii: include_pii.then(|| pii(&rows.customer)),
    }
}

/// When the move to a decision (`stage`, approved or denied) was seen: the last stage line
/// that moved the customer there. A customer first seen already decided has none.
fn decided_at(stage: Stage, lines: &[(OffsetDateTime, String)]) -> Option<OffsetDateTime> {
    if !matches!(stage, Stage::Approved | Stage::Denied) {
        return None;
    }
    lines
        .iter()
        .rev()
        .find(|(_, text)| matches!(parse_stage_text(text), Some((Some(_), to)) if to == stage))
        .map(|(at, _)| *at)
}

/// The newest upload of each document type, by type name.
fn documents(rows: &CustomerRows) -> String {
    let mut newest = BTreeMap::new();
    for upload in &rows.uploads {
        match newest.get(upload.document_type.as_str()) {
            Some((at, _)) if *at > upload.at => {}
            _ => {
                newest.insert(upload.document_type.as_str(), (upload.at, upload.sha256.as_str()));
            }
        }
    }
    let cells: Vec<String> = newest
        .into_iter()
        .map(|(document_type, (_, sha256))| {
            let prefix = sha256.get(..SHA256_PREFIX).unwrap_or(sha256);
            format!("{document_type}:{prefix}")
        })
        .collect();
    cells.join(";")
}

fn pii(customer: &Customer) -> Pii {
    let kyc = customer.kyc.as_ref();
    let name: Vec<&str> = [
        kyc.and_then(|k| k.first_name.as_deref()),
        kyc.and_then(|k| k.last_name.as_deref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let address = kyc.and_then(|k| k.main_address.as_ref()).map(|a| {
        let parts: Vec<&str> = [
            &a.street1,
            &a.street2,
            &a.city_county,
            &a.state_region,
            &a.zip,
            &a.country_code,
        ]
        .into_iter()
        .filter_map(|part| part.as_deref())
        .collect();
        parts.join(", ")
    });
    Pii {
        name: (!name.is_empty()).then(|| name.join(" ")),
        email: customer.email.clone(),
        birth_date: kyc.and_then(|k| k.birth_date.clone()),
        address,
        document_number: kyc.and_then(|k| k.document_number.clone()),
        ip_address: customer.ip_address.clone(),
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first, or a tab or a
/// carriage return, as OWASP's CSV injection advice lists) is prefixed with `'`, which makes
/// it text.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

impl Record {
    /// The CSV cells, in the order of the header, before neutralising.
    pub fn cells(&self) -> Vec<String> {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let mut cells = vec![
            self.customer_id.clone(),
            text(&self.external_id),
            text(&self.stage),
            text(&self.onboarding_status),
            text(&self.next_action),
            self.is_compliant.map(|c| c.to_string()).unwrap_or_default(),
            text(&self.failed_checks),
            text(&self.stage_since),
            text(&self.first_seen),
            text(&self.decided_at),
            self.documents.clone(),
            text(&self.sdk_link_expires_at),
        ];
        if let Some(pii) = &self.pii {
            cells.extend(
                [
                    &pii.name,
                    &pii.email,
                    &pii.birth_date,
                    &pii.address,
                    &pii.document_number,
                    &pii.ip_address,
                ]
                .map(text),
            );
        }
        cells
    }
}

/// Writes `records` as `format`; with `include_pii`, the CSV header has the personal data
/// columns too.
pub fn write(
    format: Format,
    records: &[Record],
    include_pii: bool,
    out: impl Write,
) -> Result<(), ExportError> {
    match format {
        Format::Csv => write_csv(records, include_pii, out),
        Format::Ndjson => write_ndjson(records, out),
    }
}

/// RFC 4180: a header row, CRLF line ends, fields quoted where they must be.
pub fn write_csv(records: &[Record], include_pii: bool, out: impl Write) -> Result<(), ExportError> {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    let header: Vec<&str> = if include_pii {
        COLUMNS.iter().chain(PII_COLUMNS.iter()).copied().collect()
    } else {
        COLUMNS.to_vec()
    };
    csv.write_record(&header)?;
    for record in records {
        csv.write_record(record.cells().iter().map(|cell| neutralise(cell).into_owned()))?;
    }
    csv.flush()?;
    Ok(())
}

/// One JSON object per line. Values are as the cache holds them: JSON has no formulas to
/// neutralise.
pub fn write_ndjson(records: &[Record], mut out: impl Write) -> Result<(), ExportError> {
    for record in records {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never half of
/// one: a temporary file beside it (this user's alone: an export holds customers' data),
/// synced, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the output path names no file"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests;
