//! The real binary in a pseudo-terminal, as a person runs it: `kycdash` on a fresh data
//! directory shows the demo customers, filters, opens help, quits, and leaves the terminal
//! as it found it (alternate screen left, mouse capture and bracketed paste off).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use kycdash::tui::keymap::Keymap;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const PATIENCE: Duration = Duration::from_secs(30);

struct Screen {
    output: Arc<Mutex<Vec<u8>>>,
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// What a person sees now: the output so far run through a terminal emulator (frames are
    /// drawn as diffs, so the raw bytes rarely hold a whole line).
    fn visible(&self) -> String {
        let mut parser = vt100::Parser::new(40, 120, 0);
        parser.process(&self.output.lock().unwrap());
        parser.screen().contents()
    }

    fn wait_to_see(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.visible().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on screen within {PATIENCE:?}; the screen shows:\n{}",
                self.visible()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the output since `from` contains `needle`; returns where it ends.
    fn wait_for(&self, needle: &str, from: usize) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|t| t.find(needle)) {
                return from + at + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on screen within {PATIENCE:?}; the screen ended with {:?}",
                &text[text.len().saturating_sub(2000)..]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `kycdash` in a 120×40 pseudo-terminal on `dir`, with `args`.
struct Session {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    screen: Screen,
}

impl Session {
    fn start(dir: &std::path::Path, args: &[&str]) -> Session {
        Session::start_with(dir, args, &[])
    }

    /// `start` with more environment variables.
    fn start_with(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Session {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 40,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_kycdash"));
        command.arg("--data-dir");
        command.arg(dir);
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env("KYCDASH_CONFIG", dir.join("none.toml"));
        command.env_remove("KYCDASH_API_URL");
        command.env_remove("KYCDASH_API_KEY");
        command.env_remove("NO_COLOR");
        command.env_remove("RUST_BACKTRACE");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = pty.slave.spawn_command(command).unwrap();
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let keys = pty.master.take_writer().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Session {
            child,
            keys,
            screen: Screen { output },
        }
    }

    fn type_keys(&mut self, text: &str) {
        self.keys.write_all(text.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    fn wait_for_exit(&mut self) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "kycdash did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_dashboard_shows_the_demo_filters_helps_quits_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = Session::start(dir.path(), &[]);
    let screen = Screen {
        output: session.screen.output.clone(),
    };
    let mut type_keys = |text: &str| session.type_keys(text);

    // The alternate screen, then demo customers arriving from the embedded sandbox.
    screen.wait_for("\x1b[?1049h", 0);
    screen.wait_to_see("[SANDBOX]");
    screen.wait_to_see("Customers 30/30");
    screen.wait_to_see("Ada Lovelace");

    // Filter: only Hopper is left, and the filter shows in the tab line.
    type_keys("/Hopper\r");
    screen.wait_to_see("/Hopper");
    screen.wait_to_see("Customers 1/30");
    screen.wait_to_see("grace.hopper@example.com");

    // Help covers the table; any key (not only q) closes it, and the next key works again.
    type_keys("?");
    screen.wait_to_see("Any key closes this help");
    let title = "Customers 1/30 · sorted by Stage";
    assert!(
        !screen.visible().contains(title),
        "the help covers the table's title:\n{}",
        screen.visible()
    );
    type_keys("j");
    screen.wait_to_see(title);
    type_keys("s");
    screen.wait_to_see("Customers 1/30 · sorted by In stage");
    let at = screen.text().len();
    type_keys("q");

    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
    // The terminal is restored: the alternate screen is left after the last frame, and mouse
    // capture and bracketed paste are turned off.
    let restored = screen.wait_for("\x1b[?1049l", at);
    let tail = &screen.text()[at..restored];
    assert!(tail.contains("\x1b[?1000l"), "mouse capture left on");
    assert!(tail.contains("\x1b[?2004l"), "bracketed paste left on");
    let log = std::fs::metadata(dir.path().join("kycdash.log")).expect("logs go to the data directory");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        log.permissions().mode() & 0o777,
        0o600,
        "the log is this user's alone"
    );
}

/// SPEC §10: SIGTERM and SIGHUP end the dashboard as `q` does: exit 0, the alternate screen
/// left, mouse capture and bracketed paste off, the cursor shown.
#[test]
fn sigterm_and_sighup_leave_the_terminal_as_it_was() {
    for signal in ["TERM", "HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let mut session = Session::start(dir.path(), &["--no-demo"]);
        session.screen.wait_for("\x1b[?1049h", 0);
        session.screen.wait_to_see("[SANDBOX]");
        let at = session.screen.text().len();
        let pid = session.child.process_id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = session.wait_for_exit();
        assert!(status.success(), "SIG{signal}: exit status {status:?}");
        let restored = session.screen.wait_for("\x1b[?1049l", at);
        let tail = &session.screen.text()[at..restored];
        assert!(tail.contains("\x1b[?1000l"), "SIG{signal}: mouse capture left on");
        assert!(
            tail.contains("\x1b[?2004l"),
            "SIG{signal}: bracketed paste left on"
        );
        assert!(
            session.screen.text()[at..].contains("\x1b[?25h"),
            "SIG{signal}: the cursor is not shown again"
        );
    }
}

/// SPEC §10: a panic anywhere, in a tokio task or in a thread (`KYCDASH_TEST_PANIC`, the debug
/// build's trigger), ends the dashboard with exit 1: the terminal restored (alternate screen
/// left, mouse capture and bracketed paste off, the cursor shown, raw mode off), then one line.
#[test]
fn a_panic_anywhere_restores_the_terminal_and_exits_1_with_one_line() {
    for place in ["task", "thread"] {
        let dir = tempfile::tempdir().unwrap();
        let mut session = Session::start_with(dir.path(), &["--no-demo"], &[("KYCDASH_TEST_PANIC", place)]);
        let entered = session.screen.wait_for("\x1b[?1049h", 0);
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = session.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{place}: the dashboard still runs after the panic; the screen shows:\n{}",
                session.screen.visible()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.exit_code(), 1, "{place}: {status:?}");
        let line = format!("kycdash: internal error: KYCDASH_TEST_PANIC: a {place} panicked at src/");
        let end = session.screen.wait_for(&line, entered);
        let text = session.screen.text();
        let restored = text[entered..]
            .find("\x1b[?1049l")
            .map(|at| entered + at)
            .unwrap_or_else(|| panic!("{place}: the alternate screen is not left"));
        let tail = &text[restored..end];
        assert!(
            tail.contains("\x1b[?25h"),
            "{place}: the cursor is not shown again before the line"
        );
        let before = &text[entered..restored];
        assert!(before.contains("\x1b[?1000l"), "{place}: mouse capture left on");
        assert!(before.contains("\x1b[?2004l"), "{place}: bracketed paste left on");
        // Raw mode off: the terminal turns the line's \n into \r\n again.
        let line_end = &text[end..];
        let newline = line_end.find('\n').expect("the line ends");
        assert!(
            line_end[..newline].ends_with('\r'),
            "{place}: raw mode left on (no \\r before \\n): {line_end:?}"
        );
        assert_eq!(
            text.matches("kycdash: internal error").count(),
            1,
            "{place}: one line"
        );
        assert!(!text.contains("' panicked at"), "{place}: Rust's own report");
        // The whole report is in the log.
        let log = std::fs::read_to_string(dir.path().join("kycdash.log")).unwrap();
        assert!(
            log.contains(&format!("KYCDASH_TEST_PANIC: a {place} panicked")),
            "{place}: {log}"
        );
    }
}

/// The journey of SPEC §9's actions, from the keyboard alone: create a customer with `n`,
/// start KYC with `K`, complete the SDK with `S`, upload two documents with `u`, move the
/// clock with `+`, and see the row approved.
#[test]
fn a_customer_goes_from_creation_to_approval_from_the_keyboard() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let pdf = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/statement.pdf")).unwrap();
    std::fs::write(docs.join("statement.pdf"), &pdf).unwrap();
    // Another file with the same bytes would be the same document: make it differ.
    let mut w9 = pdf.clone();
    w9.extend_from_slice(b"\n% W-9\n");
    std::fs::write(docs.join("w9.pdf"), &w9).unwrap();

    let mut session = Session::start(dir.path(), &["--no-demo"]);
    session.screen.wait_to_see("[SANDBOX]");

    // n: the form, field by field (Tab moves on; empty fields are left out).
    session.type_keys("n");
    session.screen.wait_to_see("New customer");
    let fields = [
        "ada.journey@example.com",
        "crm-journey",
        "203.0.113.7",
        "Ada",
        "Journey",
        "1990-04-12",
        "X1234567",
        "us",
        "15",
        "1 Main Street",
        "",
        "Springfield",
        "",
        "12345",
        "US",
    ];
    for value in fields {
        session.type_keys(value);
        session.type_keys("\t");
    }
    session.type_keys("\r");
    session.screen.wait_to_see("created Ada Journey");
    session.screen.wait_to_see("ready_to_start");

    // K: asked first, then the SDK link.
    session.type_keys("K");
    session.screen.wait_to_see("Start KYC for Ada Journey?");
    session.type_keys("y");
    session.screen.wait_to_see("Hand the end user this link");
    // Enter closes it (a lone Esc followed at once by a key reads as Alt and that key).
    session.type_keys("\r");
    session.screen.wait_to_see("awaiting_sdk");

    // S: the end user finishes the SDK.
    session.type_keys("S");
    session.screen.wait_to_see("Simulate for Ada Journey");
    session.type_keys("1");
    session.screen.wait_to_see("collecting_requirements");

    // u, twice: from the inbox up to the data directory, into docs/, a file, its type.
    for (file, document_type) in [("statement.pdf", "SOURCE_OF_FUNDS"), ("w9.pdf", "W9")] {
        session.type_keys("u");
        session.screen.wait_to_see("Choose a file to upload");
        if !session.screen.visible().contains("statement.pdf") {
            // The first time it starts in the inbox.
            session.type_keys("\x7f");
            session.screen.wait_to_see("docs/");
            session.type_keys("\r");
        }
        session.screen.wait_to_see(file);
        if file == "w9.pdf" {
            session.type_keys("j");
        }
        session.type_keys("\r");
        session
            .screen
            .wait_to_see(&format!("Upload {file} for Ada Journey as"));
        // Pick the type by its number on screen.
        let screen = session.screen.visible();
        let line = screen
            .lines()
            .find(|l| l.contains(&format!(" {document_type} ")) || l.trim_end().ends_with(document_type))
            .unwrap_or_else(|| panic!("no {document_type} in the chooser:\n{screen}"));
        let number = line
            .split_whitespace()
            .find_map(|w| w.chars().next().filter(|c| c.is_ascii_digit() && w.len() == 1))
            .unwrap_or_else(|| panic!("no number on {line:?}"));
        session.type_keys(&number.to_string());
        session.screen.wait_to_see(&format!(
            "uploading {file} as {document_type} for Ada Journey: done"
        ));
    }
    session.screen.wait_to_see("awaiting_decision");

    // +: two seconds on the sandbox clock, and the decision is made.
    session.type_keys("+");
    session.screen.wait_to_see("Advance the sandbox clock");
    session.type_keys("1");
    session.screen.wait_to_see("✔ approved");

    session.type_keys("q");
    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
}

/// `--read-only` writes nothing, from the keyboard or behind it: no demo, no inbox, no webhook
/// endpoint registered (the webhooks view shows none), and every write key says why.
#[test]
fn read_only_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = Session::start(dir.path(), &["--read-only"]);
    session.screen.wait_to_see("[READ-ONLY]");
    session.screen.wait_to_see("demo off");
    // The engine has said where it runs (and which inbox, if any): the API's URL is shown.
    session.screen.wait_to_see("http://127.0.0.1:");
    // Read before any dialog covers the header.
    let screen = session.screen.visible();
    let lines: Vec<&str> = screen.lines().collect();
    // The header's second line ends with the demo's state: no inbox follows it.
    assert!(
        lines[1].trim_end().ends_with("demo off"),
        "no inbox is watched:\n{screen}"
    );
    // The hint bar is exactly the hints of what does not write.
    let hints: String = Keymap::default()
        .hints(|command| !command.writes())
        .into_iter()
        .map(|(key, hint)| format!(" {key} {hint} "))
        .collect();
    let hints: String = hints.chars().take(120).collect();
    assert_eq!(
        lines.last().map(|l| l.trim_end()),
        Some(hints.trim_end()),
        "the hint bar shows only what can be used:\n{screen}"
    );
    session.type_keys("n");
    session
        .screen
        .wait_to_see("read-only: actions that write are disabled");
    session.type_keys("w");
    session.screen.wait_to_see("No webhook endpoints are registered.");
    session.type_keys("q");
    std::thread::sleep(Duration::from_millis(200));
    session.type_keys("q");
    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
    assert!(!dir.path().join("inbox").exists(), "no inbox was even made");
}

/// A loopback port nothing listens on (yet).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// SPEC §10, offline first: started with the API down, the dashboard draws what its cache
/// holds and says the API is unreachable; once a sandbox answers on that address, the header
/// says connected and the rows follow the API, with no key pressed.
#[test]
fn started_with_the_api_down_it_shows_the_cache_then_reconnects_by_itself() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let config = kycdash::sandbox::SandboxConfig {
        listen: ([127, 0, 0, 1], port).into(),
        db: kycdash::sandbox::DbLocation::File(dir.path().join("sandbox.db")),
        ..support::config()
    };
    // A cache filled from the API, then the API gone.
    let (sandbox, customers) = runtime.block_on(async {
        let sandbox = kycdash::sandbox::start(config.clone()).await.unwrap();
        let client = support::client(&sandbox, Some(support::KEY));
        let mut customers = Vec::new();
        for name in ["Lovelace", "Hopper"] {
            customers.push(client.create_customer(support::full_profile(name)).await);
        }
        (sandbox, customers)
    });
    let filled = std::process::Command::new(env!("CARGO_BIN_EXE_kycdash"))
        .args([
            "watch",
            "--once",
            "--api-url",
            &url,
            "--api-key",
            support::KEY,
            "--data-dir",
        ])
        .arg(&data)
        .env("KYCDASH_CONFIG", dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(
        filled.status.success(),
        "{}",
        String::from_utf8_lossy(&filled.stderr)
    );
    runtime.block_on(sandbox.shutdown());

    let mut session = Session::start(&data, &["--api-url", &url, "--api-key", support::KEY]);
    session.screen.wait_to_see("unreachable since");
    session.screen.wait_to_see("Customers 2/2");
    session.screen.wait_to_see("Lovelace");
    session.screen.wait_to_see("Hopper");
    assert!(
        session.screen.visible().contains("ready_to_start"),
        "the cached stages are shown:\n{}",
        session.screen.visible()
    );

    // The API comes back on the same address, and one customer moves meanwhile.
    let sandbox = runtime.block_on(async {
        let sandbox = kycdash::sandbox::start(config).await.unwrap();
        let client = support::client(&sandbox, Some(support::KEY));
        client.start_kyc(customers[0]).await.assert_status(201);
        sandbox
    });
    session.screen.wait_to_see("● connected");
    session.screen.wait_to_see("awaiting_sdk");
    // The webhook registration is tried again at once, and the receiver runs.
    session.screen.wait_to_see("/webhooks · no event yet");
    let screen = session.screen.visible();
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        !header.contains("unreachable"),
        "the header no longer says unreachable:\n{screen}"
    );
    // SPEC §11: `x` exports the rows shown to <data-dir>/exports and says where.
    session.type_keys("x");
    session.screen.wait_to_see("exported 2 customers to");
    let exports: Vec<_> = std::fs::read_dir(data.join("exports"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    let csv = std::fs::read_to_string(&exports[0]).unwrap();
    assert!(csv.starts_with("customerId,externalId,stage,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "a header and the two rows:\n{csv}");
    for customer in &customers {
        assert!(csv.contains(&customer.to_string()), "{csv}");
    }
    session.type_keys("q");
    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
    runtime.block_on(sandbox.shutdown());
}

/// SPEC §10, secrets at rest: against an API, with every log at trace level, a customer's
/// flow seen through signed webhooks puts neither the API key nor the webhook secret on the
/// screen or in `kycdash.log` (tests/trace_logs.rs does the same for `watch` and the sandbox).
#[test]
fn trace_logs_and_the_screen_show_no_key_and_no_secret() {
    const KEY: &str = "sk_test_dashboardtrace_7c41e9a2";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sandbox = runtime
        .block_on(kycdash::sandbox::start(kycdash::sandbox::SandboxConfig {
            api_keys: vec![KEY.parse().unwrap()],
            ..kycdash::sandbox::SandboxConfig::ephemeral()
        }))
        .unwrap();
    let api = sandbox.base_url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut session = Session::start_with(
        dir.path(),
        &["--api-url", &api, "--api-key", KEY],
        &[("RUST_LOG", "trace")],
    );
    session.screen.wait_to_see("/webhooks · no event yet");

    let profile = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/full_profile.json"
    ))
    .unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let post = |path: &str, body: serde_json::Value| {
            http.post(format!("{api}{path}"))
                .bearer_auth(KEY)
                .json(&body)
                .send()
        };
        let created: serde_json::Value = post("/v1/customers", serde_json::from_str(&profile).unwrap())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap();
        let started = post("/v1/compliance/kyc", serde_json::json!({"customerId": id}))
            .await
            .unwrap();
        assert_eq!(started.status(), 201);
        let path = format!("/v1/sandbox/customers/{id}/simulate");
        let simulated = post(&path, serde_json::json!({"action": "SDK_COMPLETE"}))
            .await
            .unwrap();
        assert_eq!(simulated.status(), 200);
    });
    session.screen.wait_to_see("collecting_requirements");
    session.screen.wait_to_see("last event");
    session.type_keys("q");
    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
    runtime.block_on(sandbox.shutdown());

