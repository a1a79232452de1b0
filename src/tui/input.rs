//! Terminal events as [`Action`]s, given what is on screen: while the filter is edited keys
//! type into it, while a dialog is open they go to the dialog, else the keymap decides.
//! Nothing here changes the dashboard: `update` does.

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind};

use super::app::{Action, App};
use super::keymap::{self, Keymap, ModalKey};
use super::view;

/// A terminal event as an action, given what is on screen.
pub fn to_action(event: &Event, app: &App, keymap: &Keymap, hitboxes: &view::Hitboxes) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if app.editing_filter {
                return match key.code {
                    KeyCode::Enter => Some(Action::FinishFilter { keep: true }),
                    KeyCode::Esc => Some(Action::FinishFilter { keep: false }),
                    KeyCode::Backspace => Some(Action::FilterBackspace),
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        Some(Action::FilterInput(c))
                    }
                    _ => None,
                };
            }
            if app.modal.is_some() {
                let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl && key.code == KeyCode::Char('c') {
                    return Some(Action::Key(keymap::Command::Quit));
                }
                return ModalKey::of(key).map(Action::ModalKey);
            }
            keymap.command(key).map(Action::Key)
        }
        Event::Paste(text) if app.editing_filter => Some(Action::FilterPaste(text.clone())),
        // A dialog takes the keys; the mouse does not reach what is under it.
        Event::Mouse(_) if app.modal.is_some() => None,
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Action::ScrollUp),
            MouseEventKind::ScrollDown => Some(Action::ScrollDown),
            MouseEventKind::Down(MouseButton::Left) => {
                let rows = hitboxes.table_rows;
                let inside = mouse.column >= rows.x
                    && mouse.column < rows.x + rows.width
                    && mouse.row >= rows.y
                    && mouse.row < rows.y + rows.height;
                inside.then(|| Action::Click((mouse.row - rows.y) as usize))
            }
            _ => None,
        },
        Event::Resize(width, height) => Some(Action::Resize {
            table_rows: view::table_rows_for(*width, *height),
        }),
        _ => None,
    }
}
