//! The hosted SDK page behind an onboarding's `link`: plain HTML with two buttons, working in
//! any browser without JavaScript, where the "end user" completes or fails verification.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::AppState;
use crate::domain::Stage;
use crate::sandbox::commands::{self, SdkPageAction, SdkPageState};
use crate::sandbox::error::SandboxError;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · kycdash sandbox</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #1d2329; }}
h1 {{ font-size: 1.4rem; }}
.note {{ color: #5b6670; font-size: .9rem; }}
form {{ display: inline-block; margin: .5rem .5rem 0 0; }}
button {{ font-size: 1rem; padding: .6rem 1.2rem; border-radius: .4rem; border: 1px solid #1d2329; background: #fff; cursor: pointer; }}
button.primary {{ background: #1d6b3a; color: #fff; border-color: #1d6b3a; }}
</style>
</head>
<body>
<p class="note">kycdash sandbox: a stand-in for the provider's identity verification SDK.</p>
{body}
</body>
</html>"#
    )
}

fn describe(stage: Stage) -> &'static str {
    match stage {
        Stage::AwaitingSdk => "Verification is waiting for you.",
        Stage::InReview => "Your verification was submitted and is under manual review.",
        Stage::CollectingRequirements | Stage::AwaitingDecision => {
            "Your verification was submitted. Nothing more to do here."
        }
        Stage::Approved => "Your verification was approved.",
        Stage::Denied => "Your verification was not approved.",
        Stage::Errored => "Verification failed with an error. Please contact support.",
        Stage::Expired => "This link has expired. Ask for a new one.",
        Stage::NeedsProfile | Stage::ReadyToStart => "There is no verification to complete.",
    }
}

fn render(token: &str, state: &SdkPageState) -> String {
    let greeting = match &state.first_name {
        Some(name) => format!("Hello, {}.", escape(name)),
        None => "Hello.".to_string(),
    };
    let token = escape(token);
    let body = if state.live {
        format!(
            r#"<h1>Verify your identity</h1>
<p>{greeting} {}</p>
<form method="post" action="/sdk/{token}/complete"><button class="primary" type="submit">Complete verification</button></form>
<form method="post" action="/sdk/{token}/fail"><button type="submit">Fail verification</button></form>"#,
            describe(state.stage)
        )
    } else if state.stage == Stage::AwaitingSdk {
        format!("<h1>Link replaced</h1><p>{greeting} This link was replaced by a newer one.</p>")
    } else {
        format!(
            "<h1>Verify your identity</h1><p>{greeting} {}</p>",
            describe(state.stage)
        )
    };
    page("Verify your identity", &body)
}

fn not_found() -> Response {
    let body = page(
        "Link not found",
        "<h1>Link not found</h1><p>This verification link does not exist. Check that it was copied in full.</p>",
    );
    (StatusCode::NOT_FOUND, Html(body)).into_response()
}

pub async fn show(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match app.store.read(|m| commands::sdk_page_state(m, &token)) {
        Some(state) => {
            let status = if state.live || state.stage != Stage::Expired {
                StatusCode::OK
            } else {
                StatusCode::GONE
            };
            (status, Html(render(&token, &state))).into_response()
        }
        None => not_found(),
    }
}

async fn submit(app: AppState, token: String, action: SdkPageAction) -> Response {
    let token_for_job = token.clone();
    let result = app
        .store
        .run(move |db| commands::sdk_page_submit(db, &token_for_job, action))
        .await;
    match result {
        Ok(Ok(_)) | Ok(Err(SandboxError::Conflict { .. })) | Ok(Err(SandboxError::Workflow(_))) => {
            Redirect::to(&format!("/sdk/{token}")).into_response()
        }
        Ok(Err(SandboxError::NotFound { .. })) => not_found(),
        Ok(Err(err)) => super::problem::ApiError::from(err).into_response(),
        Err(err) => super::problem::ApiError::from(err).into_response(),
    }
}

pub async fn complete(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    submit(app, token, SdkPageAction::Complete).await
}

pub async fn fail(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    submit(app, token, SdkPageAction::Fail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        let state = SdkPageState {
            first_name: Some("<script>alert(1)</script>".into()),
            stage: Stage::AwaitingSdk,
            live: true,
        };
        let html = render("tok", &state);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains(r#"action="/sdk/tok/complete""#));
    }
}
