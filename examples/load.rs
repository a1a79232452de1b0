//! Load generator for the sandbox, loopback only and bounded in time. It starts a sandbox in
//! this process, then:
//!
//! 1. creates `--create` customers (default 10,000) over `--create-clients` connections (16),
//!    each with its own Idempotency-Key under `--idempotency 1`;
//! 2. for `--seconds` (10), sends `GET /v1/compliance/status/:id` for the first `--customers`
//!    (1,000) of them over `--connections` (64) keep-alive HTTP/1.1 connections; `--seconds 0`
//!    skips this phase (to profile creates alone).
//!
//! It prints throughput and latency percentiles of each phase, and the process's memory.
//! The generator shares the machine with the server: on 2 cores the figures include both.
//!
//! cargo run --release --example load [-- --seconds 10 --connections 64 --in-memory 1 ...]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use kycdash::sandbox::{self, DbLocation, SandboxConfig};
use serde_json::json;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The allocator the `kycdash` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The sandbox's default test key.
const AUTHORIZATION: &str = "Bearer sk_test_kycdash";

/// What the generator reads of a created customer.
#[derive(serde::Deserialize)]
struct Created<'a> {
    #[serde(borrow)]
    id: &'a str,
}

#[derive(Debug, Clone, Copy)]
struct Options {
    create: usize,
    create_clients: usize,
    customers: usize,
    connections: usize,
    seconds: u64,
    server_threads: usize,
    generator_threads: usize,
    /// 1: keep the database in memory instead of a file (WAL) in a temporary directory.
    in_memory: bool,
    /// 1: send every create with its own Idempotency-Key (the exactly-once path).
    idempotency: bool,
}

fn options() -> Result<Options, Failure> {
    let mut options = Options {
        create: 10_000,
        create_clients: 16,
        customers: 1_000,
        connections: 64,
        seconds: 10,
        server_threads: 2,
        generator_threads: 2,
        in_memory: false,
        idempotency: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value", pair[0]).into());
        };
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag}: \"{value}\" is not a number"))?;
        match flag.as_str() {
            "--create" => options.create = n,
            "--create-clients" => options.create_clients = n.max(1),
            "--customers" => options.customers = n.max(1),
            "--connections" => options.connections = n.max(1),
            "--seconds" => options.seconds = (n as u64).min(300),
            "--server-threads" => options.server_threads = n.max(1),
            "--generator-threads" => options.generator_threads = n.max(1),
            "--in-memory" => options.in_memory = n != 0,
            "--idempotency" => options.idempotency = n != 0,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    options.customers = options.customers.min(options.create.max(1));
    options.create = options.create.max(options.customers);
    Ok(options)
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends one request and reads the whole answer; returns the status.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), Failure> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn report(name: &str, count: u64, errors: u64, elapsed: Duration, latencies: &Histogram<u64>) {
    let us = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!("{name}");
    println!(
        "  {count} requests in {:.2} s: {:.0} req/s; {errors} errors",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        us(0.50),
        us(0.90),
        us(0.99),
        us(0.999),
        latencies.max() as f64 / 1000.0
    );
}

fn memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = |key: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(key))
                    .map(|l| l[key.len()..].trim().to_string())
            };
            Some(format!("VmRSS {}, VmHWM {}", line("VmRSS:")?, line("VmHWM:")?))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// CPU seconds used so far by this process's threads, summed by thread name, and (under
/// "page faults") the process's minor page faults: fresh memory costs more than reused memory,
/// markedly so in a virtual machine.
fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let faults = std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
        let after_name = &stat[stat.rfind(')')? + 2..];
        after_name.split(' ').nth(7)?.parse::<f64>().ok()
    });
    by_name.insert(FAULTS.to_string(), faults.unwrap_or(0.0));
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // The name is in parentheses and may hold spaces; the numbers follow it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        *by_name.entry(name).or_insert(0.0) += (ticks(11) + ticks(12)) / 100.0;
    }
    by_name
}

const FAULTS: &str = "page faults";

fn print_cpu(before: &std::collections::BTreeMap<String, f64>, wall: Duration) {
    let after = cpu_by_thread();
    let since = |name: &String, value: f64| value - before.get(name).copied().unwrap_or(0.0);
    let used: Vec<String> = after
        .iter()
        .filter(|(name, _)| *name != FAULTS)
        .map(|(name, secs)| (name, since(name, *secs)))
        .filter(|(_, secs)| *secs >= 0.05)
        .map(|(name, secs)| format!("{name} {secs:.1} s"))
        .collect();
    let faults = after.get(FAULTS).map_or(0.0, |n| since(&FAULTS.to_string(), *n));
    println!(
        "  CPU in {:.1} s of wall time: {}; {faults:.0} minor page faults",
        wall.as_secs_f64(),
        used.join(", ")
    );
}

fn profile(i: usize) -> Bytes {
    let body = json!({
        "externalId": format!("load-{i}"),
        "email": format!("customer{i}@example.com"),
        "ipAddress": "203.0.113.7",
        "kyc": {
            "firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": format!("X{i:07}"),
            "mainAddress": {"street1": "123 Main St", "cityCounty": "New York", "stateRegion": "NY", "zip": "10001", "countryCode": "US"},
            "nationality": "US", "occupation": "11"
        }
    });
    Bytes::from(body.to_string())
}

