#!/usr/bin/env python3
"""Crash, sandbox (issue 17): `kill -9` of `kycdash sandbox` with deliveries pending and writers
in flight, then a restart on the same `--db` and port.

Each round: writer threads create customers (Idempotency-Key), patch each once (a unique email)
and upload a document (Idempotency-Key), recording every 2xx answer; in about half the rounds
the `watch` whose receiver is registered is stopped first (its receiver down, so the outbox
holds events and their deliveries back off), in the others it keeps running (deliveries in
flight at the kill). At a random moment (seeded) the sandbox gets SIGKILL; it is started again
on the same database and port, and every acknowledged write is checked: the customer is there
with its content, the patch is there, the document is there with its SHA-256, and the same
idempotent POST sent again answers the same resource. POSTs whose answer the kill swallowed are
sent again with their key: each must end as exactly one resource.

At the end, with `watch` running, the sandbox clock is advanced until the outbox is empty:
every delivery of the watch's endpoint DELIVERED (none FAILED), each event id in the cache's
webhook_events, and exactly one `webhook` line with duplicate=false per event id over all the
watch runs.

    KYCDASH_BIN=target/release/kycdash python3 benches/crash_sandbox.py [--kills 20] [--seed 17]

Exits 1 when a goal is missed. Loopback only; everything started is stopped.
"""
import argparse, collections, hashlib, os, random, sys, threading, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kycbench as kb  # noqa: E402


def upload_body(customer_id, doc_type, content, boundary):
    parts = []
    for name, value in (("customerId", customer_id), ("type", doc_type)):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="sof.pdf"\r\n'
                 f'Content-Type: application/pdf\r\n\r\n'.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


