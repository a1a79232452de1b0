//! Colours and stage symbols. Symbols carry the meaning, so the screen reads the same with
//! `NO_COLOR` or on a monochrome terminal; colour only adds emphasis.

use ratatui::style::{Color, Modifier, Style};

use super::qr::Background;
use crate::domain::Stage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeName {
    Dark,
    Light,
    /// `NO_COLOR`: attributes only.
    Plain,
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub name: ThemeName,
    /// The terminal's background, which the QR code is drawn for when there are no colours
    /// (`--qr`); with colours it is black on white whatever the background.
    pub qr: Background,
}

impl Theme {
    pub fn new(name: ThemeName) -> Theme {
        Theme {
            name,
            qr: Background::default(),
        }
    }

    /// `NO_COLOR` (any value) wins over the configured theme.
    pub fn from_env(configured: Option<&str>) -> Result<Theme, String> {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Ok(Theme::new(ThemeName::Plain));
        }
        Ok(Theme::new(match configured {
            None | Some("dark") => ThemeName::Dark,
            Some("light") => ThemeName::Light,
            Some("plain") | Some("none") => ThemeName::Plain,
            Some(other) => return Err(format!("theme \"{other}\" is not dark, light or plain")),
        }))
    }

    fn fg(&self, color: Color) -> Style {
        match self.name {
            ThemeName::Plain => Style::default(),
            _ => Style::default().fg(color),
        }
    }

    pub fn stage(&self, stage: Option<Stage>) -> Style {
        let light = self.name == ThemeName::Light;
        let color = match stage {
            Some(Stage::Approved) => Color::Green,
            Some(Stage::Denied | Stage::Errored) => Color::Red,
            Some(Stage::Expired | Stage::NeedsProfile) => {
                if light {
                    Color::Magenta
                } else {
                    Color::Yellow
                }
            }
            Some(Stage::ReadyToStart | Stage::CollectingRequirements) => Color::Cyan,
            Some(Stage::AwaitingSdk | Stage::InReview | Stage::AwaitingDecision) => Color::Blue,
            None => Color::Gray,
        };
        self.fg(color)
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        match self.name {
            ThemeName::Plain => Style::default(),
            _ => Style::default().fg(Color::DarkGray),
        }
    }

    pub fn selected(&self) -> Style {
        match self.name {
            ThemeName::Plain => Style::default().add_modifier(Modifier::REVERSED),
            ThemeName::Dark => Style::default().bg(Color::DarkGray).add_modifier(Modifier::BOLD),
            ThemeName::Light => Style::default().bg(Color::Gray).add_modifier(Modifier::BOLD),
        }
    }

    pub fn alert(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red)
    }

    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn focused_border(&self) -> Style {
        match self.name {
            ThemeName::Plain => Style::default().add_modifier(Modifier::BOLD),
            _ => Style::default().fg(Color::Cyan),
        }
    }
}

/// A stage's symbol: readable without colour.
pub fn symbol(stage: Option<Stage>) -> &'static str {
    match stage {
        Some(Stage::NeedsProfile) => "✎",
        Some(Stage::ReadyToStart) => "○",
        Some(Stage::AwaitingSdk) => "◔",
        Some(Stage::InReview) => "◑",
        Some(Stage::CollectingRequirements) => "◕",
        Some(Stage::AwaitingDecision) => "◷",
        Some(Stage::Expired) => "⊘",
        Some(Stage::Errored) => "✖",
        Some(Stage::Approved) => "✔",
        Some(Stage::Denied) => "✘",
        None => "·",
    }
}