    let secret: String = rusqlite::Connection::open(dir.path().join("cache.db"))
        .unwrap()
        .query_row(
            "SELECT value FROM settings WHERE key = 'webhook.secret'",
            [],
            |r| r.get(0),
        )
        .expect("the registered endpoint's secret is in the cache");
    let material = secret.strip_prefix("whsec_").expect("a whsec_ secret");
    let log = std::fs::read_to_string(dir.path().join("kycdash.log")).unwrap();
    assert!(log.contains(" TRACE "), "trace level was on:\n{log}");
    for (name, text) in [("log", log), ("screen", session.screen.text())] {
        assert!(!text.contains(KEY), "the API key is in the {name}:\n{text}");
        assert!(
            !text.contains(material),
            "the webhook secret is in the {name}:\n{text}"
        );
    }
}

/// SPEC §11, marks: three of five customers marked (two with expired onboardings), `r`
/// confirms naming the two reruns and the one skipped with its reason, and exactly the two
/// expired onboardings are rerun in the sandbox (each has a new onboarding).
#[test]
fn marked_customers_are_rerun_together_and_the_rest_skipped_with_a_reason() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sandbox, client) = runtime.block_on(async {
        let sandbox = kycdash::sandbox::start(support::config()).await.unwrap();
        let client = support::client(&sandbox, Some(support::KEY));
        (sandbox, client)
    });
    let onboarding = |customer| {
        let status = runtime.block_on(client.status(customer));
        status["onboardingId"].as_str().map(String::from)
    };
    let (expired, others) = runtime.block_on(async {
        let mut expired = Vec::new();
        for last in ["EXPIRE", "EXPIRE"] {
            let id = client.create_customer(support::full_profile(last)).await;
            client.start_kyc(id).await.assert_status(201);
            expired.push(id);
        }
        let mut others = Vec::new();
        for last in ["Hopper", "Turing", "Liskov"] {
            others.push(client.create_customer(support::full_profile(last)).await);
        }
        (expired, others)
    });
    let before: Vec<Option<String>> = expired.iter().map(|id| onboarding(*id)).collect();
    assert!(before.iter().all(Option::is_some));

    let dir = tempfile::tempdir().unwrap();
    let url = sandbox.base_url().to_string();
    let mut session = Session::start(dir.path(), &["--api-url", &url, "--api-key", support::KEY]);
    session.screen.wait_to_see("Customers 5/5");
    session.screen.wait_to_see("expired");
    // The two expired ones: filter, mark what is shown, clear the filter (marks stay).
    session.type_keys("/EXPIRE\r");
    session.screen.wait_to_see("Customers 2/5");
    session.type_keys("*");
    session.screen.wait_to_see("2 marked");
    session.type_keys("\x1b");
    session.screen.wait_to_see("Customers 5/5 · 2 marked");
    // And Hopper, who has nothing to rerun.
    session.type_keys("/Hopper\r");
    session.screen.wait_to_see("Customers 1/5 · 2 marked");
    session.type_keys(" ");
    session.screen.wait_to_see("3 marked");
    session.type_keys("\x1b");
    session.screen.wait_to_see("Customers 5/5 · 3 marked");

    session.type_keys("r");
    session.screen.wait_to_see("Rerun KYC for 2 marked customers?");
    session
        .screen
        .wait_to_see("Skipped 1: Ada Hopper (ready_to_start, not expired).");
    session.type_keys("y");
    session.screen.wait_to_see("rerunning KYC: done for all 2");

    for (customer, old) in expired.iter().zip(&before) {
        let new = onboarding(*customer);
        assert!(
            new.is_some() && new != *old,
            "{customer} has a new onboarding: {old:?} → {new:?}"
        );
    }
    for customer in &others {
        assert_eq!(onboarding(*customer), None, "{customer} was not started");
    }
    session.type_keys("q");
    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
    runtime.block_on(sandbox.shutdown());
}

/// SPEC §11: the dashboard serves Prometheus metrics too, where a profile's `metrics_listen`
/// (or `--metrics-listen`) says, while it runs.
#[test]
fn the_dashboard_serves_metrics_where_its_profile_says() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    std::fs::write(
        dir.path().join("none.toml"),
        format!("[profiles.watched]\nmetrics_listen = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut session = Session::start(dir.path(), &["--profile", "watched", "--no-demo"]);
    session.screen.wait_to_see("● connected");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let text = runtime.block_on(async {
        let url = format!("http://127.0.0.1:{port}/metrics");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(answer) = reqwest::get(&url).await
                && answer.status() == 200
            {
                let text = answer.text().await.unwrap();
                if text.contains("kycdash_api_reachable 1") {
                    return text;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no metrics at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(text.contains("kycdash_customers{"), "{text}");
    session.type_keys("q");
    let status = session.wait_for_exit();
    assert!(status.success(), "exit status {status:?}");
}
