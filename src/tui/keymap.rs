//! The one list of commands: each with its name (the key of `[keys]` in config.toml), its
//! default keys, and the words the help popup and the key-hint bar show. Both are generated
//! from this list, so they never drift from what the keys do.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Up,
    Down,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    Back,
    NextPane,
    Filter,
    Sort,
    Reverse,
    TabAll,
    TabAction,
    TabWaiting,
    TabApproved,
    TabDenied,
    Help,
    Refresh,
    RefreshAll,
    Pause,
    Copy,
    Export,
    Mark,
    MarkShown,
    StartKyc,
    Rerun,
    Simulate,
    AdvanceClock,
    Upload,
    New,
    Edit,
    Webhooks,
    Mouse,
    Demo,
    Quit,
}

impl Command {
    /// Whether it writes through the API (disabled when read-only).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Command::StartKyc
                | Command::Rerun
                | Command::Demo
                | Command::Simulate
                | Command::AdvanceClock
                | Command::Upload
                | Command::New
                | Command::Edit
        )
    }

    /// Whether only a sandbox has it.
    pub fn sandbox_only(self) -> bool {
        matches!(self, Command::Simulate | Command::AdvanceClock | Command::Demo)
    }
}

/// The keys a dialog reads: what it is open, keys go to it as these, not as commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModalKey {
    Up,
    Down,
    Left,
    Right,
    Enter,
    Esc,
    Backspace,
    Delete,
    Home,
    End,
    Tab,
    BackTab,
    Char(char),
}

impl ModalKey {
    /// A key pressed while a dialog is open, as the dialog reads it (`None`: not one it reads;
    /// control keys are not typed into a dialog).
    pub fn of(key: &KeyEvent) -> Option<ModalKey> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        Some(match key.code {
            KeyCode::Up => ModalKey::Up,
            KeyCode::Down => ModalKey::Down,
            KeyCode::Enter => ModalKey::Enter,
            KeyCode::Esc => ModalKey::Esc,
            KeyCode::Left => ModalKey::Left,
            KeyCode::Right => ModalKey::Right,
            KeyCode::Backspace => ModalKey::Backspace,
            KeyCode::Delete => ModalKey::Delete,
            KeyCode::Home => ModalKey::Home,
            KeyCode::End => ModalKey::End,
            KeyCode::Tab => ModalKey::Tab,
            KeyCode::BackTab => ModalKey::BackTab,
            KeyCode::Char(c) if !ctrl => ModalKey::Char(c),
            _ => return None,
        })
    }
}

/// A command's place in the help and the hint bar.
pub struct CommandInfo {
    pub command: Command,
    /// Its key in `[keys]` of config.toml.
    pub name: &'static str,
    pub defaults: &'static [&'static str],
    pub help: &'static str,
    /// Shown in the key-hint bar (the rest only in help).
    pub hint: Option<&'static str>,
}

