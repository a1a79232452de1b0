//! The dashboard (SPEC §9): `kycdash` with no subcommand. It sees the API only through the
//! sync engine; the engine's events arrive on a channel and are applied in batches. It draws
//! only when something changed, at most one frame per ~16 ms, each frame in synchronized
//! output; idle, nothing wakes it but a once-a-second countdown while one is on screen.

pub mod app;
pub mod demo;
pub mod form;
pub mod keymap;
pub mod modal;
pub mod qr;
pub mod terminal;
pub mod theme;
pub mod view;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, MouseButton, MouseEventKind};
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::app::{Action, App, Details, Effect, Header, LogLine};
use self::keymap::Keymap;
use self::modal::{Done, Failed, Request};
use self::terminal::TerminalGuard;
use self::theme::Theme;
use crate::cli::DashboardArgs;
use crate::headless::{self, Failure};
use crate::sync::engine::{self, EngineHandle};

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(16);

pub async fn run(args: DashboardArgs) -> Result<(), Failure> {
    let mut connection = headless::connect(&args.connect, true).await?;
    let _log_guard = log_to_file(&connection.data_dir);
    let theme = Theme {
        qr: args.qr,
        ..Theme::from_env(connection.config.theme.as_deref()).map_err(Failure::usage)?
    };
    let keymap = Keymap::new(&connection.config.keys).map_err(Failure::usage)?;
    let read_only = args.read_only || connection.profile.as_ref().is_some_and(|(_, p)| p.read_only);
    let sandbox = connection.sandbox.is_some();
    let mut config = headless::engine_config(&connection, &args.sync, false);
    config.publish_customers = true;
    if read_only {
        // Nothing writes: no inbox uploads, and no webhook endpoint registered (a receiver
        // runs only for an endpoint registered beforehand, given by its secret).
        config.inbox = None;
        config.receiver = config.receiver.filter(|r| r.secret.is_some());
    }
    let inbox = config.inbox.clone();
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
        let client = handle.client().clone();
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
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("kycdash.log"))
        .ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .ok()
}

async fn ui(
    header: Header,
    keymap: Keymap,
    theme: Theme,
    mouse: bool,
    handle: &EngineHandle,
    mut events: mpsc::UnboundedReceiver<engine::EngineEvent>,
    demo: &AtomicBool,
) -> Result<(), Failure> {
    let mut guard =
        TerminalGuard::enter(mouse).map_err(|e| Failure::fatal(format!("cannot use the terminal: {e}")))?;
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
    // Which customer's details were asked for last (documents are read only for that one).
    let selected = Arc::new(std::sync::Mutex::new(None));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

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
                    match to_action(&event, &mut app, &keymap, &hitboxes) {
                        Some(action) => app.update(action),
                        None => Vec::new(),
                    }
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
            _ = tokio::time::sleep_until(next_frame), if dirty => Vec::new(),
            _ = ticker.tick(), if ticking => {
                dirty = true;
                app.update(Action::Tick(OffsetDateTime::now_utc()))
            }
        };
        for effect in effects {
            if let Effect::Demo(on) = effect {
                demo.store(on, Ordering::Relaxed);
            }
            perform(effect, handle, &mut guard, &actions_tx, &selected);
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

/// A terminal event as an action, given what is on screen.
pub fn to_action(event: &Event, app: &mut App, keymap: &Keymap, hitboxes: &view::Hitboxes) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if app.editing_filter {
                return match key.code {
                    KeyCode::Enter => {
                        app.finish_filter(true);
                        None
                    }
                    KeyCode::Esc => {
                        app.finish_filter(false);
                        None
                    }
                    KeyCode::Backspace => Some(Action::FilterBackspace),
                    KeyCode::Char(c) if !key.modifiers.contains(crossterm::event::KeyModifiers::CONTROL) => {
                        Some(Action::FilterInput(c))
                    }
                    _ => None,
                };
            }
            if app.modal.is_some() {
                use self::modal::ModalKey;
                let ctrl = key.modifiers.contains(crossterm::event::KeyModifiers::CONTROL);
                return match key.code {
                    KeyCode::Char('c') if ctrl => Some(Action::Key(keymap::Command::Quit)),
                    KeyCode::Up => Some(Action::ModalKey(ModalKey::Up)),
                    KeyCode::Down => Some(Action::ModalKey(ModalKey::Down)),
                    KeyCode::Enter => Some(Action::ModalKey(ModalKey::Enter)),
                    KeyCode::Esc => Some(Action::ModalKey(ModalKey::Esc)),
                    KeyCode::Left => Some(Action::ModalKey(ModalKey::Left)),
                    KeyCode::Right => Some(Action::ModalKey(ModalKey::Right)),
                    KeyCode::Backspace => Some(Action::ModalKey(ModalKey::Backspace)),
                    KeyCode::Delete => Some(Action::ModalKey(ModalKey::Delete)),
                    KeyCode::Home => Some(Action::ModalKey(ModalKey::Home)),
                    KeyCode::End => Some(Action::ModalKey(ModalKey::End)),
                    KeyCode::Tab => Some(Action::ModalKey(ModalKey::Tab)),
                    KeyCode::BackTab => Some(Action::ModalKey(ModalKey::BackTab)),
                    KeyCode::Char(c) if !ctrl => Some(Action::ModalKey(ModalKey::Char(c))),
                    _ => None,
                };
            }
            keymap.command(key).map(Action::Key)
        }
        Event::Paste(text) if app.editing_filter => {
            for c in text.chars().filter(|c| !c.is_control()) {
                app.update(Action::FilterInput(c));
            }
            None
        }
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

