use super::*;
use crate::sandbox::store::{Store, open_with_one_tenant};

fn settings(store: &Store, tenant: &TenantId) -> TenantSettings {
    store.read(|m| m.tenants[tenant].settings())
}

fn profile() -> CustomerProfile {
    let body = serde_json::json!({"email": "ada@example.com", "ipAddress": "203.0.113.7"});
    CustomerProfile::from_json(body, time::macros::date!(2026 - 01 - 01)).unwrap()
}

#[tokio::test]
async fn a_customer_made_before_the_clock_moved_is_stored_as_of_the_moved_clock() {
    let (tenant, store, _thread) = open_with_one_tenant();

    let as_made = NewCustomer::new(profile(), settings(&store, &tenant)).unwrap();
    let id = as_made.record.customer.id;
    let t = tenant.clone();
    store
        .run(move |db| advance_clock(db, &t, 86_400))
        .await
        .unwrap()
        .unwrap();
    let moved = settings(&store, &tenant).now;
    let t = tenant.clone();
    let created = store
        .run(move |db| create_customer(db, &t, as_made))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(created.id, id, "the id is kept");
    let answered: Customer = serde_json::from_str(created.body.get()).unwrap();
    let stored = store.read(|m| m.tenants[&tenant].customers[&id].customer.clone());
    assert_eq!(answered, stored, "the answer is what is stored");
    assert!(
        stored.created_at >= moved && stored.updated_at == stored.created_at,
        "created at {} (made a day earlier), the clock now {moved}",
        stored.created_at
    );
    let event: serde_json::Value = store
        .run(|db| {
            db.conn
                .query_row("SELECT body FROM events", [], |row| row.get::<_, String>(0))
                .unwrap()
        })
        .await
        .map(|body| serde_json::from_str(&body).unwrap())
        .unwrap();
    let answered: serde_json::Value = serde_json::from_str(created.body.get()).unwrap();
    assert_eq!(
        event["createdAt"], answered["createdAt"],
        "the CUSTOMER_CREATED event is stamped with it"
    );
}

#[tokio::test]
async fn creation_order_stays_created_at_order_when_an_older_create_is_stored_last() {
    let (tenant, store, _thread) = open_with_one_tenant();
    let now = settings(&store, &tenant);
    let earlier = TenantSettings {
        now: now.now - time::Duration::seconds(1),
        ..now
    };
    // Made ready a second apart, stored in the other order (the later one overtook).
    let first_made = NewCustomer::new(profile(), earlier).unwrap();
    let last_made = NewCustomer::new(profile(), now).unwrap();
    let t = tenant.clone();
    store
        .run(move |db| create_customer(db, &t, last_made))
        .await
        .unwrap()
        .unwrap();
    let t = tenant.clone();
    store
        .run(move |db| create_customer(db, &t, first_made))
        .await
        .unwrap()
        .unwrap();

    let in_order: Vec<time::OffsetDateTime> = store.read(|m| {
        let state = &m.tenants[&tenant];
        state
            .order
            .values()
            .map(|id| state.customers[id].customer.created_at)
            .collect()
    });
    assert_eq!(in_order.len(), 2);
    assert!(
        in_order[0] <= in_order[1],
        "createdAt in creation order: {in_order:?}"
    );
}