class Writes:
    """What the writers sent and what was acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.creates = []   # dicts: key, body, id (None when unacknowledged)
        self.patches = []   # (customer id, email) acknowledged
        self.uploads = []   # dicts: key, customer, raw, boundary, sha, id (None when unacknowledged)
        self.counts = collections.Counter()


def writer(api, writes, stop, rng_seed):
    rng = random.Random(rng_seed)
    while not stop.is_set():
        tag = uuid.uuid4().hex[:12]
        key = "c-" + uuid.uuid4().hex
        body = kb.customer_body(last_name="Crash" + tag, external_id="crash-" + tag)
        rec = {"key": key, "body": body, "id": None}
        with writes.lock:
            writes.creates.append(rec)
        status, answer = api.post("/v1/customers", body, idem=key)
        if status not in (200, 201):
            writes.counts["create_unanswered" if status is None else f"create_{status}"] += 1
            continue
        rec["id"] = answer["id"]
        writes.counts["create_ack"] += 1
        if stop.is_set():
            break
        email = f"{tag}@example.com"
        status, answer = api.patch(f"/v1/customers/{rec['id']}", {"email": email})
        if status == 200:
            with writes.lock:
                writes.patches.append((rec["id"], email))
            writes.counts["patch_ack"] += 1
        else:
            writes.counts["patch_unanswered" if status is None else f"patch_{status}"] += 1
        content = kb.PDF + f"%{tag}{rng.random()}\n".encode()
        boundary = "b" + uuid.uuid4().hex
        up = {"key": "u-" + uuid.uuid4().hex, "customer": rec["id"], "boundary": boundary,
              "raw": upload_body(rec["id"], "SOURCE_OF_FUNDS", content, boundary),
              "sha": hashlib.sha256(content).hexdigest(), "id": None}
        with writes.lock:
            writes.uploads.append(up)
        status, answer = post_upload(api, up)
        if status == 201:
            up["id"] = answer["id"]
            writes.counts["upload_ack"] += 1
        else:
            writes.counts["upload_unanswered" if status is None else f"upload_{status}"] += 1


def post_upload(api, up):
    return api.call("POST", "/v1/compliance/upload-doc", raw=up["raw"], idem=up["key"],
                    content_type=f"multipart/form-data; boundary={up['boundary']}")


def check_writes(api, writes, done, problems, figures):
    """Checks the writes not checked yet (indices from `done`); answers the new `done`."""
    c0, p0, u0 = done
    creates, patches, uploads = writes.creates[c0:], writes.patches[p0:], writes.uploads[u0:]
    for rec in creates:
        status, answer = api.post("/v1/customers", rec["body"], idem=rec["key"])
        if status not in (200, 201):
            problems.append(f"create retry {rec['key']}: {status} {answer}")
            continue
        if rec["id"] is not None:
            figures["acked_creates_checked"] += 1
            if answer["id"] != rec["id"]:
                problems.append(f"create retry {rec['key']} answered {answer['id']}, first {rec['id']}")
            status, got = api.get(f"/v1/customers/{rec['id']}")
            if status != 200:
                problems.append(f"acknowledged customer {rec['id']} lost: {status}")
            elif got.get("externalId") != rec["body"]["externalId"] or \
                    got["kyc"]["lastName"] != rec["body"]["kyc"]["lastName"]:
                problems.append(f"acknowledged customer {rec['id']} differs: {got}")
        else:
            figures["unanswered_creates_retried"] += 1
            rec["id"] = answer["id"]
    for cid, email in patches:
        figures["acked_patches_checked"] += 1
        status, got = api.get(f"/v1/customers/{cid}")
        if status != 200 or got.get("email") != email:
            problems.append(f"acknowledged patch of {cid} (email {email}) lost: {status} {got}")
    for up in uploads:
        status, answer = post_upload(api, up)
        if status != 201:
            problems.append(f"upload retry {up['key']}: {status} {answer}")
            continue
        if up["id"] is not None:
            figures["acked_uploads_checked"] += 1
            if answer["id"] != up["id"]:
                problems.append(f"upload retry {up['key']} answered {answer['id']}, first {up['id']}")
        else:
            figures["unanswered_uploads_retried"] += 1
            up["id"] = answer["id"]
        status, docs = api.get(f"/v1/compliance/documents/{up['customer']}")
        mine = [d for d in (docs or {}).get("data", []) if d["id"] == up["id"]] if status == 200 else []
        if len(mine) != 1 or mine[0]["sha256"] != up["sha"]:
            problems.append(f"document {up['id']} of {up['customer']} missing or wrong: {status}")
    return len(writes.creates), len(writes.patches), len(writes.uploads)


def start_watch(binp, url, data_dir, port, runs):
    runs.append(kb.started_watch(binp, url, data_dir, port))
    return runs[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--max-delay", type=float, default=3.0, help="latest kill, seconds into a round")
    opts = ap.parse_args()
    rng = random.Random(opts.seed)
    binp = kb.binary()
    work = kb.tempdir("kyc-crash-sandbox-")
    db, data_dir = os.path.join(work, "sandbox.db"), os.path.join(work, "data")
    started = time.monotonic()
    sandbox = kb.Sandbox(binp, db)
    wport = kb.free_port()
    runs = []
    watch = start_watch(binp, sandbox.url, data_dir, wport, runs)
    writes, problems, figures = Writes(), [], collections.Counter()
    done = (0, 0, 0)
    # The watch registers its endpoint after it starts; wait for it so the first round's
    # events already have deliveries.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not kb.query(db, "SELECT 1 FROM webhook_endpoints WHERE deleted = 0"):
        time.sleep(0.2)
    for round_no in range(opts.kills):
        receiver_down = rng.random() < 0.5
        if receiver_down and watch is not None:
            watch.term()
            watch = None
            figures["rounds_receiver_down"] += 1
        stop = threading.Event()
        api = kb.Api(sandbox.url, timeout=5)
        threads = [threading.Thread(target=writer, args=(api, writes, stop, rng.random()), daemon=True)
                   for _ in range(opts.writers)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, opts.max_delay))
        pending = kb.query(db, "SELECT count(*) FROM deliveries WHERE status IN ('PENDING','IN_FLIGHT')")[0][0]
        figures["pending_at_kill_sum"] += pending
        figures["pending_at_kill_max"] = max(figures["pending_at_kill_max"], pending)
        sandbox.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        sandbox.start()
        done = check_writes(sandbox.api(), writes, done, problems, figures)
        if watch is None:
            watch = start_watch(binp, sandbox.url, data_dir, wport, runs)
        print(f"round {round_no + 1}/{opts.kills}: receiver {'down' if receiver_down else 'up'}, "
              f"{pending} deliveries pending at the kill, problems so far {len(problems)}", flush=True)
    # Every creation retried once more now that nothing is killed: one customer per externalId.
    per_ext = collections.Counter(c.get("externalId") for c in sandbox.api().all_customers())
    for rec in writes.creates:
        if per_ext[rec["body"]["externalId"]] != 1:
            problems.append(f"externalId {rec['body']['externalId']}: {per_ext[rec['body']['externalId']]} customers")
    # Drain the outbox to the running watch: advance the clock past any backoff.
    api = sandbox.api()
    drain_started = time.monotonic()
    while time.monotonic() - drain_started < 180:
        left = kb.query(db, "SELECT count(*) FROM deliveries WHERE status IN ('PENDING','IN_FLIGHT')")[0][0]
        if left == 0:
            break
        api.advance(600)
        time.sleep(1)
    figures["drain_seconds"] = round(time.monotonic() - drain_started, 1)
    statuses = dict(kb.query(db, "SELECT status, count(*) FROM deliveries GROUP BY status"))
    # Let the last acknowledged webhooks reach stdout, then stop the watch cleanly.
    time.sleep(2)
    watch.term()
    events = [r[0] for r in kb.query(db, "SELECT DISTINCT e.id FROM deliveries d JOIN events e ON e.seq = d.event_seq")]
    cache_ids = {r[0] for r in kb.query(os.path.join(data_dir, "cache.db"), "SELECT id FROM webhook_events")}
    first_lines, dup_lines = collections.Counter(), 0
    for proc in runs:
        for line in proc.out.snapshot():
            if isinstance(line, dict) and line.get("kind") == "webhook":
                if line.get("duplicate"):
                    dup_lines += 1
                else:
                    first_lines[line["eventId"]] += 1
            if isinstance(line, dict) and line.get("kind") == "_unparsed":
                problems.append(f"watch printed a line that is not JSON: {line['text']}")
        for line in proc.err.snapshot():
            if "panicked" in line or "internal error" in line:
                problems.append(f"watch: {line}")
    missing_cache = [e for e in events if e not in cache_ids]
    not_once = [e for e in events if first_lines[e] != 1]
    undelivered = sum(n for s, n in statuses.items() if s != "DELIVERED")
    if missing_cache:
        problems.append(f"{len(missing_cache)} events not in cache.db, e.g. {missing_cache[:3]}")
    if not_once:
        problems.append(f"{len(not_once)} events not applied exactly once, e.g. "
                        f"{[(e, first_lines[e]) for e in not_once[:3]]}")
    if undelivered:
        problems.append(f"deliveries not DELIVERED: {statuses}")
    attempts = kb.query(db, "SELECT count(*) FROM delivery_attempts")[0][0]
    elapsed = time.monotonic() - started
    print()
    print(kb.table([
        ["kill -9 of the sandbox", "rounds (receiver down in)", f"{opts.kills} ({figures['rounds_receiver_down']})"],
        ["", "deliveries pending at the kill (sum / max)",
         f"{figures['pending_at_kill_sum']} / {figures['pending_at_kill_max']}"],
        ["", "acknowledged creates / patches / uploads checked after restart",
         f"{figures['acked_creates_checked']} / {figures['acked_patches_checked']} / {figures['acked_uploads_checked']}"],
        ["", "unanswered POSTs retried with their key (creates / uploads)",
         f"{figures['unanswered_creates_retried']} / {figures['unanswered_uploads_retried']}"],
        ["", "events delivered / in cache.db / applied once (duplicate=false once)",
         f"{statuses.get('DELIVERED', 0)} of {len(events)} / {len(events) - len(missing_cache)} / {len(events) - len(not_once)}"],
        ["", "redeliveries answered duplicate=true; delivery attempts", f"{dup_lines}; {attempts}"],
        ["", "outbox drain after the last restart (s)", figures["drain_seconds"]],
        ["", "lost or wrong (goal 0)", len(problems)],
    ], ["fault", "checked", "figure"]))
    print(f"\nwriters {opts.writers}, seed {opts.seed}, {elapsed:.0f} s; writer answers: {dict(writes.counts)}")
    print(f"command: KYCDASH_BIN={binp} python3 benches/crash_sandbox.py --kills {opts.kills} --seed {opts.seed}")
    return kb.verdict(problems)


if __name__ == "__main__":
    sys.exit(main())
