//! The inbox (SPEC §7): a watched folder where dropped files become document uploads.
//!
//! A file named `<customer>/<TYPE>.<ext>` or `<customer>__<TYPE>[__note].<ext>` (customer = id
//! or externalId, TYPE any case) is uploaded once its size and modification time have held
//! still for a moment, then moved under `.processed/` once the engine has recorded the upload,
//! or under `.failed/` with `<name>.error.txt` beside it saying what was wrong. Transient
//! failures (and an upload the cache could not record) stay in place and are retried. Hidden
//! and temporary files are ignored; nothing is deleted or overwritten. A file already uploaded
//! (same SHA-256, customer and type) is not uploaded again. Files there at start are
//! processed; a periodic rescan catches whatever the watcher missed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify_debouncer_full::notify::RecursiveMode;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::directory::Directory;
use super::observation::{Observation, UploadMade, UploadResult};
use crate::api::{ApiClient, ApiError};
use crate::domain::DocumentType;

pub const PROCESSED: &str = ".processed";
pub const FAILED: &str = ".failed";

/// Uploads already made: (SHA-256, customer, type). Shared by the inbox and the engine's own
/// upload action, so the same rule holds for both.
pub type Uploaded = Arc<Mutex<HashSet<(String, Uuid, String)>>>;

#[derive(Debug, Clone, Copy)]
pub struct InboxTiming {
    /// How long a file's size and modification time must hold still.
    pub stable_for: Duration,
    /// How often the folder is rescanned without a watcher event: a safety net for file
    /// systems whose events get lost (network mounts). Without a watcher at all, the folder
    /// is rescanned twice per `stable_for` instead.
    pub rescan_every: Duration,
}

impl Default for InboxTiming {
    fn default() -> Self {
        Self {
            stable_for: Duration::from_secs(2),
            rescan_every: Duration::from_secs(30),
        }
    }
}

/// Who a file is for and what it is, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub customer: String,
    pub document_type: DocumentType,
}

/// Reads a file's path relative to the inbox. `Ok(None)` for files to ignore (hidden,
/// temporary, or under `.processed`/`.failed`); `Err` says how to name it instead.
pub fn parse_name(relative: &Path) -> Result<Option<Addressed>, String> {
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    if parts.len() != relative.iter().count() {
        return Err("the file name is not valid UTF-8".into());
    }
    let Some(file) = parts.last().copied() else {
        return Ok(None);
    };
    if parts.iter().any(|p| p.starts_with('.')) || is_temporary(file) {
        return Ok(None);
    }
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    let hint = "name it <customer>__<TYPE>.<ext> or put it in <customer>/<TYPE>.<ext>, where customer is \
                the id or externalId and TYPE is one of SOURCE_OF_FUNDS, W9, W8BEN, BIOMETRIC_REPORT, \
                PROOF_OF_ADDRESS";
    let (customer, type_name) = match parts.as_slice() {
        [_] => {
            let mut pieces = stem.split("__");
            match (pieces.next(), pieces.next()) {
                (Some(customer), Some(type_name)) => (customer, type_name),
                _ => return Err(format!("\"{file}\" does not say whose document it is: {hint}")),
            }
        }
        [customer, _] => (*customer, stem),
        _ => return Err(format!("\"{}\" is nested too deep: {hint}", relative.display())),
    };
    if customer.trim().is_empty() {
        return Err(format!("\"{}\" names no customer: {hint}", relative.display()));
    }
    let document_type = DocumentType::parse(type_name)
        .ok_or_else(|| format!("\"{type_name}\" is not a document type: {hint}"))?;
    Ok(Some(Addressed {
        customer: customer.to_string(),
        document_type,
    }))
}

fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".tmp", ".crdownload", ".swp"]
            .iter()
            .any(|ext| name.to_ascii_lowercase().ends_with(ext))
}

/// The inbox task.
pub struct Inbox {
    pub dir: PathBuf,
    pub client: ApiClient,
    pub uploaded: Uploaded,
    pub engine: mpsc::UnboundedSender<Observation>,
    pub directory: Directory,
    pub timing: InboxTiming,
}

/// What the inbox remembers of a file it is watching settle.
struct Watched {
    size: u64,
    modified: Option<SystemTime>,
    still_since: Instant,
    /// A transient failure: not before this.
    retry_at: Option<Instant>,
    failures: u32,
}