/// Reads a file to upload and checks it as the API will (size, format for the type), so a
/// file the API would refuse is not sent.
async fn read_document(
    path: &std::path::Path,
    document_type: crate::domain::DocumentType,
) -> Result<Vec<u8>, String> {
    let path = path.to_path_buf();
    let display = path.display().to_string();
    let content = tokio::task::spawn_blocking(move || {
        let size = std::fs::metadata(&path)?.len();
        if let Err(refused) = crate::domain::check_size(size) {
            return Ok(Err(format!("{display}: {refused}")));
        }
        std::fs::read(&path).map(Ok)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("cannot read the file: {e}"))??;
    document_type.check_content(&content).map_err(|e| e.to_string())?;
    Ok(content)
}

/// Asks the engine for a request; errors in the words of the API's problem details.
async fn send(handle: &EngineHandle, request: &Request) -> Result<Done, Failed> {
    let sdk = |started: crate::api::types::KycStarted| Done::Started {
        sdk: started.sdk.map(|s| crate::domain::SdkLink {
            link: s.link,
            expires_at: s.expires_at,
        }),
    };
    match request {
        Request::StartKyc { customer, .. } => handle.start_kyc(*customer).await.map(sdk),
        Request::Rerun { customer, .. } => {
            // The onboarding to rerun is the one the API has now, not what the cache says.
            let status = handle.client().status(*customer).await?;
            let Some(onboarding) = status.onboarding_id else {
                return Err(Failed::new(
                    "this customer has no onboarding to rerun yet; start KYC with K",
                ));
            };
            handle.rerun_kyc(*customer, onboarding).await.map(sdk)
        }
        Request::Simulate { customer, action, .. } => handle
            .simulate(*customer, *action)
            .await
            .map(|()| Done::Simulated),
        Request::Upload {
            customer,
            path,
            document_type,
            ..
        } => {
            let content = read_document(path, *document_type).await.map_err(Failed::new)?;
            let file_name = path
                .file_name()
                .map_or_else(|| "document".to_string(), |n| n.to_string_lossy().into_owned());
            handle
                .upload(*customer, *document_type, &file_name, &content)
                .await
                .map(|duplicate| Done::Uploaded { duplicate })
        }
        Request::AdvanceClock { seconds } => handle
            .advance_clock(*seconds)
            .await
            .map(|clock| Done::ClockAdvanced { now: clock.now }),
        Request::Resend {
            endpoint, delivery, ..
        } => handle
            .client()
            .resend(*endpoint, *delivery)
            .await
            .map(|_| Done::Resent),
        Request::Create { profile } => handle.create_customer(profile).await.map(|c| Done::Saved {
            customer: c.id,
            name: c.display_name(),
        }),
        Request::Patch { customer, patch, .. } => {
            handle
                .patch_customer(*customer, patch)
                .await
                .map(|c| Done::Saved {
                    customer: c.id,
                    name: c.display_name(),
                })
        }
    }
    .map_err(Failed::from)
}

fn perform(
    effect: Effect,
    handle: &EngineHandle,
    guard: &mut TerminalGuard,
    actions: &mpsc::UnboundedSender<Action>,
    selected: &Arc<std::sync::Mutex<Option<Uuid>>>,
) {
    match effect {
        Effect::Refresh(id) => handle.refresh(id),
        Effect::Pause(paused) => handle.pause(paused),
        Effect::LoadDetails(id, expected) => {
            let (handle, actions) = (handle.clone(), actions.clone());
            *selected.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
            let selected = selected.clone();
            tokio::spawn(async move {
                // The row may be ahead of the cache by one batch: read until they agree.
                let mut cached = (None, None);
                for _ in 0..20 {
                    cached = handle.cached(id).await.unwrap_or_else(|err| {
                        tracing::error!("cannot read {id} from the cache: {err}");
                        (None, None)
                    });
                    let hash = cached
                        .1
                        .as_ref()
                        .and_then(|s| crate::sync::cache::StatusSummary::of(s).ok())
                        .map(|(summary, _)| summary.hash);
                    if expected.is_none() || hash == expected {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                let history = handle
                    .timeline(id, 50)
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(at, kind, text)| LogLine {
                        at,
                        customer: Some(id),
                        text: if kind == "webhook" {
                            format!("webhook {text}")
                        } else {
                            text
                        },
                        alert: kind == "alert",
                    })
                    .collect();
                let (customer, status) = cached;
                let details = Details {
                    id,
                    customer,
                    status,
                    history,
                    documents: None,
                };
                if actions.send(Action::Details(Box::new(details))).is_err() {
                    return;
                }
                // Documents are an API read: only for a selection that stays a moment, not
                // for every row the cursor passes.
                tokio::time::sleep(Duration::from_millis(250)).await;
                if *selected.lock().unwrap_or_else(|e| e.into_inner()) != Some(id) {
                    return;
                }
                let documents = match handle.client().documents(id).await {
                    Ok(list) => Ok(list.data),
                    Err(err) => Err(err.to_string()),
                };
                let _ = actions.send(Action::Documents(id, documents));
            });
        }
        Effect::Copy(text) => {
            // OSC 52: the terminal puts it on the clipboard, over SSH and tmux too.
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            let backend = guard.terminal.backend_mut();
            let _ = write!(backend, "\x1b]52;c;{encoded}\x07");
            let _ = backend.flush();
        }
        Effect::Send(request) => {
            let (handle, actions) = (handle.clone(), actions.clone());
            tokio::spawn(async move {
                let result = send(&handle, &request).await;
                let _ = actions.send(Action::Done { request, result });
            });
        }
        Effect::LoadWebhooks => {
            let (handle, actions) = (handle.clone(), actions.clone());
            tokio::spawn(async move {
                let endpoints = handle.client().webhooks().await.map(|l| l.data);
                let _ = actions.send(Action::WebhooksLoaded(endpoints.map_err(|e| e.to_string())));
            });
        }
        Effect::LoadDeliveries(endpoint) => {
            let (handle, actions) = (handle.clone(), actions.clone());
            tokio::spawn(async move {
                let deliveries = handle.client().deliveries(endpoint).await.map(|l| l.data);
                let _ = actions.send(Action::DeliveriesLoaded(
                    endpoint,
                    deliveries.map_err(|e| e.to_string()),
                ));
            });
        }
        Effect::ListDir(dir) => {
            let actions = actions.clone();
            tokio::task::spawn_blocking(move || {
                let entries = self::modal::list_folder(&dir);
                let _ = actions.send(Action::Listed(dir, entries));
            });
        }
        Effect::Mouse(on) => {
            let _ = guard.set_mouse(on);
        }
        Effect::Demo(_) | Effect::Quit => {}
    }
}