pub const COMMANDS: &[CommandInfo] = &[
    info(Command::Up, "up", &["k", "Up"], "move up", None),
    info(Command::Down, "down", &["j", "Down"], "move down", Some("move")),
    info(Command::Top, "top", &["g", "Home"], "first customer", None),
    info(Command::Bottom, "bottom", &["G", "End"], "last customer", None),
    info(Command::PageUp, "page_up", &["PageUp", "ctrl-u"], "page up", None),
    info(
        Command::PageDown,
        "page_down",
        &["PageDown", "ctrl-f"],
        "page down",
        None,
    ),
    info(
        Command::Open,
        "open",
        &["Enter"],
        "focus the details",
        Some("details"),
    ),
    info(Command::Back, "back", &["Esc"], "back / close", None),
    info(Command::NextPane, "next_pane", &["Tab"], "next pane", None),
    info(
        Command::Filter,
        "filter",
        &["/"],
        "filter (a leading ! keeps what does not match)",
        Some("filter"),
    ),
    info(
        Command::Sort,
        "sort",
        &["s"],
        "sort by the next column",
        Some("sort"),
    ),
    info(Command::Reverse, "reverse", &["o"], "reverse the sort", None),
    info(Command::TabAll, "tab_all", &["1"], "tab: all", None),
    info(
        Command::TabAction,
        "tab_action",
        &["2"],
        "tab: action needed",
        None,
    ),
    info(Command::TabWaiting, "tab_waiting", &["3"], "tab: waiting", None),
    info(
        Command::TabApproved,
        "tab_approved",
        &["4"],
        "tab: approved",
        None,
    ),
    info(
        Command::TabDenied,
        "tab_denied",
        &["5"],
        "tab: denied / error",
        None,
    ),
    info(Command::Help, "help", &["?"], "this help", Some("help")),
    info(
        Command::Refresh,
        "refresh",
        &["R"],
        "refresh the selected customer now",
        Some("refresh"),
    ),
    info(
        Command::RefreshAll,
        "refresh_all",
        &["ctrl-r"],
        "list and refresh every customer now",
        None,
    ),
    info(
        Command::Pause,
        "pause",
        &["p"],
        "pause / resume polling",
        Some("pause"),
    ),
    info(
        Command::Copy,
        "copy",
        &["y"],
        "copy the id (or the SDK link) to the clipboard",
        Some("copy"),
    ),
    info(
        Command::Mark,
        "mark",
        &["Space"],
        "mark / unmark the customer (R, r, y and x then act on the marked ones; Esc clears)",
        Some("mark"),
    ),
    info(
        Command::MarkShown,
        "mark_shown",
        &["*", "ctrl-Space"],
        "mark every customer shown",
        None,
    ),
    info(
        Command::Export,
        "export",
        &["x"],
        "export the rows shown (or the marked ones) to a CSV file in <data-dir>/exports",
        Some("export"),
    ),
    info(Command::New, "new", &["n"], "new customer (a form)", Some("new")),
    info(
        Command::Webhooks,
        "webhooks",
        &["w"],
        "webhook endpoints and their delivery log (resend)",
        Some("webhooks"),
    ),
    info(
        Command::Edit,
        "edit",
        &["e"],
        "edit the selected customer's profile (opens on what is missing)",
        None,
    ),
    info(
        Command::StartKyc,
        "start_kyc",
        &["K"],
        "start KYC for the selected customer (asks first)",
        Some("start KYC"),
    ),
    info(
        Command::Rerun,
        "rerun",
        &["r"],
        "rerun an expired onboarding (asks first)",
        None,
    ),
    info(
        Command::Upload,
        "upload",
        &["u"],
        "upload a document for the selected customer (file picker, then its type)",
        Some("upload"),
    ),
    info(
        Command::Simulate,
        "simulate",
        &["S"],
        "simulate what the end user or the provider does (sandbox)",
        Some("simulate"),
    ),
    info(
        Command::AdvanceClock,
        "advance_clock",
        &["+"],
        "advance the sandbox clock (2 s, 30 min, 1 day)",
        None,
    ),
    info(
        Command::Mouse,
        "mouse",
        &["m"],
        "mouse capture on/off (off: select text)",
        None,
    ),
    info(
        Command::Demo,
        "demo",
        &["D"],
        "demo driver on/off (embedded sandbox only)",
        None,
    ),
    info(Command::Quit, "quit", &["q", "ctrl-c"], "quit", Some("quit")),
];

const fn info(
    command: Command,
    name: &'static str,
    defaults: &'static [&'static str],
    help: &'static str,
    hint: Option<&'static str>,
) -> CommandInfo {
    CommandInfo {
        command,
        name,
        defaults,
        help,
        hint,
    }
}

/// A key as config.toml writes it: `j`, `G`, `?`, `Enter`, `PageDown`, `ctrl-r`, `F5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let (ctrl, rest) = match text.strip_prefix("ctrl-") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let code = match rest {
            "Enter" => KeyCode::Enter,
            "Esc" => KeyCode::Esc,
            "Tab" => KeyCode::Tab,
            "BackTab" => KeyCode::BackTab,
            "Backspace" => KeyCode::Backspace,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            "Home" => KeyCode::Home,
            "End" => KeyCode::End,
            "PageUp" => KeyCode::PageUp,
            "PageDown" => KeyCode::PageDown,
            "Space" => KeyCode::Char(' '),
            f if f.starts_with('F') && f.len() > 1 => {
                let n: u8 = f[1..].parse().map_err(|_| format!("\"{text}\" is not a key"))?;
                KeyCode::F(n)
            }
            single if single.chars().count() == 1 => KeyCode::Char(single.chars().next().unwrap_or(' ')),
            _ => {
                return Err(format!(
                    "\"{text}\" is not a key (write a character, Enter, Esc, Tab, Up, PageDown, F5, ctrl-r, …)"
                ));
            }
        };
        Ok(Key { code, ctrl })
    }

    pub fn of(event: &KeyEvent) -> Key {
        // Terminals send shifted letters as upper case already, so SHIFT is not compared.
        Key {
            code: event.code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
        }
    }

    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.ctrl { format!("ctrl-{base}") } else { base }
    }
}

/// Keys to commands, defaults overridden by `[keys]`.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Key, Command)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Self::new(&BTreeMap::new()).unwrap_or(Keymap { bindings: Vec::new() })
    }
}