impl Watched {
    fn new(size: u64, modified: Option<SystemTime>, now: Instant) -> Watched {
        Watched {
            size,
            modified,
            still_since: now,
            retry_at: None,
            failures: 0,
        }
    }

    /// Notes the file as seen `now`; returns when to look again if it is not ready yet: its
    /// size and modification time have not held still for `stable_for` (it is still being
    /// written), or a retry is not due.
    fn ready_at(
        &mut self,
        size: u64,
        modified: Option<SystemTime>,
        now: Instant,
        stable_for: Duration,
    ) -> Option<Instant> {
        if self.size != size || self.modified != modified {
            self.size = size;
            self.modified = modified;
            self.still_since = now;
        }
        let settled_at = self.still_since + stable_for;
        if settled_at > now {
            return Some(settled_at);
        }
        self.retry_at.filter(|at| *at > now)
    }
}

impl Inbox {
    pub async fn run(self, cancel: CancellationToken) {
        let dir = self.dir.clone();
        match off_worker(move || std::fs::create_dir_all(dir)).await {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                tracing::error!("cannot create the inbox {}: {err}", self.dir.display());
                return;
            }
            None => return,
        }
        let (tx, mut wakeups) = mpsc::unbounded_channel::<()>();
        let debouncer = notify_debouncer_full::new_debouncer(Duration::from_millis(200), None, move |_| {
            let _ = tx.send(());
        });
        let _debouncer = match debouncer {
            Ok(mut debouncer) => match debouncer.watch(&self.dir, RecursiveMode::Recursive) {
                Ok(()) => Some(debouncer),
                Err(err) => {
                    tracing::warn!("cannot watch {} ({err}); rescanning instead", self.dir.display());
                    None
                }
            },
            Err(err) => {
                tracing::warn!("no file watcher ({err}); rescanning the inbox instead");
                None
            }
        };
        // With a watcher, the inbox sleeps until something changes, a file it waits for has
        // settled or is due for a retry, or the safety rescan; without one, it polls.
        let idle = match &_debouncer {
            Some(_) => self.timing.rescan_every,
            None => (self.timing.stable_for.min(self.timing.rescan_every) / 2).max(Duration::from_millis(50)),
        };
        let mut watched: HashMap<PathBuf, Watched> = HashMap::new();
        loop {
            let next = self.scan(&mut watched, &cancel).await;
            if cancel.is_cancelled() {
                return;
            }
            let wake = next.map_or(Instant::now() + idle, |at| at.min(Instant::now() + idle));
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wakeups.recv() => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Uploads every file that has settled; returns when a file still waited for needs
    /// another look (settling, or due for a retry).
    async fn scan(
        &self,
        watched: &mut HashMap<PathBuf, Watched>,
        cancel: &CancellationToken,
    ) -> Option<Instant> {
        let dir = self.dir.clone();
        let files = off_worker(move || list_files(&dir)).await?;
        let present: HashSet<&PathBuf> = files.iter().map(|(path, _)| path).collect();
        watched.retain(|path, _| present.contains(path));
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut look_again = |at: Instant| next = Some(next.map_or(at, |n: Instant| n.min(at)));
        for (path, meta) in &files {
            if cancel.is_cancelled() {
                return None;
            }
            let Some((size, modified)) = *meta else {
                continue;
            };
            let entry = watched
                .entry(path.clone())
                .or_insert_with(|| Watched::new(size, modified, now));
            if let Some(later) = entry.ready_at(size, modified, now, self.timing.stable_for) {
                look_again(later);
                continue;
            }
            match self.process(path, cancel).await {
                Processed::Stopped => return None,
                Processed::Done => {
                    watched.remove(path);
                }
                Processed::RetryLater(err) => {
                    entry.failures += 1;
                    let wait = crate::backoff::jittered(
                        Duration::from_secs(1),
                        Duration::from_secs(60),
                        entry.failures.min(10),
                    );
                    tracing::warn!("{}: {err}; trying again in {}s", path.display(), wait.as_secs());
                    entry.retry_at = Some(Instant::now() + wait);
                    look_again(Instant::now() + wait);
                }
            }
        }
        next
    }

    /// Uploads one file and moves it on. Stopping before the upload is made leaves the file
    /// in place for the next start (its idempotency key makes that retry a replay, not a
    /// second upload); once made, it is seen through: recorded, then moved.
    async fn process(&self, path: &Path, cancel: &CancellationToken) -> Processed {
        let file = Dropped {
            path: path.to_path_buf(),
            relative: path.strip_prefix(&self.dir).unwrap_or(path).to_path_buf(),
        };
        match self.upload_file(&file, cancel).await {
            Ok(processed) | Err(processed) => processed,
        }
    }

    /// [`Inbox::process`]'s steps; `Err` is a step's early outcome.
    async fn upload_file(&self, file: &Dropped, cancel: &CancellationToken) -> Result<Processed, Processed> {
        let named = parse_name(&file.relative);
        // Hidden and temporary names are ignored, links among them (an editor's lock link).
        if let Ok(None) = named {
            return Ok(Processed::Done);
        }
        // Any other link is refused as a link whatever its name (one to a folder named like a
        // customer's would otherwise be refused for its name, which misleads).
        if file
            .path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(self.fail(file, None, None, SYMBOLIC_LINK.into()).await);
        }
        let addressed = match named {
            Ok(Some(addressed)) => addressed,
            Ok(None) => return Ok(Processed::Done),
            Err(why) => return Err(self.fail(file, None, None, why).await),
        };
        let document_type = addressed.document_type;
        let (sha, content) = self.read(file, document_type).await?;
        let customer_id = self.customer_of(file, &addressed, cancel).await?;
        let result = self
            .upload(file, (customer_id, document_type), &content, &sha, cancel)
            .await?;
        if result == UploadResult::Uploaded {
            self.record(file, customer_id, document_type, &sha).await?;
        }
        let processed = self.set_processed(file).await;
        let _ = self.engine.send(Observation::Upload {
            path: file.path.display().to_string(),
            customer_id: Some(customer_id),
            document_type: Some(document_type),
            sha256: Some(sha),
            result,
        });
        Ok(processed)
    }

