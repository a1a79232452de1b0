//! A compiled sender of signed webhooks, for `benches/crash_watch.py` (c): POSTs Standard
//! Webhooks (`CUSTOMER_UPDATED` events, signed with the receiver's secret) to a running
//! receiver at a target rate, over N kept-alive connections, for a bounded time.
//!
//! Every event id answered 2xx is appended to `--ok-file` as soon as its answer arrives, one
//! line per id in a single `write` (no buffering), so the file holds every id the receiver
//! acknowledged even while this process runs or if it dies. A connection's worker stops at its
//! first transport error (the receiver was killed) or at the end of `--seconds`; the answers
//! other than 2xx are counted and sending goes on. At the end one JSON line goes to stdout:
//! `{"sent":…,"ok":…,"counts":{"200":…,"503":…,"error":…},"seconds":…}`.
//!
//! `cargo run --release --example webhook_send -- --url URL --secret whsec_… \
//!      --customers FILE --ok-file FILE [--rate 2000] [--seconds 10] [--connections 16]
//!      [--prefix TAG]`

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use standardwebhooks::Webhook;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
#[command(about = "POSTs signed CUSTOMER_UPDATED webhooks to a receiver at a target rate")]
struct Args {
    /// The receiver's URL (`http://127.0.0.1:PORT/webhooks`).
    #[arg(long)]
    url: String,
    /// The receiver's `whsec_…` signing secret.
    #[arg(long)]
    secret: String,
    /// A file of customer ids, one a line; each event names one of them.
    #[arg(long)]
    customers: PathBuf,
    /// Where each event id answered 2xx is appended, one a line, as it is answered.
    #[arg(long)]
    ok_file: PathBuf,
    /// Events a second over all connections (0: as fast as the receiver answers).
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Nothing is sent after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Event ids are `evt_<prefix>_<n>`; also seeds the choice of customers.
    #[arg(long, default_value = "send")]
    prefix: String,
}

/// What the workers share.
struct Shared {
    url: String,
    signer: Webhook,
    customers: Vec<String>,
    prefix: String,
    seed: u64,
    next: AtomicU64,
    start: Instant,
    end: Instant,
    /// Seconds between two events' due times (0: no pacing).
    interval: f64,
    ok_file: Mutex<std::fs::File>,
    counts: Mutex<BTreeMap<String, u64>>,
}

/// A well-mixed 64-bit hash (splitmix64), to pick customers reproducibly.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Shared {
    fn count(&self, key: String) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(key).or_default() += 1;
        }
    }

    /// Appends `id` and its newline in one `write`, so a reader never sees half a line.
    fn record_ok(&self, id: &str) -> std::io::Result<()> {
        let line = format!("{id}\n");
        match self.ok_file.lock() {
            Ok(mut file) => file.write_all(line.as_bytes()),
            Err(_) => Err(std::io::Error::other("the ok file's lock is poisoned")),
        }
    }
}

async fn worker(shared: Arc<Shared>, http: reqwest::Client) -> Result<(), String> {
    loop {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if shared.interval > 0.0 {
            let due = shared.start + Duration::from_secs_f64(n as f64 * shared.interval);
            if due >= shared.end {
                return Ok(());
            }
            tokio::time::sleep_until(due.into()).await;
        } else if Instant::now() >= shared.end {
            return Ok(());
        }
        let id = format!("evt_{}_{n}", shared.prefix);
        let customer = &shared.customers[(mix(shared.seed ^ n) % shared.customers.len() as u64) as usize];
        let created = OffsetDateTime::now_utc();
        let created_at = created.format(&Rfc3339).map_err(|e| e.to_string())?;
        let body = serde_json::json!({
            "id": id,
            "eventType": "CUSTOMER_UPDATED",
            "createdAt": created_at,
            "data": {"customerId": customer},
        })
        .to_string();
        let ts = created.unix_timestamp();
        let signature = shared
            .signer
            .sign(&id, ts, body.as_bytes())
            .map_err(|e| e.to_string())?;
        let sent = http
            .post(&shared.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let status = match sent {
            // The answer counts once its body is read: the receiver has finished with it.
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) => Some(status),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        match status {
            Some(status) => {
                if status.is_success() {
                    shared
                        .record_ok(&id)
                        .map_err(|e| format!("writing the ok file: {e}"))?;
                }
                shared.count(status.as_u16().to_string());
            }
            None => {
                // The receiver is gone (killed): this connection's work is over.
                shared.count("error".into());
                return Ok(());
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webhook_send: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let signer =
        Webhook::new(&args.secret).map_err(|_| "the secret is not a valid whsec_… secret".to_string())?;
    let customers: Vec<String> = std::fs::read_to_string(&args.customers)
        .map_err(|e| format!("reading {}: {e}", args.customers.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if customers.is_empty() {
        return Err(format!("no customer ids in {}", args.customers.display()));
    }
    if args.connections == 0
        || !args.seconds.is_finite()
        || !(0.0..=86_400.0).contains(&args.seconds)
        || !args.rate.is_finite()
        || args.rate < 0.0
    {
        return Err(
            "--connections must be at least 1, --seconds within 0..=86400, --rate not negative".into(),
        );
    }
    let ok_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.ok_file)
        .map_err(|e| format!("opening {}: {e}", args.ok_file.display()))?;
    let http = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        url: args.url,
        signer,
        customers,
        seed: mix(args.prefix.bytes().fold(0u64, |h, b| mix(h ^ u64::from(b)))),
        prefix: args.prefix,
        next: AtomicU64::new(0),
        start,
        end: start + Duration::from_secs_f64(args.seconds),
        interval: if args.rate > 0.0 { 1.0 / args.rate } else { 0.0 },
        ok_file: Mutex::new(ok_file),
        counts: Mutex::new(BTreeMap::new()),
    });
    let workers: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared), http.clone())))
        .collect();
    let mut failure = None;
    for joined in futures_util::future::join_all(workers).await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failure = Some(err),
            Err(err) => failure = Some(format!("a worker panicked: {err}")),
        }
    }
    let counts = shared.counts.lock().map(|c| c.clone()).unwrap_or_default();
    let ok: u64 = counts
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, v)| v)
        .sum();
    let summary = serde_json::json!({
        "sent": counts.values().sum::<u64>(),
        "ok": ok,
        "counts": counts,
        "seconds": start.elapsed().as_secs_f64(),
    });
    println!("{summary}");
    failure.map_or(Ok(()), Err)
}
