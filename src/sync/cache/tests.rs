use super::*;
use crate::domain::{CustomerProfile, Stage};

fn a_status(customer: &Customer) -> ComplianceStatus {
    crate::domain::evaluate(
        customer,
        &Default::default(),
        &view(),
        crate::domain::Strategy::CfKyc,
        OffsetDateTime::UNIX_EPOCH,
    )
}

fn view() -> WorkflowView {
    WorkflowView {
        stage: Stage::ReadyToStart,
        onboarding: None,
        sdk: None,
        identity_verified: false,
    }
}

#[test]
fn a_cache_written_before_the_overview_loads_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let profile: CustomerProfile = serde_json::from_value(serde_json::json!({
        "email": "ada@example.com",
        "externalId": "crm-1",
        "kyc": {"firstName": "Ada", "lastName": "Lovelace"}
    }))
    .unwrap();
    let customer = Customer::new(Uuid::new_v4(), profile, now);
    {
        let mut conn = Connection::open(&path).unwrap();
        crate::sqlite::migrate(&mut conn, &[V1]).unwrap();
        conn.execute(
            "INSERT INTO customers (id, external_id, body) VALUES (?1, ?2, ?3)",
            params![
                customer.id.to_string(),
                "crm-1",
                serde_json::to_string(&customer).unwrap()
            ],
        )
        .unwrap();
        let (status, body) = StatusSummary::of(&a_status(&customer)).unwrap();
        conn.execute(
            "INSERT INTO statuses (customer_id, body, summary, fetched_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                customer.id.to_string(),
                body,
                serde_json::to_string(&status).unwrap(),
                to_ms(now)
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO workflows (customer_id, view, since_ms) VALUES (?1, ?2, ?3)",
            params![
                customer.id.to_string(),
                serde_json::to_string(&view()).unwrap(),
                to_ms(now)
            ],
        )
        .unwrap();
    }
    let conn = open(&path).unwrap();
    let snapshot = load(&conn).unwrap();
    let cached = &snapshot.customers[0];
    assert_eq!(
        cached.status.as_ref().map(|(s, at)| (s.hash, *at)),
        Some((StatusSummary::of(&a_status(&customer)).unwrap().0.hash, now))
    );
    assert_eq!(cached.workflow, Some((view(), now)));
    assert!(self::status(&conn, customer.id).unwrap().is_some());
    let summary = &cached.customer;
    assert_eq!(*summary, CustomerSummary::of(&customer).unwrap().0);
    assert_eq!(&*summary.name, "Ada Lovelace");
    assert_eq!(summary.external_id.as_deref(), Some("crm-1"));
}

#[test]
fn an_unreadable_row_in_an_upgraded_cache_keeps_its_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let id = Uuid::new_v4();
    {
        let mut conn = Connection::open(&path).unwrap();
        crate::sqlite::migrate(&mut conn, &[V1]).unwrap();
        conn.execute(
            "INSERT INTO customers (id, external_id, body) VALUES (?1, 'crm-9', '{not json')",
            [id.to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO workflows (customer_id, view, since_ms) VALUES (?1, ?2, ?3)",
            params![
                id.to_string(),
                serde_json::to_string(&view()).unwrap(),
                to_ms(now)
            ],
        )
        .unwrap();
    }
    let snapshot = load(&open(&path).unwrap()).unwrap();
    let cached = &snapshot.customers[0];
    assert_eq!(cached.customer.id, id);
    assert_eq!(&*cached.customer.name, "crm-9");
    assert_eq!(cached.customer.hash, 0, "rewritten by the next listing");
    assert_eq!(cached.workflow, Some((view(), now)));
}

