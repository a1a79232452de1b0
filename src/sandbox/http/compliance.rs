//! `/v1/compliance`: start and rerun KYC, upload documents, list them, and the compliance
//! status that says what to do next.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::extract::{JsonBody, Tenant, path_id};
use super::middleware::Answer;
use super::problem::ApiError;
use crate::api::types::{Document, DocumentList, IdempotencyKey, KycStarted, Problem, StartKycRequest};
use crate::domain::{ComplianceStatus, DocumentType, FieldError, MAX_DOCUMENT_BYTES};
use crate::sandbox::commands::{self, Upload};
use crate::sandbox::error::SandboxError;

/// Start KYC for a customer with the tenant's strategy. CF_KYC answers with SDK links.
#[utoipa::path(
    post, path = "/v1/compliance/kyc", tag = "compliance",
    request_body = StartKycRequest,
    params(IdempotencyKey),
    responses(
        (status = 201, body = KycStarted), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "KYC data missing (the fields are named), or KYC already started", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn start_kyc(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    JsonBody(request): JsonBody<StartKycRequest>,
) -> Result<Answer, ApiError> {
    let base_url = app.base_url.clone();
    app.command(
        StatusCode::CREATED,
        |_: &KycStarted| None,
        move |db| commands::start_kyc(db, &tenant, &base_url, request.customer_id, request.strategy),
    )
    .await
}

/// Rerun KYC: a new onboarding replacing an expired one.
#[utoipa::path(
    post, path = "/v1/compliance/kyc/{onboardingId}/rerun", tag = "compliance",
    params(
        ("onboardingId" = String, Path, description = "The expired onboarding"),
        IdempotencyKey,
    ),
    responses(
        (status = 201, body = KycStarted), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "The onboarding is not expired, or was already replaced", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn rerun_kyc(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(onboarding_id): Path<String>,
) -> Result<Answer, ApiError> {
    let onboarding_id = path_id("onboarding", &onboarding_id)?;
    let base_url = app.base_url.clone();
    app.command(
        StatusCode::CREATED,
        |_: &KycStarted| None,
        move |db| commands::rerun_kyc(db, &tenant, &base_url, onboarding_id),
    )
    .await
}

/// The multipart form of an upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(value_type = String, format = Uuid, rename = "customerId")]
    customer_id: String,
    #[schema(value_type = DocumentType, rename = "type")]
    document_type: String,
    /// PDF, PNG or JPEG (BIOMETRIC_REPORT: PDF only), at most 10 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload a compliance document (multipart: `customerId`, `type`, `file`).
#[utoipa::path(
    post, path = "/v1/compliance/upload-doc", tag = "compliance",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses(
        (status = 201, body = Document), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 413, description = "Over 10 MiB", body = Problem),
        (status = 415, description = "Not multipart, or the file is not a PDF, PNG or JPEG", body = Problem),
        (status = 422, description = "A missing or invalid field, an empty file, an image as BIOMETRIC_REPORT", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn upload_document(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Answer, ApiError> {
    let multipart = multipart.map_err(|rejection| {
        ApiError::UnsupportedMediaType(format!(
            "uploads are multipart/form-data with the fields customerId, type and file ({})",
            rejection.body_text()
        ))
    })?;
    let upload = checked_upload(read_form(multipart).await?)?;
    app.command(
        StatusCode::CREATED,
        |_: &Document| None,
        move |db| commands::upload_document(db, &tenant, upload),
    )
    .await
}

/// The fields of an upload form as sent, before they are checked.
#[derive(Default)]
struct RawUpload {
    customer_id: Option<String>,
    document_type: Option<String>,
    file: Option<(Option<String>, axum::body::Bytes)>,
}

/// Reads the multipart form; a field that is not one of an upload's is refused.
async fn read_form(mut multipart: Multipart) -> Result<RawUpload, ApiError> {
    let too_large = || ApiError::PayloadTooLarge {
        limit: super::UPLOAD_BODY_LIMIT,
    };
    let mut raw = RawUpload::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(raw),
            Err(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(err) => {
                return Err(ApiError::BadRequest {
                    detail: format!("the multipart body is malformed: {}", err.body_text()),
                    errors: vec![],
                });
            }
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "customerId" | "type" => {
                let text = field
                    .text()
                    .await
                    .map_err(|_| ApiError::invalid_field(&name, "must be text"))?;
                if name == "type" {
                    raw.document_type = Some(text);
                } else {
                    raw.customer_id = Some(text);
                }
            }
            "file" => {
                let file_name = field.file_name().map(str::to_string);
                let bytes = field.bytes().await.map_err(|err| {
                    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        ApiError::BadRequest {
                            detail: format!("the file could not be read: {}", err.body_text()),
                            errors: vec![],
                        }
                    }
                })?;
                raw.file = Some((file_name, bytes));
            }
            other => {
                return Err(ApiError::invalid_field(
                    other,
                    "is not a field of an upload; send customerId, type and file",
                ));
            }
        }
    }
}

/// Checks the form's fields, naming every missing or invalid one at once.
fn checked_upload(raw: RawUpload) -> Result<Upload, ApiError> {
    let mut errors = Vec::new();
    let customer_id = match raw.customer_id.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(FieldError::new("customerId", "is required"));
            None
        }
        Some(raw) => match raw.parse::<uuid::Uuid>() {
            Ok(id) => Some(id),
            Err(_) => return Err(SandboxError::not_found("customer", raw).into()),
        },
    };
    let document_type = match raw.document_type.as_deref() {
        None => {
            errors.push(FieldError::new("type", "is required"));
            None
        }
        Some(name) => DocumentType::parse(name).or_else(|| {
            let names: Vec<&str> = DocumentType::ALL.iter().map(|t| t.as_str()).collect();
            errors.push(FieldError::new(
                "type",
                format!(
                    "\"{name}\" is not a document type; expected one of {}",
                    names.join(", ")
                ),
            ));
            None
        }),
    };
    if raw.file.is_none() {
        errors.push(FieldError::new("file", "is required"));
    }
    let (Some(customer_id), Some(document_type), Some((file_name, content))) =
        (customer_id, document_type, raw.file)
    else {
        return Err(ApiError::Unprocessable {
            detail: errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            errors,
        });
    };
    if let Err(crate::domain::DocumentError::TooLarge { .. }) =
        crate::domain::check_size(content.len() as u64)
    {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(Upload {
        customer_id,
        document_type,
        file_name,
        content: content.to_vec(),
    })
}

/// The documents on file for a customer, newest first (metadata only).
#[utoipa::path(
    get, path = "/v1/compliance/documents/{customerId}", tag = "compliance",
    params(("customerId" = String, Path, description = "The customer's id")),
    responses((status = 200, body = DocumentList), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list_documents(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(customer_id): Path<String>,
) -> Result<Json<DocumentList>, ApiError> {
    let data = app.read_customer(&tenant, &customer_id, |record, _, _| record.document_list())?;
    Ok(Json(DocumentList { data }))
}

/// The compliance status: every check, and the one next action.
#[utoipa::path(
    get, path = "/v1/compliance/status/{customerId}", tag = "compliance",
    params(("customerId" = String, Path, description = "The customer's id")),
    responses((status = 200, body = ComplianceStatus), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn compliance_status(
    State(app): State<AppState>,
    Tenant(tenant): Tenant,
    Path(customer_id): Path<String>,
) -> Result<Json<ComplianceStatus>, ApiError> {
    app.read_customer(&tenant, &customer_id, |record, strategy, now| {
        record.status(strategy, now)
    })
    .map(|status| Json(app.served(status)))
}