    /// The file's SHA-256 and content, read and hashed off the async workers.
    async fn read(
        &self,
        file: &Dropped,
        document_type: DocumentType,
    ) -> Result<(String, Vec<u8>), Processed> {
        let path = file.path.clone();
        let read = off_worker(move || {
            let content = read_document(&path, document_type)?;
            Ok((sha256_hex(&content), content))
        });
        match read.await.ok_or(Processed::Stopped)? {
            Ok(read) => Ok(read),
            Err(why) => Err(self.fail(file, None, Some(document_type), why).await),
        }
    }

    /// Whom the file is for, by the id or externalId in its name.
    async fn customer_of(
        &self,
        file: &Dropped,
        addressed: &Addressed,
        cancel: &CancellationToken,
    ) -> Result<Uuid, Processed> {
        let resolved = cancel
            .run_until_cancelled(self.resolve(&addressed.customer))
            .await;
        let document_type = addressed.document_type;
        match resolved.ok_or(Processed::Stopped)? {
            Ok(Some(id)) => Ok(id),
            Ok(None) => {
                let why = format!(
                    "no customer has the id or externalId \"{}\"; check the name, or create the customer first",
                    addressed.customer
                );
                Err(self.fail(file, None, Some(document_type), why).await)
            }
            Err(err) => Err(self
                .api_failed(file, None, document_type, err, ApiError::to_string)
                .await),
        }
    }

    /// Uploads the file's content (once: see [`upload_once`]).
    async fn upload(
        &self,
        file: &Dropped,
        (customer_id, document_type): (Uuid, DocumentType),
        content: &[u8],
        sha: &str,
        cancel: &CancellationToken,
    ) -> Result<UploadResult, Processed> {
        let file_name = file
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("document");
        let upload = upload_hashed(
            &self.client,
            &self.uploaded,
            (customer_id, document_type),
            file_name,
            content,
            sha,
        );
        match cancel
            .run_until_cancelled(upload)
            .await
            .ok_or(Processed::Stopped)?
        {
            Ok(result) => Ok(result),
            Err(err) => Err(self
                .api_failed(file, Some(customer_id), document_type, err, explain)
                .await),
        }
    }

