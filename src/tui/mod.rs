//! The dashboard (SPEC §9): `kycdash` with no subcommand. It sees the API only through the
//! sync engine; the engine's events arrive on a channel and are applied in batches. It draws
//! only when something changed, at most one frame per ~16 ms, each frame in synchronized
//! output; idle, nothing wakes it but a once-a-second countdown while one is on screen.

pub mod app;
pub mod demo;
mod effects;
pub mod form;
/// Public for the fuzz target (`fuzz/fuzz_targets/dashboard.rs`), which drives `update` as the terminal does.
pub mod input;
pub mod keymap;
pub mod modal;
pub mod qr;
pub mod request;
pub mod terminal;
pub mod theme;
pub mod view;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crossterm::event::EventStream;
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::app::{Action, App, Header};
use self::effects::Outside;
use self::keymap::Keymap;
use self::terminal::TerminalGuard;
use self::theme::Theme;
use crate::cli::DashboardArgs;
use crate::connection::{self, Failure};
use crate::sync::engine::{self, EngineHandle};

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(16);

pub async fn run(args: DashboardArgs) -> Result<(), Failure> {
    let mut connection = connection::connect(&args.connect, true).await?;
    let _log_guard = log_to_file(&connection.data_dir);
    let theme = Theme {
        qr: args.qr,
        ..Theme::from_env(connection.config.theme.as_deref()).map_err(Failure::usage)?
    };
    let keymap = Keymap::new(&connection.config.keys).map_err(Failure::usage)?;
    let read_only = args.read_only || connection.profile.as_ref().is_some_and(|(_, p)| p.read_only);
    let sandbox = connection.sandbox.is_some();
    let mut config = connection::engine_config(&connection, &args.sync, false)?;
    config.publish_customers = true;
    // The cache is drawn whatever the API's state: registration runs after the first frame,
    // and a refused key is shown in the header rather than ending the dashboard.
    config.register_before_start = false;
    config.stop_on_refused_key = false;
    if read_only {
        // Nothing writes: no inbox uploads, and no webhook endpoint registered (a receiver
        // runs only for an endpoint registered beforehand, given by its secret).
        config.inbox = None;
        config.receiver = config.receiver.filter(|r| r.secret.is_some());
    }
    match connection::serve_metrics(&connection, &args.sync).await {
        Ok(Some((metrics, bound))) => {
            tracing::info!("metrics at http://{bound}/metrics");
            config.metrics = Some(metrics);
        }
        Ok(None) => {}
        Err(failure) => {
            connection.shutdown().await;
            return Err(failure);
        }
    }
    let inbox = config.inbox.clone();
    // The demo plays the end users and reviewers: people outside the dashboard, with their
    // own client, never the engine's.
    let demo_client =
        crate::api::ApiClient::new(&config.api).map_err(|err| Failure::fatal(err.to_string()))?;
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
    let (handle, events, task) = engine.into_parts();

    let cancel = CancellationToken::new();
    let demo = sandbox && !args.no_demo && !read_only;
    let demo_on = Arc::new(AtomicBool::new(demo));
    if sandbox {
        let client = demo_client;
        let (cancel, inbox, engine, on) = (cancel.clone(), inbox.clone(), handle.clone(), demo_on.clone());
        tokio::spawn(async move {
            if demo {
                match demo::seed(&client).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!("seeded {n} demo customers");
                        // The seeding moved the sandbox's clock: sweep (and read the clock) now.
                        engine.refresh(None);
                    }
                    Err(err) => tracing::warn!("seeding the demo failed: {err}"),
                }
            }
            demo::drive(client, inbox, on, cancel).await;
        });
    }
    let header = Header {
        sandbox,
        profile: connection.profile.as_ref().map(|(name, _)| name.clone()),
        read_only,
        demo,
        ..Header::default()
    };
    let mouse = connection.config.mouse.unwrap_or(true);
    let result = ui(header, keymap, theme, mouse, &handle, events, &demo_on).await;
    cancel.cancel();
    handle.stop();
    let _ = task.await;
    connection.shutdown().await;
    result
}

