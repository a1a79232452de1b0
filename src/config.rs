//! `config.toml` (in the XDG config directory, or `--config PATH`): named profiles of
//! connection and sync settings. Unknown keys and bad values are errors that name the key and
//! the line; a file others can read that holds an API key gets a warning. Precedence is
//! flags > environment > profile.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when `--profile` is not given.
    pub default_profile: Option<String>,
    /// The dashboard's colours: `dark` (default), `light` or `plain`. `NO_COLOR` wins.
    pub theme: Option<String>,
    /// Whether the dashboard captures the mouse at start (default true); `m` toggles it.
    /// Off, the terminal's own text selection works.
    pub mouse: Option<bool>,
    /// The dashboard's keys: command name → keys, replacing that command's defaults.
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub api_url: Option<String>,
    pub api_key: Option<Secret>,
    pub data_dir: Option<PathBuf>,
    pub inbox: Option<PathBuf>,
    pub webhook_listen: Option<SocketAddr>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Secret>,
    pub max_rps: Option<u32>,
    pub concurrency: Option<usize>,
    /// Serve Prometheus metrics here (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Disable every action that writes (for watching a live account).
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("there is no profile \"{name}\" in {path} (profiles: {known})")]
    NoSuchProfile {
        name: String,
        path: PathBuf,
        known: String,
    },
}

/// Where `config.toml` lives by default.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "kycdash", "kycdash").map(|d| d.config_dir().join("config.toml"))
}

/// Reads a config file; a missing file is an empty config.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let config = parse(&text, path)?;
    if config
        .profiles
        .values()
        .any(|p| p.api_key.is_some() || p.webhook_secret.is_some())
        && readable_by_others(path)
    {
        tracing::warn!(
            "{} holds an API key and other users can read it; run chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(config)
}

/// Reads the text of a config file (`path` only names it in errors): [`load`] without the
/// file, public for the fuzz target and tests.
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    // toml's own Display quotes the offending line, which may hold a key: say where and what
    // without it.
    let config: ConfigFile = toml::from_str(text).map_err(|err| {
        let place = err.span().map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: ")
        });
        ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("{}{}", place.unwrap_or_default(), err.message().trim()),
        }
    })?;
    for (name, profile) in &config.profiles {
        if let Some(concurrency) = profile.concurrency.filter(|n| !(1..=1024).contains(n)) {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!("profiles.{name}.concurrency must be 1 to 1024, not {concurrency}"),
            });
        }
    }
    Ok(config)
}

impl ConfigFile {
    /// The profile asked for, or the default one; `None` when neither is set.
    pub fn profile(&self, name: Option<&str>, path: &Path) -> Result<Option<(String, Profile)>, ConfigError> {
        let Some(name) = name.or(self.default_profile.as_deref()) else {
            return Ok(None);
        };
        match self.profiles.get(name) {
            Some(profile) => Ok(Some((name.to_string(), profile.clone()))),
            None => Err(ConfigError::NoSuchProfile {
                name: name.to_string(),
                path: path.to_path_buf(),
                known: if self.profiles.is_empty() {
                    "none".into()
                } else {
                    self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            }),
        }
    }
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn profiles_load_and_the_default_applies() {
        let (_dir, path) = write(
            "default_profile = \"staging\"\n[profiles.staging]\napi_url = \"http://127.0.0.1:9\"\nmax_rps = 5\nread_only = true\n",
        );
        let config = load(&path).unwrap();
        let (name, profile) = config.profile(None, &path).unwrap().unwrap();
        assert_eq!(name, "staging");
        assert_eq!(profile.max_rps, Some(5));
        assert!(profile.read_only);
        let err = config.profile(Some("prod"), &path).unwrap_err().to_string();
        assert!(
            err.contains("no profile \"prod\"") && err.contains("staging"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_the_line() {
        let (_dir, path) = write("[profiles.a]\napi_url = \"x\"\napi_kee = \"sk\"\n");
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("api_kee") && err.contains("line 3"), "{err}");
        let (_dir, path) = write("[profiles.a]\nmax_rps = \"fast\"\n");
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        // The offending line is not quoted: it may hold a key.
        let (_dir, path) = write("[profiles.a]\napi_key = sk_live_secret123\n");
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && !err.contains("secret123"), "{err}");
    }

    #[test]
    fn the_example_config_in_assets_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/config.example.toml");
        let config = load(&path).unwrap();
        assert_eq!(config.theme.as_deref(), Some("dark"));
        assert!(config.profiles["staging"].read_only);
        crate::tui::keymap::Keymap::new(&config.keys).unwrap();
    }

    #[test]
    fn no_key_or_secret_shows_in_debug_output() {
        let (_dir, path) = write(
            "[profiles.live]\napi_url = \"http://127.0.0.1:9\"\napi_key = \"sk_live_supersecretvalue\"\n\
             webhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
        );
        let config = load(&path).unwrap();
        let profile = &config.profiles["live"];
        assert_eq!(
            profile.api_key.as_ref().map(|k| k.expose_secret()),
            Some("sk_live_supersecretvalue")
        );
        for shown in [format!("{config:?}"), format!("{profile:?}")] {
            assert!(!shown.contains("supersecretvalue"), "{shown}");
            assert!(!shown.contains("9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{shown}");
            assert!(
                shown.contains("sk_live_su…") && shown.contains("whsec_MfKQ…"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(&dir.path().join("none.toml")).unwrap();
        assert!(config.profile(None, dir.path()).unwrap().is_none());
    }
}
