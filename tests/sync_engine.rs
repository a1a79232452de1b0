//! The sync engine against the in-process sandbox: every flow of the guide driven through the
//! API shows up as `stage_changed` events in order, through the real receiver, tracker, cache
//! and inbox. Loopback only; the sandbox's clock is moved instead of sleeping for timers.

mod engine_events;

use std::path::Path;
use std::time::Duration;

use kycdash::api::types::SimulateAction;
use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::{Customer, CustomerProfile, DocumentType, Stage, Strategy};
use kycdash::sandbox::{self, ApiKey, RunningSandbox, SandboxConfig};
use kycdash::sync::engine::{
    self, AlertKind, EngineConfig, EngineEvent, EngineHandle, EngineTiming, ReceiverConfig,
};
use kycdash::sync::inbox::InboxTiming;
use serde_json::json;
use uuid::Uuid;

const PDF: &[u8] = b"%PDF-1.4\n% test document\n";

struct Setup {
    sandbox: RunningSandbox,
    client: ApiClient,
    handle: EngineHandle,
    log: engine_events::EventLog,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    inbox: std::path::PathBuf,
}

fn engine_config(base_url: &str, data_dir: &Path, receiver: bool, once: bool) -> EngineConfig {
    EngineConfig {
        api: ClientConfig::new(base_url, sandbox::DEFAULT_API_KEY),
        sandbox: true,
        data_dir: data_dir.to_path_buf(),
        inbox: Some(data_dir.join("inbox")),
        receiver: receiver.then(|| ReceiverConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            secret: None,
        }),
        concurrency: 8,
        once,
        publish_customers: false,
        stop_on_refused_key: true,
        register_before_start: true,
        retain: std::time::Duration::from_secs(90 * 86_400),
        timing: EngineTiming {
            inbox: InboxTiming {
                stable_for: Duration::from_millis(300),
                rescan_every: Duration::from_millis(300),
            },
            ..EngineTiming::default()
        },
        metrics: None,
    }
}

/// An in-memory sandbox and a client of its default tenant.
async fn sandbox_and_client() -> (RunningSandbox, ApiClient) {
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    (sandbox, client)
}

async fn setup() -> Setup {
    setup_with(SandboxConfig::ephemeral()).await
}

async fn setup_with(config: SandboxConfig) -> Setup {
    let sandbox = sandbox::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = engine_config(sandbox.base_url(), dir.path(), true, false);
    let inbox = config.inbox.clone().unwrap();
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let mut setup = Setup {
        sandbox,
        client,
        handle,
        log: engine_events::EventLog::new(events),
        task,
        _dir: dir,
        inbox,
    };
    setup
        .wait_for("the first sweep", |e| matches!(e, EngineEvent::Sweep { .. }))
        .await;
    setup
}

impl Setup {
    /// Waits (at most 10 s) for an event no earlier wait matched; every event seen is kept in
    /// `seen`, so one that arrived while waiting for another still counts.
    async fn wait_for(&mut self, what: &str, matches: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
        self.log.wait_for(what, matches).await
    }

    async fn wait_for_stage(&mut self, id: Uuid, stage: Stage) {
        self.wait_for(&format!("{id} reaching {stage}"), |e| {
            matches!(e, EngineEvent::StageChanged { customer_id, to, .. } if *customer_id == id && *to == stage)
        })
        .await;
    }