#[tokio::test]
async fn rows_written_in_batches_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let (writer, thread) = spawn_writer(open(&path).unwrap(), |_| {});
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let customer = Customer::new(Uuid::new_v4(), CustomerProfile::default(), now);
    let (summary, body) = CustomerSummary::of(&customer).unwrap();
    writer
        .write(Write::Customer {
            summary: Arc::new(summary.clone()),
            body,
        })
        .unwrap();
    let view = WorkflowView {
        stage: Stage::ReadyToStart,
        onboarding: None,
        sdk: None,
        identity_verified: false,
    };
    writer
        .write(Write::Workflow {
            customer_id: customer.id,
            view: view.clone(),
            since: now,
        })
        .unwrap();
    for _ in 0..2 {
        writer
            .write(Write::Event {
                id: "evt_1".into(),
                event_type: "CUSTOMER_CREATED".into(),
                customer_id: Some(customer.id),
                body: "{}".into(),
                received_at: now,
            })
            .unwrap();
    }
    writer.flush().await.unwrap();
    drop(writer);
    thread.join().unwrap();

    let snapshot = load(&open(&path).unwrap()).unwrap();
    assert_eq!(snapshot.customers.len(), 1);
    assert_eq!(snapshot.customers[0].customer, summary);
    let conn = open(&path).unwrap();
    assert_eq!(self::customer(&conn, customer.id).unwrap(), Some(customer));
    assert_eq!(self::customer(&conn, Uuid::nil()).unwrap(), None);
    assert_eq!(snapshot.customers[0].workflow, Some((view, now)));
    // Event ids are not loaded (memory would grow with every webhook ever received); the
    // receiver asks the cache instead.
    let stored = super::StoredEvents::open(&path).unwrap();
    assert!(stored.contains("evt_1").await);
    assert!(!stored.contains("evt_2").await);
}

/// `--retain-days`: webhook events and timeline lines older than the cut are pruned, the
/// newer ones and every other row kept.
#[tokio::test]
async fn pruning_forgets_old_events_and_timeline_lines_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let (writer, thread) = spawn_writer(open(&path).unwrap(), |_| {});
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let customer = Uuid::new_v4();
    for (n, age_days) in [(1, 100), (2, 10)] {
        let at = now - time::Duration::days(age_days);
        writer
            .write(Write::Event {
                id: format!("evt_{n}"),
                event_type: "CUSTOMER_UPDATED".into(),
                customer_id: Some(customer),
                body: "{}".into(),
                received_at: at,
            })
            .unwrap();
        writer
            .write(Write::Timeline {
                customer_id: customer,
                at,
                kind: "webhook",
                text: format!("line {n}"),
            })
            .unwrap();
    }
    writer
        .write(Write::Setting {
            key: "kept".into(),
            value: Some("yes".into()),
        })
        .unwrap();
    writer
        .write(Write::Prune {
            before: now - time::Duration::days(90),
        })
        .unwrap();
    writer.flush().await.unwrap();
    drop(writer);
    thread.join().unwrap();

    let stored = super::StoredEvents::open(&path).unwrap();
    assert!(!stored.contains("evt_1").await, "100 days old: pruned");
    assert!(stored.contains("evt_2").await, "10 days old: kept");
    let conn = open(&path).unwrap();
    let lines: Vec<String> = conn
        .prepare("SELECT text FROM timeline ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lines, ["line 2"]);
    assert_eq!(
        load(&conn).unwrap().settings.get("kept").map(String::as_str),
        Some("yes")
    );
}

/// Holds the writer thread in the commit of its first batch until told to go on, so that
/// everything queued meanwhile makes one batch.
fn gate(conn: &mut Connection) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let mut once = Some((entered_tx, go_rx));
    conn.commit_hook(Some(move || {
        if let Some((entered, go)) = once.take() {
            let _ = entered.send(());
            let _ = go.recv();
        }
        false
    }))
    .unwrap();
    (entered, go)
}

fn customer_write(id: Uuid, body: String) -> Write {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let summary = CustomerSummary::of(&Customer::new(id, Default::default(), now))
        .unwrap()
        .0;
    Write::Customer {
        summary: Arc::new(summary),
        body,
    }
}

fn count(conn: &Connection, sql: &str, id: impl ToString) -> i64 {
    conn.query_row(sql, [id.to_string()], |row| row.get(0)).unwrap()
}

