//! `kycdash export`: reads the cache (sweeping once first with `--refresh`), makes one record
//! per customer and writes them to stdout or a file. The records themselves are
//! `crate::export`'s.

use std::io::Write as _;
use std::path::Path;

use crate::cli::{ExportArgs, SyncArgs};
use crate::connection::{Failure, cache_only, connect, engine_config, shutdown_signal};
use crate::export::{self, Record};
use crate::sync::cache;
use crate::sync::engine::{self, API_IDENTITY, EngineEvent};

/// `kycdash export`.
pub async fn export(args: ExportArgs) -> Result<(), Failure> {
    let wanted = cache_only(&args.connect)?;
    if args.refresh {
        refresh(&args).await?;
    }
    let data_dir = wanted.data_dir.clone();
    let identity = wanted.identity.clone();
    let include_pii = args.include_pii;
    let (records, as_of) = tokio::task::spawn_blocking(move || read(&data_dir, &identity, include_pii))
        .await
        .map_err(|err| Failure::fatal(format!("reading the cache failed: {err}")))??;
    let mut bytes = Vec::new();
    export::write(args.format, &records, include_pii, &mut bytes)
        .map_err(|e| Failure::fatal(e.to_string()))?;
    match &args.output {
        Some(path) => export::write_atomically(path, &bytes)
            .map_err(|e| Failure::fatal(format!("cannot write the export to {}: {e}", path.display())))?,
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                // A reader that stopped reading (`| head`) took what it wanted.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(err) => return Err(Failure::fatal(format!("cannot write the export: {err}"))),
                Ok(()) => {}
            }
        }
    }
    if !args.refresh {
        let when = as_of
            .map(|at| format!(", statuses fetched up to {}", crate::sync::rfc3339(at)))
            .unwrap_or_default();
        eprintln!(
            "kycdash: {} customers as of the cache in {}{when}; --refresh sweeps first",
            records.len(),
            wanted.data_dir.display()
        );
    }
    Ok(())
}

/// One sweep into the cache, as `watch --once` does; exit 1 when the API cannot be reached.
async fn refresh(args: &ExportArgs) -> Result<(), Failure> {
    let mut connection = connect(&args.connect, true).await?;
    let sync = SyncArgs {
        inbox: None,
        webhook_listen: None,
        metrics_listen: None,
        webhook_url: None,
        webhook_secret: None,
        max_rps: None,
        concurrency: None,
        // An export deletes nothing: the engine prunes past the retention at start, and the
        // user's `watch --retain-days` is not known here.
        retain_days: 36_500,
    };
    let config = engine_config(&connection, &sync, true)?;
    let Some(lock) = connection.lock.take() else {
        return Err(Failure::fatal("the data directory is not locked"));
    };
    let engine = match engine::start(config, lock).await {
        Ok(engine) => engine,
        Err(err) => {
            connection.shutdown().await;
            return Err(err.into());
        }
    };
    let (handle, mut events, task) = engine.into_parts();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut failed = None;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(EngineEvent::Fatal { error }) => failed = Some(error),
                Some(EngineEvent::Stopped) | None => break,
                Some(_) => {}
            },
            _ = &mut signal, if failed.is_none() => {
                handle.stop();
                failed = Some("interrupted before the sweep finished; nothing was exported".into());
            }
        }
    }
    let _ = task.await;
    connection.shutdown().await;
    match failed {
        Some(error) => Err(Failure::fatal(error)),
        None => Ok(()),
    }
}

/// Every customer's record, and when the newest status among them was fetched.
fn read(
    data_dir: &Path,
    identity: &str,
    include_pii: bool,
) -> Result<(Vec<Record>, Option<time::OffsetDateTime>), Failure> {
    let path = data_dir.join("cache.db");
    if !path.is_file() {
        return Err(Failure::fatal(format!(
            "there is no cache in {} to export from; fill it with `kycdash watch --once` (or \
             `kycdash export --refresh`) using the same connection options, or pass --data-dir",
            data_dir.display()
        )));
    }
    let conn = cache::open(&path).map_err(|e| Failure::fatal(e.to_string()))?;
    let held: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [API_IDENTITY],
            |row| row.get(0),
        )
        .ok();
    if held.as_deref().is_some_and(|held| held != identity) {
        return Err(Failure::fatal(format!(
            "the cache in {} holds another API's or key's customers; export with the connection \
             options (--api-url and --api-key, or --profile) that filled it, or add --refresh to \
             fill it from this one",
            data_dir.display()
        )));
    }
    let rows = cache::everyone(&conn).map_err(|e| Failure::fatal(e.to_string()))?;
    let as_of = rows
        .iter()
        .filter_map(|r| r.status.as_ref().map(|(_, at)| *at))
        .max();
    let records = rows
        .iter()
        .map(|rows| export::record(rows, include_pii))
        .collect();
    Ok((records, as_of))
}
