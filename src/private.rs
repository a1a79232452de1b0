//! Files and folders only this user may read (SPEC §10, secrets at rest): the data directory
//! is created 0700, and the files in it that hold keys, secrets or customers' data (the cache,
//! the sandbox's database, the log) are 0600, with SQLite's `-wal` and `-shm` beside them.

use std::io;
use std::path::Path;

/// Creates `dir` and its parents if missing; the directory itself, when this call creates it,
/// is 0700 (one that exists is the user's choice and left alone).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    restrict(dir, 0o700)
}

/// Makes sure `file` exists and only its owner can read or write it, before a database or a
/// log opens it; SQLite's `-wal` and `-shm` files, when there, too.
pub fn own_file(file: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?;
    restrict(file, 0o600)?;
    for suffix in ["-wal", "-shm"] {
        let mut beside = file.as_os_str().to_owned();
        beside.push(suffix);
        let beside = Path::new(&beside);
        if beside.exists() {
            restrict(beside, 0o600)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_0700_and_files_0600_with_their_companions() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data/kycdash");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("cache.db");
        std::fs::write(dir.join("cache.db-wal"), b"").unwrap();
        std::fs::set_permissions(dir.join("cache.db-wal"), std::fs::Permissions::from_mode(0o644)).unwrap();
        own_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("cache.db-wal")), 0o600);
        // An existing directory keeps the mode its owner gave it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o750);
    }
}