/// SPEC §10: a row the database refuses costs itself alone. The rest of its batch is stored,
/// the refused row is named to whoever must write it again, and the flush behind it hears
/// that something before it was lost.
#[tokio::test]
async fn a_refused_row_is_named_and_the_rest_of_its_batch_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let (good, refused, also_good) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut conn = open(&path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER refuse BEFORE INSERT ON customers WHEN NEW.id = '{refused}'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    ))
    .unwrap();
    let (entered, go) = gate(&mut conn);
    let (reports_tx, reports) = std::sync::mpsc::channel();
    let (writer, thread) = spawn_writer(conn, move |lost| reports_tx.send(lost).unwrap());
    let setting = |key: &str| Write::Setting {
        key: key.into(),
        value: Some("1".into()),
    };
    writer.write(setting("first")).unwrap();
    entered.recv().unwrap();
    let (before_tx, before) = oneshot::channel();
    let (after_tx, after) = oneshot::channel();
    for write in [
        customer_write(good, "{}".into()),
        Write::Flush(before_tx),
        customer_write(refused, "{}".into()),
        customer_write(also_good, "{}".into()),
        Write::Event {
            id: "evt_1".into(),
            event_type: "CUSTOMER_CREATED".into(),
            customer_id: Some(refused),
            body: "{}".into(),
            received_at: OffsetDateTime::UNIX_EPOCH,
        },
        Write::Flush(after_tx),
    ] {
        writer.write(write).unwrap();
    }
    go.send(()).unwrap();
    assert_eq!(before.await, Ok(true), "nothing before it was lost");
    assert_eq!(after.await, Ok(false), "a row before it was lost");
    let lost = reports.recv().unwrap();
    assert_eq!(
        lost,
        vec![Lost {
            rows: vec![Row::Customer(refused)],
            reason: "refused by the test".into()
        }]
    );
    let read = open(&path).unwrap();
    let stored = "SELECT count(*) FROM customers WHERE id = ?1";
    assert_eq!(count(&read, stored, good), 1);
    assert_eq!(count(&read, stored, also_good), 1);
    assert_eq!(count(&read, stored, refused), 0);
    assert_eq!(
        count(
            &read,
            "SELECT count(*) FROM webhook_events WHERE id = ?1",
            "evt_1"
        ),
        1
    );

    // Let in, the row is stored when written again, and the next flush hears all is well.
    read.execute_batch("DROP TRIGGER refuse").unwrap();
    writer.write(customer_write(refused, "{}".into())).unwrap();
    writer.flush().await.unwrap();
    assert_eq!(count(&read, stored, refused), 1);
    drop(writer);
    thread.join().unwrap();
    assert_eq!(reports.try_iter().count(), 0, "reported once");
}

/// A cache that cannot store anything (here: full) loses the whole batch at once, reported
/// once with every row in it, rather than failing each row again on its own.
#[tokio::test]
async fn a_full_cache_reports_the_whole_batch_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let mut conn = open(&path).unwrap();
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0)).unwrap();
    conn.pragma_update(None, "max_page_count", pages).unwrap();
    let (entered, go) = gate(&mut conn);
    let (reports_tx, reports) = std::sync::mpsc::channel();
    let (writer, thread) = spawn_writer(conn, move |lost| reports_tx.send(lost).unwrap());
    // A small row still fits in the pages there are.
    writer
        .write(Write::Setting {
            key: "first".into(),
            value: Some("1".into()),
        })
        .unwrap();
    entered.recv().unwrap();
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    for id in ids {
        writer.write(customer_write(id, "x".repeat(20_000))).unwrap();
    }
    let (flushed_tx, flushed) = oneshot::channel();
    writer.write(Write::Flush(flushed_tx)).unwrap();
    go.send(()).unwrap();
    assert_eq!(flushed.await, Ok(false));
    drop(writer);
    thread.join().unwrap();
    let reports: Vec<Vec<Lost>> = reports.try_iter().collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let [lost] = reports[0].as_slice() else {
        panic!("one reason for the whole batch: {reports:?}");
    };
    assert_eq!(lost.rows, ids.map(Row::Customer).to_vec());
    assert!(lost.reason.contains("full"), "{}", lost.reason);
}

/// A webhook is answered 2xx once its row is committed, and the sender never sends it again:
/// the commit must reach the disk, not only the page cache. With `synchronous=NORMAL` a WAL
/// commit is not synced, and benches/disk.py lost 17 acknowledged webhooks (and the endpoint's
/// secret, so every later delivery was refused 401) when the file system went read-only
/// (ext4's emergency read-only after an error: dirty pages are never written back).
#[test]
fn every_commit_of_the_cache_is_synced_to_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(&dir.path().join("cache.db")).unwrap();
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    assert_eq!(synchronous, 2, "synchronous must be FULL (2), not {synchronous}");
}