    /// A request about `file` failed: retried later if the failure may pass (a refused key
    /// also stops `watch`), else the file is set aside with the reason `why` gives.
    async fn api_failed(
        &self,
        file: &Dropped,
        customer_id: Option<Uuid>,
        document_type: DocumentType,
        err: ApiError,
        why: fn(&ApiError) -> String,
    ) -> Processed {
        if err.is_unauthorized() {
            let _ = self.engine.send(Observation::KeyRefused(err.clone()));
            return Processed::RetryLater(err.to_string());
        }
        if err.is_transient() {
            return Processed::RetryLater(err.to_string());
        }
        self.fail(file, customer_id, Some(document_type), why(&err)).await
    }

    /// Moves an uploaded (and recorded) file under `.processed/`.
    async fn set_processed(&self, file: &Dropped) -> Processed {
        let (dir, relative) = (self.dir.clone(), file.relative.clone());
        match off_worker(move || move_under(&dir, PROCESSED, &relative)).await {
            Some(Ok(_)) => Processed::Done,
            Some(Err(err)) => {
                tracing::error!(
                    "{}: uploaded, but cannot move it to {PROCESSED}: {err}",
                    file.path.display()
                );
                Processed::Done
            }
            None => Processed::Stopped,
        }
    }

    /// Has the engine record an upload made, and waits until the cache stored it: only then
    /// may the file leave the inbox (SPEC §10). If it could not, the file stays, and the
    /// upload is forgotten, so the retry makes it again (a replay, by its idempotency key) and
    /// records it then.
    async fn record(
        &self,
        file: &Dropped,
        customer_id: Uuid,
        document_type: DocumentType,
        sha256: &str,
    ) -> Result<(), Processed> {
        let (recorded, answer) = oneshot::channel();
        let _ = self.engine.send(Observation::UploadMade(UploadMade {
            path: file.path.display().to_string(),
            customer_id,
            document_type,
            sha256: sha256.to_string(),
            recorded,
        }));
        if answer.await == Ok(true) {
            return Ok(());
        }
        if let Ok(mut uploaded) = self.uploaded.lock() {
            uploaded.remove(&uploaded_key(sha256, customer_id, document_type));
        }
        Err(Processed::RetryLater(
            "uploaded, but the cache could not record the upload (see above); the file stays until it can"
                .into(),
        ))
    }

    /// The file's customer: from the engine's index, else from the API (a customer created
    /// a moment ago, not listed yet).
    async fn resolve(&self, customer: &str) -> Result<Option<Uuid>, ApiError> {
        if let Some(id) = self.directory.find(customer) {
            return Ok(Some(id));
        }
        Ok(self.client.find_customer(customer).await?.map(|c| c.id))
    }

    /// Sets `file` aside under `.failed/` with a note saying `why`, and tells the engine.
    async fn fail(
        &self,
        file: &Dropped,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        why: String,
    ) -> Processed {
        let (dir, relative, note) = (self.dir.clone(), file.relative.clone(), why.clone());
        if off_worker(move || set_aside(&dir, &relative, &note))
            .await
            .is_none()
        {
            return Processed::Stopped;
        }
        let _ = self.engine.send(Observation::Upload {
            path: file.path.display().to_string(),
            customer_id,
            document_type,
            sha256: None,
            result: UploadResult::Failed(why),
        });
        Processed::Done
    }
}

/// A file being processed: where it is, and where inside the inbox.
struct Dropped {
    path: PathBuf,
    relative: PathBuf,
}

/// Moves `relative` under `.failed/` with `<name>.error.txt` beside it saying `why`.
fn set_aside(dir: &Path, relative: &Path, why: &str) {
    match move_under(dir, FAILED, relative) {
        Ok(moved) => {
            let mut note = moved.into_os_string();
            note.push(".error.txt");
            // A note of that name may be there already (a file of the same name failed
            // before): never overwrite it.
            let note = free_name(Path::new(&note));
            let text = format!(
                "{why}\n\nThe file was not uploaded. Fix what is said above and drop the file into the inbox again.\n"
            );
            if let Err(err) = std::fs::write(&note, text) {
                tracing::error!("cannot write {}: {err}", note.display());
            }
        }
        Err(err) => tracing::error!(
            "{}: {why}; and cannot move it to {FAILED}: {err}",
            dir.join(relative).display()
        ),
    }
}