    /// The `(from, to)` of every stage change of a customer seen so far.
    fn stages_of(&self, id: Uuid) -> Vec<(Option<Stage>, Stage)> {
        self.log
            .seen
            .iter()
            .filter_map(|e| match e {
                EngineEvent::StageChanged {
                    customer_id,
                    from,
                    to,
                    ..
                } if *customer_id == id => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    async fn create(&self, last_name: &str, external_id: Option<&str>) -> Customer {
        let profile: CustomerProfile = serde_json::from_value(json!({
            "ipAddress": "203.0.113.7",
            "externalId": external_id,
            "kyc": {
                "firstName": "Ada", "lastName": last_name, "birthDate": "1990-04-12", "documentNumber": "X1",
                "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001", "countryCode": "US"},
                "nationality": "US", "occupation": "11"
            }
        }))
        .unwrap();
        self.client.create_customer(&profile).await.unwrap()
    }

    async fn upload(&self, id: Uuid, document_type: DocumentType) {
        self.client
            .upload_document(id, document_type, "doc.pdf", PDF, None)
            .await
            .unwrap();
    }

    async fn stop(mut self) -> Vec<EngineEvent> {
        self.handle.stop();
        self.wait_for("stopped", |e| matches!(e, EngineEvent::Stopped))
            .await;
        self.task.await.unwrap();
        self.sandbox.shutdown().await;
        self.log.seen
    }
}

fn chain(stages: &[Stage]) -> Vec<(Option<Stage>, Stage)> {
    let mut from = None;
    stages
        .iter()
        .map(|&to| {
            let step = (from, to);
            from = Some(to);
            step
        })
        .collect()
}

#[tokio::test]
async fn a_standard_flow_is_seen_stage_by_stage_through_webhooks() {
    let mut s = setup().await;
    let id = s.create("Lovelace", None).await.id;
    s.wait_for_stage(id, Stage::ReadyToStart).await;
    s.client.start_kyc(id, None).await.unwrap();
    s.wait_for_stage(id, Stage::AwaitingSdk).await;
    s.client.simulate(id, SimulateAction::SdkComplete).await.unwrap();
    s.wait_for_stage(id, Stage::CollectingRequirements).await;
    s.upload(id, DocumentType::SourceOfFunds).await;
    s.upload(id, DocumentType::W9).await;
    // Uploads announce no webhook: a refresh (the dashboard's R) pulls the new stage.
    s.handle.refresh(Some(id));
    s.wait_for_stage(id, Stage::AwaitingDecision).await;
    s.client.advance_clock(3).await.unwrap();
    s.wait_for_stage(id, Stage::Approved).await;
    // A status read (a sweep, or the fetch an earlier webhook set off) can see the decision
    // before its webhook arrives: wait for that one too before counting.
    s.wait_for("the CUSTOMER_KYC_FINISHED webhook", |e| {
        matches!(e, EngineEvent::Webhook { event_type, duplicate: false, .. } if event_type == "CUSTOMER_KYC_FINISHED")
    })
    .await;

    assert_eq!(
        s.stages_of(id),
        chain(&[
            Stage::ReadyToStart,
            Stage::AwaitingSdk,
            Stage::CollectingRequirements,
            Stage::AwaitingDecision,
            Stage::Approved
        ])
    );
    let last = s
        .log
        .seen
        .iter()
        .rev()
        .find(|e| matches!(e, EngineEvent::StageChanged { .. }));
    assert!(
        matches!(
            last,
            Some(EngineEvent::StageChanged {
                is_compliant: true,
                next_action: None,
                ..
            })
        ),
        "{last:?}"
    );
    let webhooks = s
        .log
        .seen
        .iter()
        .filter(|e| matches!(e, EngineEvent::Webhook { duplicate: false, .. }))
        .count();
    assert!(webhooks >= 5, "expected the flow's webhooks, saw {webhooks}");
    assert!(!s.log.seen.iter().any(|e| matches!(
        e,
        EngineEvent::Alert {
            alert: AlertKind::Drift,
            ..
        }
    )));
    s.stop().await;
}

#[tokio::test]
async fn the_external_path_skips_the_sdk() {
    let mut s = setup().await;
    let id = s.create("Hopper", None).await.id;
    s.wait_for_stage(id, Stage::ReadyToStart).await;
    s.client.start_kyc(id, Some(Strategy::ExternalKyc)).await.unwrap();
    s.wait_for_stage(id, Stage::CollectingRequirements).await;
    for document_type in [
        DocumentType::SourceOfFunds,
        DocumentType::W9,
        DocumentType::BiometricReport,
    ] {
        s.upload(id, document_type).await;
    }
    s.handle.refresh(Some(id));
    s.wait_for_stage(id, Stage::AwaitingDecision).await;
    s.client.advance_clock(3).await.unwrap();
    s.wait_for_stage(id, Stage::Approved).await;
    assert_eq!(
        s.stages_of(id),
        chain(&[
            Stage::ReadyToStart,
            Stage::CollectingRequirements,
            Stage::AwaitingDecision,
            Stage::Approved
        ])
    );
    s.stop().await;
}

#[tokio::test]
async fn expiry_then_rerun_review_then_deny_and_error() {
    let mut s = setup().await;
    let expiring = s.create("Lovelace", None).await.id;
    let reviewed = s.create("Curie", None).await.id;
    let failing = s.create("Noether", None).await.id;
    for id in [expiring, reviewed, failing] {
        s.wait_for_stage(id, Stage::ReadyToStart).await;
        s.client.start_kyc(id, None).await.unwrap();
        s.wait_for_stage(id, Stage::AwaitingSdk).await;
    }

    s.client
        .simulate(expiring, SimulateAction::SdkExpire)
        .await
        .unwrap();
    s.wait_for_stage(expiring, Stage::Expired).await;
    let onboarding = s.client.status(expiring).await.unwrap().onboarding_id.unwrap();
    s.client.rerun_kyc(onboarding).await.unwrap();
    s.wait_for(&format!("{expiring} back to awaiting_sdk"), |e| {
        matches!(e, EngineEvent::StageChanged { customer_id, from: Some(Stage::Expired), to: Stage::AwaitingSdk, .. } if *customer_id == expiring)
    })
    .await;

    s.client.simulate(reviewed, SimulateAction::Review).await.unwrap();
    s.wait_for_stage(reviewed, Stage::InReview).await;
    s.client.simulate(reviewed, SimulateAction::Deny).await.unwrap();
    s.wait_for_stage(reviewed, Stage::Denied).await;

    s.client.simulate(failing, SimulateAction::Error).await.unwrap();
    s.wait_for_stage(failing, Stage::Errored).await;
    s.wait_for("a verification_error alert", |e| {
        matches!(e, EngineEvent::Alert { customer_id, alert: AlertKind::VerificationError, .. } if *customer_id == failing)
    })
    .await;

    assert_eq!(
        s.stages_of(expiring),
        chain(&[
            Stage::ReadyToStart,
            Stage::AwaitingSdk,
            Stage::Expired,
            Stage::AwaitingSdk
        ])
    );
    assert_eq!(
        s.stages_of(reviewed),
        chain(&[
            Stage::ReadyToStart,
            Stage::AwaitingSdk,
            Stage::InReview,
            Stage::Denied
        ])
    );
    assert_eq!(
        s.stages_of(failing),
        chain(&[Stage::ReadyToStart, Stage::AwaitingSdk, Stage::Errored])
    );
    s.stop().await;
}

#[tokio::test]
async fn inbox_drops_by_id_and_by_external_id_lead_to_approval() {
    let mut s = setup().await;
    let by_id = s.create("Lovelace", None).await.id;
    let by_external = s.create("Hopper", Some("grace-1")).await.id;
    for id in [by_id, by_external] {
        s.wait_for_stage(id, Stage::ReadyToStart).await;
        s.client.start_kyc(id, None).await.unwrap();
        s.wait_for_stage(id, Stage::AwaitingSdk).await;
        s.client.simulate(id, SimulateAction::SdkComplete).await.unwrap();
        s.wait_for_stage(id, Stage::CollectingRequirements).await;
    }
    std::fs::write(s.inbox.join(format!("{by_id}__SOURCE_OF_FUNDS.pdf")), PDF).unwrap();
    std::fs::write(s.inbox.join(format!("{by_id}__w9__signed.pdf")), PDF).unwrap();
    std::fs::create_dir_all(s.inbox.join("grace-1")).unwrap();
    std::fs::write(s.inbox.join("grace-1/source_of_funds.pdf"), PDF).unwrap();
    std::fs::write(s.inbox.join("grace-1/W9.pdf"), PDF).unwrap();
    for id in [by_id, by_external] {
        s.wait_for_stage(id, Stage::AwaitingDecision).await;
    }
    s.client.advance_clock(3).await.unwrap();
    for id in [by_id, by_external] {
        s.wait_for_stage(id, Stage::Approved).await;
    }
    let uploads = s
        .log
        .seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                EngineEvent::Upload {
                    result: "uploaded",
                    ..
                }
            )
        })
        .count();
    assert_eq!(uploads, 4);
    let processed = s.inbox.join(".processed");
    assert!(processed.join(format!("{by_id}__w9__signed.pdf")).exists());
    assert!(processed.join("grace-1/W9.pdf").exists());
    s.stop().await;
}

