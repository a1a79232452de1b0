//! `Debug` of what carries the cache's settings, one of which is the webhook signing secret
//! (`webhook.secret`): a setting whose name says it is a secret shows its hint only.

use std::fmt;

use super::{Snapshot, Write};

/// The value as `Debug` may show it: the hint of a secret setting, anything else whole.
fn shown<'a>(key: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if key.contains("secret") {
        crate::secret::hint(value).into()
    } else {
        value.into()
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings: std::collections::BTreeMap<_, _> = self
            .settings
            .iter()
            .map(|(key, value)| (key, shown(key, value)))
            .collect();
        f.debug_struct("Snapshot")
            .field("customers", &self.customers)
            .field("uploads", &self.uploads)
            .field("settings", &settings)
            .finish()
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::Customer { summary, body } => f
                .debug_struct("Customer")
                .field("summary", summary)
                .field("body", body)
                .finish(),
            Write::Status {
                customer_id,
                body,
                summary,
                fetched_at,
            } => f
                .debug_struct("Status")
                .field("customer_id", customer_id)
                .field("body", body)
                .field("summary", summary)
                .field("fetched_at", fetched_at)
                .finish(),
            Write::Workflow {
                customer_id,
                view,
                since,
            } => f
                .debug_struct("Workflow")
                .field("customer_id", customer_id)
                .field("view", view)
                .field("since", since)
                .finish(),
            Write::Event {
                id,
                event_type,
                customer_id,
                body,
                received_at,
            } => f
                .debug_struct("Event")
                .field("id", id)
                .field("event_type", event_type)
                .field("customer_id", customer_id)
                .field("body", body)
                .field("received_at", received_at)
                .finish(),
            Write::Upload {
                sha256,
                customer_id,
                document_type,
                path,
                document_id,
                at,
            } => f
                .debug_struct("Upload")
                .field("sha256", sha256)
                .field("customer_id", customer_id)
                .field("document_type", document_type)
                .field("path", path)
                .field("document_id", document_id)
                .field("at", at)
                .finish(),
            Write::Timeline {
                customer_id,
                at,
                kind,
                text,
            } => f
                .debug_struct("Timeline")
                .field("customer_id", customer_id)
                .field("at", at)
                .field("kind", kind)
                .field("text", text)
                .finish(),
            Write::Setting { key, value } => f
                .debug_struct("Setting")
                .field("key", key)
                .field("value", &value.as_deref().map(|v| shown(key, v)))
                .finish(),
            Write::Flush(answer) => f.debug_tuple("Flush").field(answer).finish(),
            Write::Clear => f.write_str("Clear"),
            Write::Prune { before } => f.debug_struct("Prune").field("before", before).finish(),
            Write::Checked { customer_id, at } => f
                .debug_struct("Checked")
                .field("customer_id", customer_id)
                .field("at", at)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_webhook_secret_setting_shows_its_hint_only() {
        let write = Write::Setting {
            key: "webhook.secret".into(),
            value: Some(SECRET.into()),
        };
        let shown = format!("{write:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("whsec_MfKQ…"), "{shown}");

        let mut snapshot = Snapshot::default();
        snapshot.settings.insert("webhook.secret".into(), SECRET.into());
        snapshot
            .settings
            .insert("webhook.url".into(), "http://127.0.0.1:9/webhooks".into());
        let shown = format!("{snapshot:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("whsec_MfKQ…"), "{shown}");
        // Other settings are shown whole.
        assert!(shown.contains("http://127.0.0.1:9/webhooks"), "{shown}");
    }
}