/// Logs go to `kycdash.log` in the data directory, never to the screen.
fn log_to_file(data_dir: &std::path::Path) -> Option<()> {
    let path = data_dir.join("kycdash.log");
    crate::private::own_file(&path).ok()?;
    let file = std::fs::OpenOptions::new().append(true).open(path).ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .ok()?;
    crate::crash::log_is_a_file();
    Some(())
}

async fn ui(
    header: Header,
    keymap: Keymap,
    theme: Theme,
    mouse: bool,
    handle: &EngineHandle,
    mut events: mpsc::Receiver<engine::EngineEvent>,
    demo: &AtomicBool,
) -> Result<(), Failure> {
    // SIGTERM, SIGHUP (and SIGINT, which raw mode turns into a key otherwise) end the
    // dashboard as `q` does: the guard restores the terminal, the engine flushes and stops.
    // Installed before the first frame, so no signal finds the default handler.
    let signal = crate::connection::shutdown_signal();
    tokio::pin!(signal);
    let mut guard =
        TerminalGuard::enter(mouse).map_err(|e| Failure::fatal(format!("cannot use the terminal: {e}")))?;
    crate::crash::test_trigger();
    let mut app = App::new(header, OffsetDateTime::now_utc());
    app.mouse = mouse;
    let (actions_tx, mut actions) = mpsc::unbounded_channel::<Action>();
    let mut input = EventStream::new();
    let size = guard.terminal.size().unwrap_or_default();
    app.update(Action::Resize {
        table_rows: view::table_rows_for(size.width, size.height),
    });
    let mut hitboxes = view::Hitboxes::default();
    let mut dirty = true;
    let mut next_frame = tokio::time::Instant::now();
    let mut batch = Vec::with_capacity(1024);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let outside = Outside {
        handle,
        actions: actions_tx,
        selected: Arc::default(),
        demo,
    };

    while !app.quit {
        // Every update sees the time it happens at (log lines, "changed" columns).
        app.now = OffsetDateTime::now_utc();
        if dirty && tokio::time::Instant::now() >= next_frame {
            draw(&mut guard, &app, &keymap, &theme, &mut hitboxes)
                .map_err(|e| Failure::fatal(format!("cannot draw: {e}")))?;
            dirty = false;
            next_frame = tokio::time::Instant::now() + FRAME;
        }
        let ticking = app.needs_tick();
        let effects = tokio::select! {
            event = input.next() => match event {
                Some(Ok(event)) => {
                    dirty = true;
                    input::to_action(&event, &app, &keymap, &hitboxes).map_or_else(Vec::new, |a| app.update(a))
                }
                Some(Err(err)) => return Err(Failure::fatal(format!("reading the terminal failed: {err}"))),
                None => break,
            },
            count = events.recv_many(&mut batch, 4096) => {
                if count == 0 {
                    // The engine stopped; if it said why, the dashboard ends with that.
                    if let Some(error) = app.fatal.take() {
                        return Err(Failure::fatal(error));
                    }
                    break;
                }
                app.now = OffsetDateTime::now_utc();
                dirty = true;
                app.update(Action::Engine(std::mem::take(&mut batch)))
            }
            Some(action) = actions.recv() => {
                dirty = true;
                app.update(action)
            }
            _ = &mut signal => break,
            _ = tokio::time::sleep_until(next_frame), if dirty => Vec::new(),
            _ = ticker.tick(), if ticking => {
                dirty = true;
                app.update(Action::Tick(OffsetDateTime::now_utc()))
            }
        };
        for effect in effects {
            outside.perform(effect, &mut guard);
        }
    }
    Ok(())
}

fn draw(
    guard: &mut TerminalGuard,
    app: &App,
    keymap: &Keymap,
    theme: &Theme,
    hitboxes: &mut view::Hitboxes,
) -> std::io::Result<()> {
    crossterm::execute!(
        guard.terminal.backend_mut(),
        crossterm::terminal::BeginSynchronizedUpdate
    )?;
    let drawn = guard
        .terminal
        .draw(|frame| *hitboxes = view::draw(frame, app, keymap, theme))
        .map(|_| ());
    crossterm::execute!(
        guard.terminal.backend_mut(),
        crossterm::terminal::EndSynchronizedUpdate
    )?;
    drawn
}