impl Keymap {
    /// The defaults, with each command named in `overrides` bound to the keys given instead.
    pub fn new(overrides: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        for name in overrides.keys() {
            if !COMMANDS.iter().any(|c| c.name == name) {
                let known: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
                return Err(format!(
                    "keys.{name} is not a command; commands: {}",
                    known.join(", ")
                ));
            }
        }
        let mut bindings = Vec::new();
        for info in COMMANDS {
            let keys: Vec<String> = match overrides.get(info.name) {
                Some(keys) => keys.clone(),
                None => info.defaults.iter().map(|k| k.to_string()).collect(),
            };
            for key in keys {
                let key = Key::parse(&key).map_err(|e| format!("keys.{}: {e}", info.name))?;
                if let Some((_, other)) = bindings.iter().find(|(k, _)| *k == key) {
                    let other = COMMANDS
                        .iter()
                        .find(|c| c.command == *other)
                        .map_or("?", |c| c.name);
                    return Err(format!(
                        "keys.{}: {} is already bound to {other}",
                        info.name,
                        key.label()
                    ));
                }
                bindings.push((key, info.command));
            }
        }
        Ok(Keymap { bindings })
    }

    pub fn command(&self, event: &KeyEvent) -> Option<Command> {
        let key = Key::of(event);
        self.bindings.iter().find(|(k, _)| *k == key).map(|(_, c)| *c)
    }

    /// The keys of a command, as help shows them.
    pub fn keys_of(&self, command: Command) -> Vec<String> {
        self.bindings
            .iter()
            .filter(|(_, c)| *c == command)
            .map(|(k, _)| k.label())
            .collect()
    }

    /// The key-hint bar: `? help  / filter  …`, of the commands `available` now.
    pub fn hints(&self, available: impl Fn(Command) -> bool) -> Vec<(String, &'static str)> {
        COMMANDS
            .iter()
            .filter(|info| available(info.command))
            .filter_map(|info| {
                let hint = info.hint?;
                let key = self.keys_of(info.command).into_iter().next()?;
                Some((key, hint))
            })
            .collect()
    }

    /// Every command with its keys, as help lists them.
    pub fn help(&self) -> Vec<(String, &'static str)> {
        COMMANDS
            .iter()
            .map(|info| (self.keys_of(info.command).join(" "), info.help))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn defaults_bind_vim_keys_and_arrows() {
        let keymap = Keymap::default();
        assert_eq!(
            keymap.command(&press(KeyCode::Char('j'), KeyModifiers::NONE)),
            Some(Command::Down)
        );
        assert_eq!(
            keymap.command(&press(KeyCode::Down, KeyModifiers::NONE)),
            Some(Command::Down)
        );
        assert_eq!(
            keymap.command(&press(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Command::Bottom)
        );
        assert_eq!(
            keymap.command(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Command::Quit)
        );
        assert_eq!(
            keymap.command(&press(KeyCode::Char('c'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn every_default_can_be_remapped_and_conflicts_are_refused() {
        let overrides = BTreeMap::from([("down".to_string(), vec!["J".to_string(), "F5".to_string()])]);
        let keymap = Keymap::new(&overrides).unwrap();
        assert_eq!(
            keymap.command(&press(KeyCode::Char('J'), KeyModifiers::NONE)),
            Some(Command::Down)
        );
        assert_eq!(
            keymap.command(&press(KeyCode::F(5), KeyModifiers::NONE)),
            Some(Command::Down)
        );
        assert_eq!(
            keymap.command(&press(KeyCode::Char('j'), KeyModifiers::NONE)),
            None
        );
        let clash = BTreeMap::from([("down".to_string(), vec!["q".to_string()])]);
        let err = Keymap::new(&clash).unwrap_err();
        assert!(err.contains("keys.quit: q is already bound to down"), "{err}");
        let unknown = BTreeMap::from([("fly".to_string(), vec!["x".to_string()])]);
        assert!(
            Keymap::new(&unknown)
                .unwrap_err()
                .contains("keys.fly is not a command")
        );
        let bad = BTreeMap::from([("up".to_string(), vec!["Hyper-x".to_string()])]);
        assert!(Keymap::new(&bad).unwrap_err().contains("is not a key"));
    }

    #[test]
    fn help_and_hints_come_from_the_same_list() {
        let keymap = Keymap::default();
        let help = keymap.help();
        assert_eq!(help.len(), COMMANDS.len());
        for (key, hint) in keymap.hints(|_| true) {
            assert!(
                help.iter().any(|(keys, _)| keys.split(' ').any(|k| k == key)),
                "{key} {hint}"
            );
        }
    }
}