/// Runs file work (listing, reading and hashing up to 10 MiB, renaming) on the blocking pool,
/// never on an async worker. `None`: the runtime is shutting down. A panic stays a panic.
async fn off_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Some(done),
        Err(err) => match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

/// Uploads a document unless the same content was already uploaded for the same customer and
/// type; returns its SHA-256 and whether it was uploaded or a duplicate. The inbox and the
/// engine's own upload action both go through here, so the rule is one rule.
pub async fn upload_once(
    client: &ApiClient,
    uploaded: &Uploaded,
    customer_id: Uuid,
    document_type: DocumentType,
    file_name: &str,
    content: &[u8],
) -> Result<(String, UploadResult), ApiError> {
    let sha = sha256_hex(content);
    let result = upload_hashed(
        client,
        uploaded,
        (customer_id, document_type),
        file_name,
        content,
        &sha,
    )
    .await?;
    Ok((sha, result))
}

/// [`upload_once`] of content whose SHA-256 is known (the inbox hashes off the async workers).
async fn upload_hashed(
    client: &ApiClient,
    uploaded: &Uploaded,
    (customer_id, document_type): (Uuid, DocumentType),
    file_name: &str,
    content: &[u8],
    sha: &str,
) -> Result<UploadResult, ApiError> {
    let key = uploaded_key(sha, customer_id, document_type);
    if uploaded.lock().map(|set| set.contains(&key)).unwrap_or(false) {
        return Ok(UploadResult::Duplicate);
    }
    let idempotency_key = upload_key(sha, customer_id, document_type);
    client
        .upload_document(
            customer_id,
            document_type,
            file_name,
            content,
            Some(idempotency_key),
        )
        .await?;
    if let Ok(mut set) = uploaded.lock() {
        set.insert(key);
    }
    Ok(UploadResult::Uploaded)
}

fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// An upload's entry in [`Uploaded`].
fn uploaded_key(sha256: &str, customer_id: Uuid, document_type: DocumentType) -> (String, Uuid, String) {
    (
        sha256.to_string(),
        customer_id,
        document_type.as_str().to_string(),
    )
}

/// The Idempotency-Key of an upload: the content, the customer and the type, so that the same
/// upload made again (after a crash, by another run) replays the first answer.
pub fn upload_key(sha256: &str, customer_id: Uuid, document_type: DocumentType) -> String {
    format!("inbox-{sha256}-{customer_id}-{}", document_type.as_str())
}

enum Processed {
    Done,
    RetryLater(String),
    /// Stopping: left as it is, for the next start.
    Stopped,
}

fn explain(err: &ApiError) -> String {
    match err.status() {
        Some(404) => format!("the API does not know this customer ({err})"),
        _ => format!("the API refused the upload: {err}"),
    }
}

/// Reads a document file, refusing more than the API accepts without reading it all, and
/// content that is not what `document_type` accepts (by its magic bytes). The inbox and the
/// dashboard's upload both read files through here.
pub fn read_document(path: &Path, document_type: DocumentType) -> Result<Vec<u8>, String> {
    let file = open_regular(path)?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?;
    crate::domain::check_size(meta.len()).map_err(|e| e.to_string())?;
    // A file still growing is read no further than the limit, and refused if it passed it.
    let mut content = Vec::with_capacity(meta.len() as usize);
    let limit = crate::domain::MAX_DOCUMENT_BYTES as u64 + 1;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut content)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    crate::domain::check_size(content.len() as u64).map_err(|e| e.to_string())?;
    document_type.check_content(&content).map_err(|e| e.to_string())?;
    Ok(content)
}

const SYMBOLIC_LINK: &str = "it is a symbolic link; only regular files in the inbox are read";
const NOT_REGULAR: &str = "it is not a regular file (a FIFO, a socket, a device or a folder is not read)";

