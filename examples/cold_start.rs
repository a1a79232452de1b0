//! Cold start of the dashboard on a warm cache, as `kycdash` does it up to the first frame:
//! the engine opens the cache and restores its model, every customer reaches the table, one
//! frame (200×50) is drawn. Repeated, because these machines are noisy. No API is contacted
//! (no receiver to register, and the first sweep is not awaited), so this is the part of a
//! start that does not depend on the network.
//!
//! `cargo run --release --example cold_start DATA_DIR [RUNS]` on a data directory a
//! dashboard or `dashboard_bench` filled (its cache must come from the embedded sandbox).

use std::time::Instant;

use kycdash::api::ClientConfig;
use kycdash::sync::engine::{self, EngineConfig, EngineEvent, EngineTiming};
use kycdash::tui::app::{Action, App, Header};
use kycdash::tui::keymap::Keymap;
use kycdash::tui::theme::{Theme, ThemeName};
use kycdash::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use time::OffsetDateTime;

/// As the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("DATA_DIR"));
    let runs: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(6);
    let mut totals = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let lock = engine::lock_data_dir(&dir).expect("the data directory is free");
        let config = EngineConfig {
            // Nothing listens on the discard port: the sweep fails quietly, after the frame.
            api: ClientConfig::new("http://127.0.0.1:9", kycdash::sandbox::DEFAULT_API_KEY),
            sandbox: true,
            data_dir: dir.clone(),
            inbox: None,
            receiver: None,
            concurrency: 8,
            once: false,
            publish_customers: true,
            stop_on_refused_key: true,
            register_before_start: true,
            retain: std::time::Duration::from_secs(90 * 86_400),
            timing: EngineTiming::default(),
            metrics: None,
        };
        let (handle, mut events, task) = engine::start(config, lock)
            .await
            .expect("the engine starts")
            .into_parts();
        let engine_started = started.elapsed();
        let mut app = App::new(Header::default(), OffsetDateTime::now_utc());
        app.update(Action::Resize {
            table_rows: view::table_rows_for(200, 50),
        });
        loop {
            let event = events.recv().await.expect("the engine's events");
            let loaded = matches!(&event, EngineEvent::Customers(states) if states.len() > 1);
            app.update(Action::Engine(vec![event]));
            if loaded {
                break;
            }
        }
        let in_table = started.elapsed();
        let mut terminal = Terminal::new(TestBackend::new(200, 50)).expect("a test backend");
        terminal
            .draw(|frame| {
                view::draw(frame, &app, &Keymap::default(), &Theme::new(ThemeName::Dark));
            })
            .expect("a frame");
        let total = started.elapsed();
        println!(
            "{} customers: engine::start {} ms, in the table {} ms, first frame {} ms",
            app.table.rows.len(),
            engine_started.as_millis(),
            in_table.as_millis(),
            total.as_millis()
        );
        totals.push(total.as_millis());
        handle.stop();
        while events.recv().await.is_some() {}
        task.await.expect("the engine stops");
    }
    totals.sort();
    println!(
        "first frame: min {} ms, median {} ms, max {} ms",
        totals[0],
        totals[totals.len() / 2],
        totals[totals.len() - 1]
    );
}
