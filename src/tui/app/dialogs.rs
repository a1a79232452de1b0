//! What the open dialog decides, and the reads it asked for arriving: the file picker's
//! folders, the webhook endpoints and their deliveries.

use std::path::PathBuf;

use uuid::Uuid;

use super::{App, Effect};
use crate::api::types::{Delivery, WebhookEndpoint};
use crate::tui::keymap::ModalKey;
use crate::tui::modal::{FileEntry, Modal, Outcome};
use crate::tui::request::Request;

impl App {
    pub(super) fn modal_key(&mut self, key: ModalKey, effects: &mut Vec<Effect>) {
        let outcome = self.modal.as_mut().map_or(Outcome::Close, |m| m.key(key));
        match outcome {
            Outcome::Stay => {}
            Outcome::Close => self.modal = None,
            Outcome::Send(request) => {
                // The webhooks view stays, to show the resent delivery.
                if !matches!(request, Request::Resend { .. }) {
                    self.modal = None;
                }
                self.send(request, effects);
            }
            Outcome::Copy(text) => {
                self.toast(format!("copied {text}"));
                effects.push(Effect::Copy(text));
            }
            Outcome::Refused(why) => self.toast(why),
            Outcome::List(dir) => effects.push(Effect::ListDir(dir)),
            Outcome::Picked(path) => self.choose_type(path),
            Outcome::Submit => self.submit(effects),
            Outcome::LoadWebhooks => effects.push(Effect::LoadWebhooks),
            Outcome::LoadDeliveries(id) => effects.push(Effect::LoadDeliveries(id)),
            Outcome::Quit => {
                self.modal = None;
                self.quit = true;
                effects.push(Effect::Quit);
            }
        }
    }

    /// The endpoints arrived: the first one's deliveries are read next.
    pub(super) fn webhooks_loaded(
        &mut self,
        endpoints: Result<Vec<WebhookEndpoint>, String>,
        effects: &mut Vec<Effect>,
    ) {
        if let Some(Modal::Webhooks(view)) = &mut self.modal {
            view.endpoint = 0;
            view.endpoints = Some(endpoints);
            match view.selected_endpoint() {
                Some(endpoint) => effects.push(Effect::LoadDeliveries(endpoint.id)),
                None => view.deliveries = Some(Ok(Vec::new())),
            }
        }
    }

    /// An endpoint's deliveries arrived, oldest first: shown newest first, if that endpoint
    /// is still the one selected.
    pub(super) fn deliveries_loaded(&mut self, endpoint: Uuid, deliveries: Result<Vec<Delivery>, String>) {
        if let Some(Modal::Webhooks(view)) = &mut self.modal
            && view.selected_endpoint().is_some_and(|e| e.id == endpoint)
        {
            view.cursor = 0;
            view.deliveries = Some(deliveries.map(|mut d| {
                d.reverse();
                d
            }));
        }
    }

    /// A folder the file picker asked for was read (or could not be: then it says so).
    pub(super) fn listed(&mut self, dir: PathBuf, entries: Result<Vec<FileEntry>, String>) {
        if let Some(Modal::Files(files)) = &mut self.modal {
            let error = entries.as_ref().err().cloned();
            if files.listed(&dir, entries) {
                self.last_folder = Some(dir);
            } else if let Some(error) = error {
                self.toast(error);
            }
        }
    }
}