#[tokio::test]
async fn bad_drops_end_in_failed_with_a_reason_and_duplicates_are_not_uploaded_again() {
    let mut s = setup().await;
    let id = s.create("Lovelace", Some("ada-1")).await.id;
    s.wait_for_stage(id, Stage::ReadyToStart).await;
    let drops: [(&str, Vec<u8>, &str); 5] = [
        (
            "ada-1__W9.pdf",
            b"hello, not a pdf".to_vec(),
            "not a PDF, PNG or JPEG",
        ),
        ("ada-1__SOURCE_OF_FUNDS.pdf", Vec::new(), "empty"),
        (
            "ada-1__PROOF_OF_ADDRESS.pdf",
            vec![b'%'; 11 * 1024 * 1024],
            "10 MiB",
        ),
        (
            "nobody__W9.pdf",
            PDF.to_vec(),
            "no customer has the id or externalId \"nobody\"",
        ),
        (
            "ada-1__PASSPORT.pdf",
            PDF.to_vec(),
            "\"PASSPORT\" is not a document type",
        ),
    ];
    for (name, content, _) in &drops {
        std::fs::write(s.inbox.join(name), content).unwrap();
    }
    for (name, _, why) in &drops {
        s.wait_for(
            &format!("{name} failing"),
            |e| matches!(e, EngineEvent::Upload { path, result: "failed", .. } if path.ends_with(name)),
        )
        .await;
        let note =
            std::fs::read_to_string(s.inbox.join(".failed").join(format!("{name}.error.txt"))).unwrap();
        assert!(note.contains(why), "{name}: {note}");
        assert!(s.inbox.join(".failed").join(name).exists());
    }

    // A file written in two halves is uploaded once, whole (when a file counts as settled
    // is `inbox::Watched::ready_at`'s unit test; here the halves come well within the window).
    let path = s.inbox.join("ada-1__W9.pdf");
    let mut whole = PDF.to_vec();
    whole.extend_from_slice(b"second half\n");
    std::fs::write(&path, &whole[..PDF.len()]).unwrap();
    std::fs::write(&path, &whole).unwrap();
    s.wait_for("the W9 upload", |e| {
        matches!(
            e,
            EngineEvent::Upload {
                result: "uploaded",
                document_type: Some(DocumentType::W9),
                ..
            }
        )
    })
    .await;
    let docs = s.client.documents(id).await.unwrap();
    assert_eq!(docs.data.len(), 1);
    assert_eq!(docs.data[0].size, whole.len() as u64);

    // The same content again: a duplicate, kept under .processed with a new name.
    std::fs::write(&path, &whole).unwrap();
    s.wait_for("the duplicate", |e| {
        matches!(
            e,
            EngineEvent::Upload {
                result: "duplicate",
                ..
            }
        )
    })
    .await;
    assert_eq!(s.client.documents(id).await.unwrap().data.len(), 1);
    assert!(s.inbox.join(".processed/ada-1__W9 (1).pdf").exists());
    s.stop().await;
}