/// Opens `path` only if it is a regular file, itself: a symbolic link is not followed (it
/// could point anywhere, `/etc/passwd` included), and a FIFO or a device is not waited on
/// (the open does not block; the file's own type is checked on what was opened, so a file
/// swapped for another after the listing is caught too).
fn open_regular(path: &Path) -> Result<std::fs::File, String> {
    // What is not a regular file is not even opened (opening a device can act: a tape
    // rewinds); the check after the open catches a swap in between.
    match path.symlink_metadata() {
        Ok(meta) if meta.file_type().is_symlink() => return Err(SYMBOLIC_LINK.into()),
        Ok(meta) if !meta.is_file() => return Err(NOT_REGULAR.into()),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    );
    let file = options.open(path).map_err(|e| match e.raw_os_error() {
        #[cfg(unix)]
        Some(libc::ELOOP) => SYMBOLIC_LINK.to_string(),
        // What opening a Unix socket answers.
        #[cfg(unix)]
        Some(libc::ENXIO) => NOT_REGULAR.to_string(),
        _ => format!("cannot read the file: {e}"),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        return Err(NOT_REGULAR.into());
    }
    Ok(file)
}

/// A file's size and modification time: what tells whether it has settled.
type Stamp = (u64, Option<SystemTime>);

/// Every candidate file (at the top level, and one level down: `<customer>/<TYPE>.<ext>`)
/// with its size and modification time (`None` if they cannot be read). A symbolic link's
/// are its own, never its target's: a link is not followed, not even to be stat'ed (a
/// dangling one is a candidate as well).
fn list_files(dir: &Path) -> Vec<(PathBuf, Option<Stamp>)> {
    let mut files = candidate_files(dir);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let meta = std::fs::symlink_metadata(&path).ok();
            let meta = meta.map(|meta| (meta.len(), meta.modified().ok()));
            (path, meta)
        })
        .collect()
}

/// A folder is a customer's folder (its entries are candidates, folders in it are not); every
/// other entry is a candidate, whatever its type: a symbolic link, a FIFO, a socket or a
/// device named like a document is refused by [`read_document`] and set aside under
/// `.failed/` with the reason, instead of sitting in the inbox unexplained (issue 17). A
/// symbolic link to a folder is not a folder here: it is not followed.
fn candidate_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        if !kind.is_dir() {
            files.push(entry.path());
        } else if let Ok(inner) = std::fs::read_dir(entry.path()) {
            files.extend(
                inner
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    files
}

/// Moves `relative` under `dir/folder/`, keeping its sub-folder, never overwriting: a name
/// already taken gets ` (1)`, ` (2)`, … before its extension. Returns where it went.
fn move_under(dir: &Path, folder: &str, relative: &Path) -> std::io::Result<PathBuf> {
    // Every level under `dir/folder` must be a real folder: a symbolic link set aside there
    // (one named like a customer's folder) would carry later files out of the inbox.
    let mut parent = dir.join(folder);
    if parent.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        return Err(std::io::Error::other(format!(
            "{} is not a folder",
            parent.display()
        )));
    }
    if let Some(levels) = relative.parent() {
        for level in levels.components() {
            parent = real_folder(parent.join(level));
        }
    }
    std::fs::create_dir_all(&parent)?;
    let name = relative.file_name().unwrap_or(relative.as_os_str());
    let target = free_name(&parent.join(name));
    std::fs::rename(dir.join(relative), &target)?;
    Ok(target)
}

/// `path`, or `path (1)`, `(2)`… : the first that is a folder or nothing yet (not a link, not
/// a file).
fn real_folder(path: PathBuf) -> PathBuf {
    let usable = |p: &Path| p.symlink_metadata().map_or(true, |m| m.is_dir());
    if usable(&path) {
        return path;
    }
    let name = path.file_name().unwrap_or_default().to_os_string();
    (1..)
        .map(|n| {
            let mut numbered = name.clone();
            numbered.push(format!(" ({n})"));
            path.with_file_name(numbered)
        })
        .find(|p| usable(p))
        .unwrap_or(path)
}