/// Phase 1: create customers; returns their ids in creation order.
async fn create_customers(addr: SocketAddr, options: Options) -> Result<Vec<String>, Failure> {
    // Everything the generator can prepare is prepared before the clock starts, so that it
    // takes as little as it can of the CPU it shares with the server.
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..options.create).map(profile).collect());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..options.create_clients {
        let next = next.clone();
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut latencies = histogram();
            let mut created = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= options.create {
                    break;
                }
                let mut request = hyper::Request::post("/v1/customers")
                    .header("host", "127.0.0.1")
                    .header("authorization", AUTHORIZATION)
                    .header("content-type", "application/json");
                if options.idempotency {
                    request = request.header("idempotency-key", format!("load-{i}"));
                }
                let request = request.body(Full::new(bodies[i].clone()))?;
                let sent = Instant::now();
                let (status, body) = send(&mut sender, request).await?;
                latencies.record(sent.elapsed().as_micros() as u64)?;
                if status == 201 {
                    let customer: Created = serde_json::from_slice(&body)?;
                    created.push((i, customer.id.to_string()));
                } else {
                    errors += 1;
                }
            }
            Ok::<_, Failure>((created, latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut latencies = histogram();
    let mut errors = 0;
    for task in tasks {
        let (created, h, e) = task.await??;
        all.extend(created);
        latencies.add(&h)?;
        errors += e;
    }
    let elapsed = started.elapsed();
    report(
        &format!(
            "create: POST /v1/customers, {} customers over {} connections{}",
            options.create,
            options.create_clients,
            if options.idempotency {
                ", each with an Idempotency-Key"
            } else {
                ""
            }
        ),
        latencies.len(),
        errors,
        elapsed,
        &latencies,
    );
    all.sort();
    Ok(all.into_iter().map(|(_, id)| id).collect())
}

/// Phase 2: read compliance statuses as fast as the connections allow.
async fn read_statuses(addr: SocketAddr, ids: Arc<Vec<String>>, options: Options) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..options.connections {
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut latencies = histogram();
            let mut errors = 0u64;
            let mut i = connection * 7919;
            let paths: Vec<String> = ids
                .iter()
                .map(|id| format!("/v1/compliance/status/{id}"))
                .collect();
            while Instant::now() < deadline {
                i = (i + 1) % paths.len();
                let request = hyper::Request::get(paths[i].as_str())
                    .header("host", "127.0.0.1")
                    .header("authorization", AUTHORIZATION)
                    .body(Full::new(Bytes::new()))?;
                let sent = Instant::now();
                let (status, _) = send(&mut sender, request).await?;
                latencies.record(sent.elapsed().as_micros() as u64)?;
                if status != 200 {
                    errors += 1;
                }
            }
            Ok::<_, Failure>((latencies, errors))
        }));
    }
    let mut latencies = histogram();
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await??;
        latencies.add(&h)?;
        errors += e;
    }
    report(
        &format!(
            "read: GET /v1/compliance/status/:id, {} customers, {} connections, {} s",
            ids.len(),
            options.connections,
            options.seconds
        ),
        latencies.len(),
        errors,
        started.elapsed(),
        &latencies,
    );
    Ok(())
}

fn main() -> Result<(), Failure> {
    let options = options()?;
    println!(
        "machine: {} logical CPUs; server runtime {} threads, generator runtime {} threads",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        options.server_threads,
        options.generator_threads
    );
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.server_threads)
        .thread_name("sandbox")
        .enable_all()
        .build()?;
    let generator = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.generator_threads)
        .thread_name("load")
        .enable_all()
        .build()?;

    let dir = tempfile::tempdir()?;
    let mut config = SandboxConfig::ephemeral();
    if !options.in_memory {
        config.db = DbLocation::File(dir.path().join("load.db"));
    }
    let running = server.block_on(sandbox::start(config))?;
    let addr = running.addr();
    let where_ = if options.in_memory {
        "in memory".to_string()
    } else {
        format!("{}", dir.path().join("load.db").display())
    };
    println!("sandbox on {}, database {where_}\n", running.base_url());

    generator.block_on(async move {
        let (cpu, started) = (cpu_by_thread(), Instant::now());
        let ids = create_customers(addr, options).await?;
        print_cpu(&cpu, started.elapsed());
        if ids.len() < options.customers {
            return Err::<(), Failure>("not enough customers were created".into());
        }
        println!("  memory after creating: {}\n", memory());
        if options.seconds == 0 {
            return Ok(());
        }
        let ids = Arc::new(ids[..options.customers].to_vec());
        let (cpu, started) = (cpu_by_thread(), Instant::now());
        read_statuses(addr, ids, options).await?;
        print_cpu(&cpu, started.elapsed());
        println!("  memory after reading: {}", memory());
        Ok(())
    })?;
    server.block_on(running.shutdown());
    Ok(())
}
