//! The one way a secret (an API key, a webhook signing secret) is shown: enough of its start to
//! tell it apart from another, never enough to use it. `Secret` holds one so that `Debug`
//! (clap's, serde's, a `{:?}` in a log line) shows the hint and nothing more.

use std::fmt;

/// At most half the secret, and at most 10 characters (`whsec_` and 4 more), then `…`.
pub fn hint(secret: &str) -> String {
    let shown: String = secret
        .chars()
        .take((secret.chars().count() / 2).min(10))
        .collect();
    format!("{shown}…")
}

/// An API key or a signing secret. `Debug` shows its hint; there is no `Display` and no
/// `Serialize`, so it reaches text only through `expose_secret`, where it is really sent.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret in full: for the Authorization header and the webhook verifier.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    pub fn hint(&self) -> String {
        hint(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.hint())
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Secret(secret)
    }
}

impl From<&str> for Secret {
    fn from(secret: &str) -> Self {
        Secret(secret.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::{Secret, hint};

    #[test]
    fn a_hint_tells_secrets_apart_without_giving_them_away() {
        assert_eq!(hint("sk_test_kycdash"), "sk_test…");
        assert_eq!(hint("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "whsec_MfKQ…");
        assert_eq!(hint("ab"), "a…");
        assert_eq!(hint(""), "…");
        // Never more than half: a short secret is not shown whole.
        assert!(hint("abcdef").chars().count() <= 4);
    }

    #[test]
    fn debug_shows_the_hint_only() {
        let secret = Secret::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(format!("{secret:?}"), "Secret(whsec_MfKQ…)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(whsec_MfKQ…))");
        assert_eq!(secret.expose_secret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }
}