fn free_name(path: &Path) -> PathBuf {
    // `symlink_metadata`, not `exists`: a dangling link set aside before is a taken name too
    // (a rename onto it would replace it).
    let taken = |p: &Path| p.symlink_metadata().is_ok();
    if !taken(path) {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    (1..)
        .map(|n| path.with_file_name(format!("{stem} ({n}){ext}")))
        .find(|p| !taken(p))
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {

    /// Hostile files: a symbolic link (to `/etc/passwd`), a FIFO and a folder are refused at
    /// once, without following or waiting; an empty file is refused with its reason.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_nothing_waits() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("ada-1__W9.pdf");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let fifo = dir.path().join("ada-1__W8BEN.pdf");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let folder = dir.path().join("ada-1__SOURCE_OF_FUNDS.pdf");
        std::fs::create_dir(&folder).unwrap();
        let empty = dir.path().join("ada-1__PROOF_OF_ADDRESS.pdf");
        std::fs::write(&empty, b"").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let read = |path: &Path| read_document(path, DocumentType::W9).unwrap_err();
            let _ = tx.send([read(&link), read(&fifo), read(&folder), read(&empty)]);
        });
        let [link, fifo, folder, empty] = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("nothing blocks (a FIFO opened for reading waits for a writer)");
        assert!(link.contains("symbolic link"), "{link}");
        assert!(fifo.contains("not a regular file"), "{fifo}");
        assert!(folder.contains("not a regular file"), "{folder}");
        assert!(empty.contains("empty"), "{empty}");
    }
    use super::*;

    #[test]
    fn names_say_whose_document_it_is() {
        let id = "0b8f4bb8-8fa7-4d7c-9a3c-1d1f0f6f2e11";
        let parse = |p: &str| parse_name(Path::new(p));
        assert_eq!(
            parse(&format!("{id}__w9.pdf")).unwrap(),
            Some(Addressed {
                customer: id.into(),
                document_type: DocumentType::W9
            })
        );
        assert_eq!(
            parse("ada-1__SOURCE_OF_FUNDS__march statement.pdf").unwrap(),
            Some(Addressed {
                customer: "ada-1".into(),
                document_type: DocumentType::SourceOfFunds
            })
        );
        assert_eq!(
            parse("ada-1/proof_of_address.png")
                .unwrap()
                .unwrap()
                .document_type,
            DocumentType::ProofOfAddress
        );
        for ignored in [
            ".hidden.pdf",
            "a__W9.pdf.part",
            "a__W9.tmp",
            "a__W9.pdf~",
            "a__W9.crdownload",
        ] {
            assert_eq!(parse(ignored).unwrap(), None, "{ignored}");
        }
        assert!(parse("statement.pdf").unwrap_err().contains("does not say whose"));
        assert!(
            parse("ada__PASSPORT.pdf")
                .unwrap_err()
                .contains("\"PASSPORT\" is not a document type")
        );
        assert!(parse("a/b/W9.pdf").is_err());
    }

    #[test]
    fn a_file_is_ready_only_once_it_has_held_still_and_its_retry_is_due() {
        let start = Instant::now();
        let stable = Duration::from_millis(300);
        let at = |ms: u64| start + Duration::from_millis(ms);
        let t0 = Some(SystemTime::UNIX_EPOCH);
        let t1 = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        let mut file = Watched::new(100, t0, start);
        assert_eq!(file.ready_at(100, t0, at(200), stable), Some(at(300)));
        // The second half arrives: the wait starts over from when it was seen.
        assert_eq!(file.ready_at(200, t1, at(250), stable), Some(at(550)));
        assert_eq!(file.ready_at(200, t1, at(549), stable), Some(at(550)));
        assert_eq!(file.ready_at(200, t1, at(550), stable), None);
        // Touched with the same size: still a change.
        let t2 = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2));
        assert_eq!(file.ready_at(200, t2, at(600), stable), Some(at(900)));
        file.retry_at = Some(at(2_000));
        assert_eq!(file.ready_at(200, t2, at(1_000), stable), Some(at(2_000)));
        assert_eq!(file.ready_at(200, t2, at(2_000), stable), None);
    }

    #[test]
    fn taken_names_get_a_suffix_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..3 {
            std::fs::write(dir.path().join("a__W9.pdf"), format!("round {round}")).unwrap();
            move_under(dir.path(), PROCESSED, Path::new("a__W9.pdf")).unwrap();
        }
        let processed = dir.path().join(PROCESSED);
        for (name, round) in [("a__W9.pdf", 0), ("a__W9 (1).pdf", 1), ("a__W9 (2).pdf", 2)] {
            assert_eq!(
                std::fs::read_to_string(processed.join(name)).unwrap(),
                format!("round {round}")
            );
        }
    }
}
