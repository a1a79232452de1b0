//! The real binary in a pseudo-terminal, as a person runs it: `kycdash` on a fresh data
//! directory shows the demo customers, filters, opens help, quits, and leaves the terminal
//! as it found it (alternate screen left, mouse capture and bracketed paste off).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[test]
fn the_dashboard_shows_the_demo_filters_helps_quits_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
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
    command.arg(dir.path());
    command.env("TERM", "xterm-256color");
    command.env("KYCDASH_CONFIG", dir.path().join("none.toml"));
    command.env_remove("KYCDASH_API_URL");
    command.env_remove("KYCDASH_API_KEY");
    command.env_remove("NO_COLOR");
    let mut child = pty.slave.spawn_command(command).unwrap();
    drop(pty.slave);
    let mut reader = pty.master.try_clone_reader().unwrap();
    let mut keys = pty.master.take_writer().unwrap();
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
    let screen = Screen { output };
    let mut type_keys = |text: &str| {
        keys.write_all(text.as_bytes()).unwrap();
        keys.flush().unwrap();
    };

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

    // Help, then any key closes it.
    type_keys("?");
    screen.wait_to_see("Any key closes this help");
    let at = screen.text().len();
    type_keys("q");
    std::thread::sleep(Duration::from_millis(300));
    type_keys("q");

    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "kycdash did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    // The terminal is restored: the alternate screen is left after the last frame, and mouse
    // capture and bracketed paste are turned off.
    let restored = screen.wait_for("\x1b[?1049l", at);
    let tail = &screen.text()[at..restored];
    assert!(tail.contains("\x1b[?1000l"), "mouse capture left on");
    assert!(tail.contains("\x1b[?2004l"), "bracketed paste left on");
    assert!(
        dir.path().join("kycdash.log").exists(),
        "logs go to the data directory"
    );
}
