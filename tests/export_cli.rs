//! `kycdash export`, `kycdash completions` and `kycdash man` as a user runs them (SPEC §11):
//! a sandbox driven through known flows, its cache filled by the real `kycdash watch`, then
//! exported as CSV and NDJSON (golden files, ids and times masked), with and without personal
//! data, from a warm cache once the API is gone, and with `--refresh`.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(30);
const FORMULA: &str = "=HYPERLINK(\"http://x\")";
const PERSONAL: [&str; 6] = [
    "Ada",
    "ada@example.com",
    "1990-04-12",
    "123 Main St",
    "X1234567",
    "203.0.113.7",
];
const COLUMNS: [&str; 12] = [
    "customerId",
    "externalId",
    "stage",
    "onboardingStatus",
    "nextAction",
    "isCompliant",
    "failedChecks",
    "stageSince",
    "firstSeen",
    "decidedAt",
    "documents",
    "sdkLinkExpiresAt",
];
const PII_COLUMNS: [&str; 6] = [
    "name",
    "email",
    "birthDate",
    "address",
    "documentNumber",
    "ipAddress",
];
const TIME_COLUMNS: [&str; 4] = ["stageSince", "firstSeen", "decidedAt", "sdkLinkExpiresAt"];

fn kycdash(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kycdash"));
    command
        .env_remove("KYCDASH_API_URL")
        .env_remove("KYCDASH_API_KEY")
        // No user config can leak in.
        .env("KYCDASH_CONFIG", root.join("no-config.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `kycdash ARGS --api-url URL --api-key KEY --data-dir DIR`.
async fn run(root: &Path, api: &str, args: &[&str]) -> Output {
    kycdash(root)
        .args(args)
        .args(["--api-url", api, "--api-key", support::KEY, "--data-dir"])
        .arg(root.join("data"))
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Runs `kycdash export ARGS` and expects exit 0.
async fn export(root: &Path, api: &str, args: &[&str]) -> Output {
    let output = run(root, api, &[&["export"], args].concat()).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "export {args:?}: {}",
        text(&output.stderr)
    );
    output
}

async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line before the end");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Reads `watch`'s lines until `done` says the ones awaited have all come.
async fn read_until(lines: &mut Lines<BufReader<ChildStdout>>, mut done: impl FnMut(&Value) -> bool) {
    loop {
        if done(&next_json(lines).await) {
            return;
        }
    }
}

fn with_external_id(mut profile: Value, external_id: &str) -> Value {
    profile["externalId"] = json!(external_id);
    profile
}

/// Customers driven through known flows, named by their externalIds. The decisions are
/// made while a `watch` runs, so its timeline sees them happen.
struct Flows {
    approved: Uuid,
    denied: Uuid,
}

async fn drive_before_the_first_watch(client: &support::Client) -> Flows {
    let approved = client
        .create_customer(with_external_id(
            support::full_profile("Lovelace"),
            "ext-approved",
        ))
        .await;
    let denied = client
        .create_customer(with_external_id(support::full_profile("Deny"), "ext-denied"))
        .await;
    let expired = client
        .create_customer(with_external_id(support::full_profile("Lovelace"), "ext-expired"))
        .await;
    client
        .create_customer(json!({"externalId": FORMULA, "kyc": {"firstName": FORMULA}}))
        .await;
    for customer in [approved, denied, expired] {
        client.start_kyc(customer).await.assert_status(201);
    }
    for customer in [approved, denied] {
        client.simulate(customer, "SDK_COMPLETE").await.assert_status(200);
    }
    // The open links expire at 30 minutes: only expired's is still open.
    assert_eq!(client.advance(30 * 60).await["timersFired"], 1);
    let awaiting = client
        .create_customer(with_external_id(
            support::full_profile("Lovelace"),
            "ext-awaiting-sdk",
        ))
        .await;
    client.start_kyc(awaiting).await.assert_status(201);
    Flows { approved, denied }
}

/// `watch --once` first sees everyone; a running `watch` then uploads approved's documents
/// from its inbox and sees both decisions happen (denied's documents come through the API,
/// so the cache knows no hashes of them).
async fn fill_the_cache(root: &Path, client: &support::Client, flows: &Flows) {
    let api = client.base.as_str();
    let once = run(root, api, &["watch", "--once"]).await;
    assert_eq!(once.status.code(), Some(0), "{}", text(&once.stderr));

    let inbox = root.join("data/inbox/ext-approved");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("SOURCE_OF_FUNDS.pdf"), support::PDF).unwrap();
    std::fs::write(inbox.join("W9.png"), support::PNG).unwrap();
    let mut watch = kycdash(root)
        .args(["watch", "--api-url", api, "--api-key", support::KEY, "--data-dir"])
        .arg(root.join("data"))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut uploaded = 0;
    read_until(&mut lines, |line| {
        if line["kind"] == "upload" {
            assert_eq!(line["result"], "uploaded", "{line}");
            uploaded += 1;
        }
        uploaded == 2
    })
    .await;
    for document_type in ["SOURCE_OF_FUNDS", "W9"] {
        client
            .upload(flows.denied, document_type, support::PDF)
            .await
            .assert_status(201);
    }
    // Both decisions are due once the documents are on file.
    client.advance(5).await;
    let (approved, denied) = (flows.approved.to_string(), flows.denied.to_string());
    let mut decided = Vec::new();
    read_until(&mut lines, |line| {
        if line["kind"] == "stage_changed"
            && ["approved", "denied"].contains(&line["to"].as_str().unwrap_or(""))
        {
            let to = line["to"].as_str().unwrap().to_string();
            decided.push((line["customerId"].as_str().unwrap().to_string(), to));
        }
        decided.len() == 2
    })
    .await;
    decided.sort();
    let mut expected = vec![(approved, "approved".to_string()), (denied, "denied".to_string())];
    expected.sort();
    assert_eq!(decided, expected);
    let pid = watch.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    while tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .is_some()
    {}
    let exit = tokio::time::timeout(PATIENCE, watch.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

/// The NDJSON records, each line an object.
fn records(ndjson: &str) -> Vec<serde_json::Map<String, Value>> {
    ndjson
        .lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(record)) => record,
            other => panic!("not a JSON object: {line} ({other:?})"),
        })
        .collect()
}

/// The export with each customer's id replaced by its externalId's name and each time by
/// `<time>` (empty cells stay empty, so what is known and what is not still shows), its
/// records sorted by that name: the export's own order (`createdAt`, then id) ties for
/// customers the sandbox made in one instant, which a golden file cannot hold.
fn masked(export: &str, records: &[serde_json::Map<String, Value>]) -> String {
    let mut out = export.replace("\r\n", "\n");
    for record in records {
        let id = record["customerId"].as_str().unwrap();
        let name = match record["externalId"].as_str() {
            Some(FORMULA) => "formula",
            Some(other) => other,
            None => "none",
        };
        out = out.replace(id, &format!("<{name} id>"));
        for column in TIME_COLUMNS {
            if let Some(at) = record[column].as_str() {
                assert!(
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
                    "{column} is RFC 3339: {at}"
                );
                out = out.replace(at, "<time>");
            }
        }
    }
    let mut lines: Vec<&str> = out.lines().collect();
    let header = if lines.first().is_some_and(|l| l.starts_with("customerId,")) {
        Some(lines.remove(0))
    } else {
        None
    };
    lines.sort();
    header
        .into_iter()
        .chain(lines)
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The cell a spreadsheet-safe CSV holds for a value (written here again, not borrowed from
/// the crate, so a change there shows).
fn csv_cell(value: &Value) -> String {
    let cell = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The CSV parses back (with the csv crate) to the NDJSON's records, column for column, and
/// each NDJSON line names its fields in the CSV's order.
fn assert_same_records(csv: &str, ndjson_text: &str, pii: bool) {
    let ndjson = records(ndjson_text);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut expected: Vec<&str> = COLUMNS.to_vec();
    if pii {
        expected.extend(PII_COLUMNS);
    }
    assert_eq!(header, expected);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), ndjson.len());
    for ((row, record), line) in rows.iter().zip(&ndjson).zip(ndjson_text.lines()) {
        let mut keys: Vec<&String> = record.keys().collect();
        keys.sort_by_key(|key| line.find(&format!("\"{key}\":")));
        assert_eq!(
            header.iter().collect::<Vec<_>>(),
            keys,
            "the same columns, in order: {line}"
        );
        for (column, cell) in header.iter().zip(row.iter()) {
            assert_eq!(
                cell,
                csv_cell(&record[column]),
                "{column} of {}",
                record["customerId"]
            );
        }
    }
}

#[tokio::test]
async fn export_writes_golden_csv_and_ndjson_from_a_warm_cache_even_with_the_api_gone() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let client = support::client(&sandbox, Some(support::KEY));
    let api = sandbox.base_url().to_string();
    let flows = drive_before_the_first_watch(&client).await;
    fill_the_cache(root, &client, &flows).await;

    let csv = text(&export(root, &api, &[]).await.stdout);
    let ndjson_text = text(&export(root, &api, &["--format", "ndjson"]).await.stdout);
    let ndjson = records(&ndjson_text);
    assert_eq!(ndjson.len(), 5, "{ndjson_text}");
    insta::assert_snapshot!("export_csv", masked(&csv, &ndjson));
    insta::assert_snapshot!("export_ndjson", masked(&ndjson_text, &ndjson));
    assert_same_records(&csv, &ndjson_text, false);

    // The formula comes out as text in CSV, as it is in NDJSON.
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let external_ids: Vec<String> = reader.records().map(|r| r.unwrap()[1].to_string()).collect();
    assert!(external_ids.contains(&format!("'{FORMULA}")), "{external_ids:?}");
    assert!(ndjson.iter().any(|r| r["externalId"] == FORMULA));

    // Personal data only on request.
    for personal in PERSONAL {
        assert!(!csv.contains(personal), "{personal} in {csv}");
        assert!(!ndjson_text.contains(personal), "{personal} in {ndjson_text}");
    }
    let pii_csv = text(&export(root, &api, &["--include-pii"]).await.stdout);
    let pii_text = text(
        &export(root, &api, &["--include-pii", "--format", "ndjson"])
            .await
            .stdout,
    );
    let pii = records(&pii_text);
    assert_same_records(&pii_csv, &pii_text, true);
    for personal in PERSONAL {
        assert!(pii_csv.contains(personal), "{personal} missing from {pii_csv}");
    }
    let approved = pii.iter().find(|r| r["externalId"] == "ext-approved").unwrap();
    assert_eq!(approved["name"], "Ada Lovelace");
    assert_eq!(approved["address"], "123 Main St, New York, NY, 10001, US");
    let formula = pii.iter().find(|r| r["externalId"] == FORMULA).unwrap();
    assert_eq!(formula["name"], FORMULA);
    let mut reader = csv::Reader::from_reader(pii_csv.as_bytes());
    let names: Vec<String> = reader.records().map(|r| r.unwrap()[12].to_string()).collect();
    assert!(names.contains(&format!("'{FORMULA}")), "{names:?}");

    // A key of another account does not get this one's customers.
    let other = kycdash(root)
        .args([
            "export",
            "--api-url",
            &api,
            "--api-key",
            "sk_test_other",
            "--data-dir",
        ])
        .arg(root.join("data"))
        .output()
        .await
        .unwrap();
    assert_eq!(other.status.code(), Some(1), "{}", text(&other.stderr));
    assert!(other.stdout.is_empty());

    // --refresh sweeps first: a customer created since shows up in that export only.
    client
        .create_customer(json!({"externalId": "ext-new", "email": "new@example.com"}))
        .await;
    assert!(!text(&export(root, &api, &[]).await.stdout).contains("ext-new"));
    let refreshed = text(&export(root, &api, &["--refresh"]).await.stdout);
    assert!(refreshed.contains("ext-new"), "{refreshed}");

    // The API gone: the same export from the cache, said to be as of the cache.
    sandbox.shutdown().await;
    let offline = export(root, &api, &[]).await;
    assert_eq!(text(&offline.stdout), refreshed);
    let note = text(&offline.stderr);
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(note.contains("as of the cache"), "{note}");
    let file = root.join("exports/customers.csv");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let to_file = export(root, &api, &["--output", file.to_str().unwrap()]).await;
    assert!(to_file.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), refreshed);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // --refresh needs the API: exit 1, one line, nothing written.
    let refused = run(root, &api, &["export", "--refresh"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(refused.stdout.is_empty());
    let stderr = text(&refused.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn a_data_directory_without_a_cache_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let output = run(root.path(), "http://127.0.0.1:9", &["export"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: there is no cache in") && stderr.contains("watch --once"),
        "{stderr}"
    );
    assert!(!root.path().join("data").exists(), "nothing is created");
}

#[tokio::test]
async fn completions_for_every_shell_and_a_man_page_come_from_the_cli() {
    let root = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let output = kycdash(root.path())
            .args(["completions", shell])
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        for word in ["kycdash", "export", "include-pii", "completions"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let bash = kycdash(root.path())
        .args(["completions", "bash"])
        .output()
        .await
        .unwrap();
    let path = root.path().join("kycdash.bash");
    std::fs::write(&path, &bash.stdout).unwrap();
    match std::process::Command::new("bash").arg("-n").arg(&path).output() {
        Ok(checked) => assert!(checked.status.success(), "bash -n: {}", text(&checked.stderr)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => eprintln!("no bash here: skipped"),
        Err(err) => panic!("cannot run bash: {err}"),
    }
    let unknown = kycdash(root.path())
        .args(["completions", "tcsh"])
        .output()
        .await
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    let man = kycdash(root.path()).arg("man").output().await.unwrap();
    assert_eq!(man.status.code(), Some(0));
    let page = text(&man.stdout);
    assert!(
        page.starts_with(".TH kycdash 1 "),
        "{}",
        &page[..page.len().min(200)]
    );
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} missing");
    }
    assert!(page.contains("export"), "the subcommands are listed");
}
