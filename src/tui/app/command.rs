//! What each key command does to the dashboard (the keys themselves are in `keymap`).

use super::{App, Effect, Pane, Tab};
use crate::tui::keymap::Command;
use crate::tui::modal::{Modal, Webhooks};

impl App {
    pub(super) fn command(&mut self, command: Command, effects: &mut Vec<Effect>) {
        if self.help {
            // Any key closes help; the quit keys still quit.
            self.help = false;
            if command == Command::Quit {
                self.quit = true;
                effects.push(Effect::Quit);
            }
            return;
        }
        let now = self.now;
        match command {
            Command::Up
            | Command::Down
            | Command::Top
            | Command::Bottom
            | Command::PageUp
            | Command::PageDown => self.navigate(command),
            Command::Open | Command::Back | Command::NextPane => self.focus_pane(command),
            Command::Filter => self.editing_filter = true,
            Command::Sort => self.table.next_sort(now),
            Command::Reverse => self.table.reverse(now),
            Command::TabAll => self.table.set_tab(Tab::All, now),
            Command::TabAction => self.table.set_tab(Tab::ActionNeeded, now),
            Command::TabWaiting => self.table.set_tab(Tab::Waiting, now),
            Command::TabApproved => self.table.set_tab(Tab::Approved, now),
            Command::TabDenied => self.table.set_tab(Tab::DeniedOrError, now),
            Command::Help => self.help = true,
            Command::Refresh if !self.table.marks.is_empty() => {
                let marked = self.table.marked();
                self.toast(format!("refreshing the {} marked customers", marked.len()));
                effects.extend(marked.into_iter().map(|id| Effect::Refresh(Some(id))));
            }
            Command::Refresh => effects.push(Effect::Refresh(self.table.selected)),
            Command::Mark => self.table.toggle_mark(),
            Command::MarkShown => self.table.mark_shown(),
            Command::Rerun if !self.table.marks.is_empty() => self.rerun_marked(),
            Command::RefreshAll => effects.push(Effect::Refresh(None)),
            Command::Pause => {
                self.header.paused = !self.header.paused;
                effects.push(Effect::Pause(self.header.paused));
            }
            Command::Copy => self.copy(effects),
            Command::Export => {
                let ids = self.table.marked_or_shown();
                if ids.is_empty() {
                    self.toast("nothing to export: no row is shown".into());
                } else {
                    effects.push(Effect::Export(ids));
                }
            }
            Command::StartKyc
            | Command::Rerun
            | Command::Simulate
            | Command::AdvanceClock
            | Command::Upload
            | Command::New
            | Command::Edit => self.open_action(command, effects),
            Command::Webhooks => {
                self.modal = Some(Modal::Webhooks(Box::new(Webhooks {
                    read_only: self.header.read_only,
                    ..Webhooks::default()
                })));
                effects.push(Effect::LoadWebhooks);
            }
            Command::Mouse => self.toggle_mouse(effects),
            Command::Demo => self.toggle_demo(effects),
            Command::Quit => self.quit_or_ask(effects),
        }
    }

    /// Whether a command can be used now (the hint bar shows only those).
    pub fn available(&self, command: Command) -> bool {
        !(command.writes() && self.header.read_only || command.sandbox_only() && !self.header.sandbox)
    }

    fn navigate(&mut self, command: Command) {
        let page = self.table.page.max(1) as isize;
        match command {
            Command::Up => self.table.move_by(-1),
            Command::Down => self.table.move_by(1),
            Command::Top => self.table.move_to(0),
            Command::Bottom => self.table.move_to(self.table.view.len().saturating_sub(1)),
            Command::PageUp => self.table.move_by(-page),
            Command::PageDown => self.table.move_by(page),
            _ => {}
        }
    }

    fn focus_pane(&mut self, command: Command) {
        self.focus = match (command, self.focus) {
            (Command::Open, _) => Pane::Details,
            // Esc clears the filter first, then the marks.
            (Command::Back, Pane::Table) if self.table.filter.is_empty() && !self.table.marks.is_empty() => {
                self.table.marks.clear();
                self.toast("marks cleared".into());
                Pane::Table
            }
            (Command::Back, focus) => {
                if !self.table.filter.is_empty() && focus == Pane::Table {
                    self.table.clear_filter(self.now);
                }
                Pane::Table
            }
            (_, Pane::Table) => Pane::Details,
            (_, Pane::Details) => Pane::Log,
            (_, Pane::Log) => Pane::Table,
        }
    }

    /// `y`: the SDK link when the details pane has the focus and the customer has one,
    /// else the customer's id.
    fn copy(&mut self, effects: &mut Vec<Effect>) {
        if !self.table.marks.is_empty() {
            return self.copy_marked(effects);
        }
        let Some(row) = self.selected_row() else {
            return;
        };
        let text = match row.status().and_then(|s| s.sdk.as_ref()) {
            Some(sdk) if self.focus == Pane::Details => sdk.link.clone(),
            _ => row.id().to_string(),
        };
        self.toast(format!("copied {text}"));
        effects.push(Effect::Copy(text));
    }

    /// `y` with marks: their ids, one per line (their SDK links where the details pane would
    /// copy the link: it has the focus and the customer has one).
    fn copy_marked(&mut self, effects: &mut Vec<Effect>) {
        let marked = self.table.marked();
        let lines: Vec<String> = marked
            .iter()
            .map(|id| {
                let link = self
                    .table
                    .row(*id)
                    .and_then(|row| row.status())
                    .and_then(|s| s.sdk.as_ref())
                    .filter(|_| self.focus == Pane::Details);
                link.map_or_else(|| id.to_string(), |sdk| sdk.link.clone())
            })
            .collect();
        self.toast(format!("copied {} lines", lines.len()));
        effects.push(Effect::Copy(lines.join("\n")));
    }

    fn toggle_mouse(&mut self, effects: &mut Vec<Effect>) {
        self.mouse = !self.mouse;
        self.toast(if self.mouse {
            "mouse on: click selects, the wheel scrolls".into()
        } else {
            "mouse off: select text with the mouse; m turns it back on".into()
        });
        effects.push(Effect::Mouse(self.mouse));
    }

    fn toggle_demo(&mut self, effects: &mut Vec<Effect>) {
        if self.header.read_only {
            self.toast("read-only: the demo driver writes, so it stays off".into());
        } else if self.header.sandbox {
            self.header.demo = !self.header.demo;
            self.toast(format!(
                "demo driver {}",
                if self.header.demo { "on" } else { "off" }
            ));
            effects.push(Effect::Demo(self.header.demo));
        } else {
            self.toast("the demo plays only against the embedded sandbox".into());
        }
    }

    /// Quits, asking first while requests are in flight: an upload or a start cut short
    /// would leave the operator guessing.
    fn quit_or_ask(&mut self, effects: &mut Vec<Effect>) {
        if self.in_flight.is_empty() || self.modal.is_some() {
            self.quit = true;
            effects.push(Effect::Quit);
            return;
        }
        let mut lines: Vec<String> = self
            .in_flight
            .iter()
            .map(|r| format!("still {}{}", r.doing(), r.subject()))
            .collect();
        lines.push("Quit anyway? What is in flight may not finish.".into());
        self.modal = Some(Modal::ConfirmQuit { lines });
    }
}