/// Hostile entries (issue 17): a symbolic link (to a document outside the inbox, to
/// `/etc/passwd`, dangling, in a customer's folder), a FIFO and a Unix socket named like
/// documents are not left in the inbox unexplained: each ends in `.failed/` with a note saying
/// why, nothing outside the inbox is read, and nothing waits on them.
#[cfg(unix)]
#[tokio::test]
async fn links_fifos_and_sockets_end_in_failed_with_a_reason_and_nothing_outside_is_read() {
    let mut s = setup().await;
    let id = s.create("Lovelace", Some("ada-1")).await.id;
    s.wait_for_stage(id, Stage::ReadyToStart).await;
    let outside = tempfile::tempdir().unwrap();
    let outside_pdf = outside.path().join("W9.pdf");
    std::fs::write(&outside_pdf, PDF).unwrap();
    std::fs::create_dir_all(s.inbox.join("ada-1")).unwrap();
    let links = [
        ("ada-1__W9.pdf", outside_pdf.as_path()),
        ("ada-1__W8BEN.pdf", Path::new("/etc/passwd")),
        ("ada-1__SOURCE_OF_FUNDS.pdf", Path::new("/nonexistent/kycdash")),
        ("ada-1/PROOF_OF_ADDRESS.pdf", outside_pdf.as_path()),
        // A link to a folder outside, named like a customer's folder: not followed either,
        // and said to be a link (not that its name names no document).
        ("ada-2", outside.path()),
        // A hidden name (an editor's lock link) is ignored, link or not: left where it is.
        ("ada-1/.#W9.pdf", Path::new("/etc/passwd")),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(target, s.inbox.join(name)).unwrap();
    }
    let fifo = std::process::Command::new("mkfifo")
        .arg(s.inbox.join("ada-1__BIOMETRIC_REPORT.pdf"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let _socket =
        std::os::unix::net::UnixListener::bind(s.inbox.join("ada-1__PROOF_OF_ADDRESS.pdf")).unwrap();
    let expected = [
        ("ada-1__W9.pdf", "symbolic link"),
        ("ada-1__W8BEN.pdf", "symbolic link"),
        ("ada-1__SOURCE_OF_FUNDS.pdf", "symbolic link"),
        ("ada-1/PROOF_OF_ADDRESS.pdf", "symbolic link"),
        ("ada-2", "symbolic link"),
        ("ada-1__BIOMETRIC_REPORT.pdf", "not a regular file"),
        ("ada-1__PROOF_OF_ADDRESS.pdf", "not a regular file"),
    ];
    for (name, why) in expected {
        s.wait_for(
            &format!("{name} failing"),
            |e| matches!(e, EngineEvent::Upload { path, result: "failed", .. } if path.ends_with(name)),
        )
        .await;
        let failed = s.inbox.join(".failed");
        let note = std::fs::read_to_string(failed.join(format!("{name}.error.txt"))).unwrap();
        assert!(note.contains(why), "{name}: {note}");
        assert!(failed.join(name).symlink_metadata().is_ok(), "{name} moved");
        assert!(
            s.inbox.join(name).symlink_metadata().is_err(),
            "{name} gone from the inbox"
        );
    }
    // The link moved, not what it points to.
    assert_eq!(std::fs::read(&outside_pdf).unwrap(), PDF);
    // A real folder of that name later, with a file refused: it is set aside beside the link
    // set aside before, never through it (outside the inbox).
    std::fs::create_dir_all(s.inbox.join("ada-2")).unwrap();
    std::fs::write(s.inbox.join("ada-2/W9.pdf"), PDF).unwrap();
    s.wait_for(
        "ada-2/W9.pdf failing",
        |e| matches!(e, EngineEvent::Upload { path, result: "failed", .. } if path.ends_with("ada-2/W9.pdf")),
    )
    .await;
    assert!(s.inbox.join(".failed/ada-2 (1)/W9.pdf").is_file());
    let outside_entries = std::fs::read_dir(outside.path()).unwrap().count();
    assert_eq!(outside_entries, 1, "nothing was moved outside the inbox");
    // Nothing waits on them: a good file after them goes through, and it is the only upload.
    std::fs::write(s.inbox.join("ada-1__W9__signed.pdf"), PDF).unwrap();
    s.wait_for("the good file's upload", |e| {
        matches!(e, EngineEvent::Upload { result: "uploaded", path, .. } if path.ends_with("ada-1__W9__signed.pdf"))
    })
    .await;
    assert_eq!(s.client.documents(id).await.unwrap().data.len(), 1);
    assert!(
        s.inbox.join("ada-1/.#W9.pdf").symlink_metadata().is_ok(),
        "the hidden link is left alone"
    );
    assert!(s.inbox.join(".failed/ada-1/.#W9.pdf").symlink_metadata().is_err());
    s.stop().await;
}

/// A file name is data, not part of the request's syntax: one with a newline, a carriage
/// return, a quote or a backslash (an inbox name can hold any of them) still uploads, and
/// the name on file keeps no control character (issue 17's hostile files: the multipart
/// header broke on the newline and the upload was refused as malformed).
#[tokio::test]
async fn a_file_name_with_a_newline_or_a_quote_uploads_and_is_kept_without_control_characters() {
    let (_sandbox, client) = sandbox_and_client().await;
    let id = client
        .create_customer(&CustomerProfile::default())
        .await
        .unwrap()
        .id;
    let names = [
        "ada-6__W9\n.pdf",
        "a\r\nContent-Type: text/html\r\n\r\nx.pdf",
        "say \"hi\"\\.pdf",
    ];
    for (n, name) in names.into_iter().enumerate() {
        let content = [PDF, format!("% {n}\n").as_bytes()].concat();
        let doc = client
            .upload_document(id, DocumentType::W9, name, &content, None)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        let kept = doc.file_name.unwrap_or_default();
        assert!(!kept.chars().any(char::is_control), "{kept:?}");
        assert!(!kept.is_empty(), "{name:?}");
    }
    assert_eq!(client.documents(id).await.unwrap().data.len(), 3);
}

#[tokio::test]
async fn once_sees_everyone_and_a_second_once_reports_only_what_changed() {
    let (sandbox, client) = sandbox_and_client().await;
    let bare = client
        .create_customer(&CustomerProfile::default())
        .await
        .unwrap()
        .id;
    let mut ids = vec![bare];
    for _ in 0..3 {
        let profile: CustomerProfile = serde_json::from_value(json!({
            "kyc": {"firstName": "A", "lastName": "B", "birthDate": "1990-04-12", "documentNumber": "X1"}
        }))
        .unwrap();
        ids.push(client.create_customer(&profile).await.unwrap().id);
    }
    client.start_kyc(ids[1], None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let url = sandbox.base_url().to_string();
    let first = run_engine(&url, dir.path(), true, None).await;
    assert!(
        matches!(first.first(), Some(EngineEvent::Started { .. })),
        "{first:?}"
    );
    assert!(matches!(first.last(), Some(EngineEvent::Stopped)), "{first:?}");
    let stage = |seen: &[EngineEvent], id: Uuid| {
        seen.iter().find_map(|e| match e {
            EngineEvent::StageChanged {
                customer_id,
                from,
                to,
                ..
            } if *customer_id == id => Some((*from, *to)),
            _ => None,
        })
    };
    assert_eq!(stage(&first, bare), Some((None, Stage::NeedsProfile)));
    assert_eq!(stage(&first, ids[1]), Some((None, Stage::AwaitingSdk)));
    assert_eq!(stage(&first, ids[2]), Some((None, Stage::ReadyToStart)));
    assert!(
        first.iter().any(|e| matches!(
            e,
            EngineEvent::Sweep {
                customers: 4,
                changed: 4,
                ..
            }
        )),
        "{first:#?}"
    );

    client.start_kyc(ids[2], None).await.unwrap();
    let second = run_engine(&url, dir.path(), true, None).await;
    let changes: Vec<_> = second
        .iter()
        .filter(|e| matches!(e, EngineEvent::StageChanged { .. }))
        .collect();
    assert_eq!(changes.len(), 1, "{second:#?}");
    assert_eq!(
        stage(&second, ids[2]),
        Some((Some(Stage::ReadyToStart), Stage::AwaitingSdk))
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_second_engine_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _held = engine::lock_data_dir(dir.path()).unwrap();
    let err = engine::lock_data_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("another kycdash is using"), "{err}");
}

#[tokio::test]
async fn a_refused_key_is_fatal() {
    let sandbox = sandbox::start(SandboxConfig {
        api_keys: vec!["sk_test_other".parse::<ApiKey>().unwrap()],
        ..SandboxConfig::ephemeral()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    // The receiver registers at start: a refused key stops it there.
    let err = engine::start(engine_config(sandbox.base_url(), dir.path(), true, false), lock)
        .await
        .err()
        .expect("a refused key");
    assert!(err.to_string().contains("401"), "{err}");
    // Without a receiver, the first sweep meets the refusal and the engine stops.
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let engine = engine::start(engine_config(sandbox.base_url(), dir.path(), false, false), lock)
        .await
        .unwrap();
    let (_, mut events, task) = engine.into_parts();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
    {
        seen.push(event);
    }
    task.await.unwrap();
    assert!(
        seen.iter()
            .any(|e| matches!(e, EngineEvent::Fatal { error } if error.contains("401"))),
        "{seen:#?}"
    );
    assert!(matches!(seen.last(), Some(EngineEvent::Stopped)));
    sandbox.shutdown().await;
}

/// Runs one engine until it stops by itself (`--once`) or until `stop_after` events.
async fn run_engine(url: &str, dir: &Path, once: bool, stop_after: Option<usize>) -> Vec<EngineEvent> {
    let lock = engine::lock_data_dir(dir).unwrap();
    let (handle, mut events, task) = engine::start(engine_config(url, dir, false, once), lock)
        .await
        .unwrap()
        .into_parts();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .unwrap()
    {
        seen.push(event);
        if stop_after.is_some_and(|n| seen.len() == n) {
            handle.stop();
        }
    }
    task.await.unwrap();
    seen
}

fn first_sightings(seen: &[EngineEvent]) -> Vec<Uuid> {
    seen.iter()
        .filter_map(|e| match e {
            EngineEvent::StageChanged {
                customer_id,
                from: None,
                ..
            } => Some(*customer_id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_restart_mid_sweep_loses_nothing_and_repeats_nothing() {
    let (sandbox, client) = sandbox_and_client().await;
    // More than two pages of the listing (100 a page), so it is processed page by page.
    let mut ids = Vec::new();
    for _ in 0..250 {
        ids.push(
            client
                .create_customer(&CustomerProfile::default())
                .await
                .unwrap()
                .id,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let url = sandbox.base_url().to_string();
    // Stopped a few events into its first sweep…
    let first = run_engine(&url, dir.path(), false, Some(5)).await;
    assert!(matches!(first.last(), Some(EngineEvent::Stopped)));
    // …then a --once finishes the job without reporting anyone twice.
    let second = run_engine(&url, dir.path(), true, None).await;
    assert!(
        second
            .iter()
            .any(|e| matches!(e, EngineEvent::Sweep { customers: 250, .. })),
        "the sweep counts every page: {:?}",
        second.iter().find(|e| matches!(e, EngineEvent::Sweep { .. }))
    );
    let mut all = first_sightings(&first);
    all.extend(first_sightings(&second));
    let unique: std::collections::HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "someone was reported twice");
    assert_eq!(
        unique,
        ids.iter().copied().collect(),
        "someone was never reported"
    );
    // Nothing changed since: nothing to report.
    let third = run_engine(&url, dir.path(), true, None).await;
    assert!(
        !third
            .iter()
            .any(|e| matches!(e, EngineEvent::StageChanged { .. })),
        "{third:#?}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_upload_interrupted_before_it_was_recorded_is_not_uploaded_twice() {
    let (sandbox, client) = sandbox_and_client().await;
    let id = client
        .create_customer(&CustomerProfile::default())
        .await
        .unwrap()
        .id;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join(format!("{id}__W9.pdf")), PDF).unwrap();
    // The last process uploaded this file and died before it could record or move it.
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(PDF))
    };
    client
        .upload_document(
            id,
            DocumentType::W9,
            &format!("{id}__W9.pdf"),
            PDF,
            Some(kycdash::sync::inbox::upload_key(&sha, id, DocumentType::W9)),
        )
        .await
        .unwrap();
    // A file dropped while nothing ran is processed at start.
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) =
        engine::start(engine_config(sandbox.base_url(), dir.path(), false, false), lock)
            .await
            .unwrap()
            .into_parts();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let EngineEvent::Upload { result, error, .. } = &event {
            assert_eq!(*result, "uploaded", "{error:?}");
            break;
        }
    }
    handle.stop();
    task.await.unwrap();
    assert_eq!(
        client.documents(id).await.unwrap().data.len(),
        1,
        "uploaded twice"
    );
    assert!(inbox.join(format!(".processed/{id}__W9.pdf")).exists());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_handles_upload_follows_the_inbox_rule_and_is_reported() {
    let mut s = setup().await;
    let id = s.create("Lovelace", None).await.id;
    s.wait_for_stage(id, Stage::ReadyToStart).await;
    assert!(
        !s.handle
            .upload(id, DocumentType::W9, "w9.pdf", PDF)
            .await
            .unwrap()
    );
    assert!(
        s.handle
            .upload(id, DocumentType::W9, "w9.pdf", PDF)
            .await
            .unwrap(),
        "the same file again is a duplicate"
    );
    for result in ["uploaded", "duplicate"] {
        s.wait_for(result, |e| matches!(e, EngineEvent::Upload { result: r, customer_id: Some(c), .. } if *r == result && *c == id))
            .await;
    }
    assert_eq!(s.client.documents(id).await.unwrap().data.len(), 1);
    // The same content through the inbox is a duplicate too.
    std::fs::write(s.inbox.join(format!("{id}__W9.pdf")), PDF).unwrap();
    s.wait_for(
        "the inbox duplicate",
        |e| matches!(e, EngineEvent::Upload { result: "duplicate", path, .. } if path.contains("__W9")),
    )
    .await;
    assert_eq!(s.client.documents(id).await.unwrap().data.len(), 1);
    s.stop().await;
}

/// Runs a continuous engine (no receiver) until its first sweep ends, then stops it; every
/// event it emitted.
async fn run_to_first_sweep(url: &str, dir: &Path) -> Vec<EngineEvent> {
    let lock = engine::lock_data_dir(dir).unwrap();
    let (handle, mut events, task) = engine::start(engine_config(url, dir, false, false), lock)
        .await
        .unwrap()
        .into_parts();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .unwrap()
    {
        if matches!(event, EngineEvent::Sweep { .. }) {
            handle.stop();
        }
        seen.push(event);
    }
    task.await.unwrap();
    seen
}

/// A `watch` killed (or stopped) misses the webhooks sent while it is down, and a restart on
/// another port drops its old endpoint with them: the restart's first sweep must read every
/// open onboarding again, as after an outage, not only those it does not know (issue 17's
/// crash campaign found stages left wrong after the restart's first sweep).
#[tokio::test]
async fn a_restart_s_first_sweep_reads_what_changed_while_nothing_ran() {
    let (sandbox, client) = sandbox_and_client().await;
    let profile: CustomerProfile = serde_json::from_value(json!({
        "ipAddress": "203.0.113.7",
        "kyc": {
            "firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1",
            "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001", "countryCode": "US"},
            "nationality": "US", "occupation": "11"
        }
    }))
    .unwrap();
    let id = client.create_customer(&profile).await.unwrap().id;
    client.start_kyc(id, None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = sandbox.base_url().to_string();
    let first = run_to_first_sweep(&url, dir.path()).await;
    assert!(
        first.iter().any(|e| matches!(e, EngineEvent::StageChanged { customer_id, to: Stage::AwaitingSdk, .. } if *customer_id == id)),
        "{first:#?}"
    );
    // While nothing runs, the SDK flow completes: its webhook reaches nobody.
    client.simulate(id, SimulateAction::SdkComplete).await.unwrap();

    let second = run_to_first_sweep(&url, dir.path()).await;
    let sweep = second
        .iter()
        .position(|e| matches!(e, EngineEvent::Sweep { .. }))
        .expect("a sweep");
    assert!(
        second[..sweep].iter().any(|e| matches!(
            e,
            EngineEvent::StageChanged {
                customer_id,
                from: Some(Stage::AwaitingSdk),
                to: Stage::CollectingRequirements,
                ..
            } if *customer_id == id
        )),
        "the change made while nothing ran is reported by the restart's first sweep: {second:#?}"
    );
    sandbox.shutdown().await;
}
