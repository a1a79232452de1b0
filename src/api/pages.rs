//! Cursor pagination of the customer listing, in one place.

use super::ApiError;
use super::client::{ApiClient, Call, PAGE_LIMIT};
use super::types::Page;
use crate::domain::Customer;

/// The one loop over the customer listing's pages: follows `nextCursor` until there is none
/// (or the API repeats the cursor it was given), and stops after an error.
pub struct CustomerPages {
    client: ApiClient,
    external_id: Option<String>,
    cursor: Option<String>,
    done: bool,
}

impl CustomerPages {
    pub(super) fn new(client: ApiClient, external_id: Option<&str>) -> CustomerPages {
        CustomerPages {
            client,
            external_id: external_id.map(str::to_string),
            cursor: None,
            done: false,
        }
    }

    /// The next page's customers; `None` once the listing is done.
    pub async fn next(&mut self) -> Option<Result<Vec<Customer>, ApiError>> {
        if self.done {
            return None;
        }
        let mut query = vec![("limit", PAGE_LIMIT.to_string())];
        if let Some(external_id) = &self.external_id {
            query.push(("externalId", external_id.clone()));
        }
        if let Some(cursor) = &self.cursor {
            query.push(("cursor", cursor.clone()));
        }
        let page: Result<Page<Customer>, ApiError> =
            self.client.send(Call::get("/v1/customers".into(), &query)).await;
        Some(match page {
            Ok(page) => {
                let next = page.next_cursor.filter(|next| Some(next) != self.cursor.as_ref());
                self.done = next.is_none();
                self.cursor = next;
                Ok(page.data)
            }
            Err(err) => {
                self.done = true;
                Err(err)
            }
        })
    }

    /// Whether the page last returned was the last one.
    pub fn is_done(&self) -> bool {
        self.done
    }
}
