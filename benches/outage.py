#!/usr/bin/env python3
"""Outage (issue 17), parts a and b. (Part c, the dashboard started with the API down, is the
pty test dashboard_pty::started_with_the_api_down_it_shows_the_cache_then_reconnects_by_itself.)

(a) The API down for --down seconds (default 60) in the middle of a `watch` run, with status
    changes happening meanwhile. How the changes happen while the API is down, honestly: the
    sandbox gets SIGKILL, so nothing can be changed through it; but its clock was first moved
    so that the SDK links of --expiring customers expire halfway through the outage (a
    tenant-clock timer, which the sandbox fires for the time it missed when it comes back),
    and right before the kill --completing other customers got SDK_COMPLETE with no wait, so
    their webhooks are still in the outbox or in flight when the process dies. The sandbox is
    started again on the same --db and port. Run twice: with webhooks, and polling only (the
    endpoint registered at a closed port, so only the engine's polls and sweeps can see the
    changes). Goal: every customer's new stage reaches a
    `stage_changed` line within one sweep (300 s, the engine's sweep interval) of the return,
    and no transition (customer, from, to) is printed twice.

(b) The receiver down across the sandbox's whole retry schedule: the `watch` whose receiver is
    registered is stopped, each of --customers customers gets --events patches (one
    CUSTOMER_UPDATED each), and the sandbox clock is advanced through the backoff (5 s, 10 s
    … capped at 1 h; 11 failed attempts of each customer's oldest delivery) while the port is
    closed. Then the watch starts again on the same port and data directory. Goals: every event
    delivered, in order per customer (the watch's `webhook` lines in the sandbox's event order),
    each applied once, and the delivery log (GET /v1/webhooks/{id}/deliveries) showing every
    attempt (11 failures then a success for the first event of each customer).
    Then the end of the schedule: with the receiver down again, one more event per customer is
    taken through all 12 attempts; the SPEC's behaviour is checked: the delivery is FAILED with
    no next attempt, no attempt follows even hours later, and a manual resend
    (POST /v1/webhooks/{id}/deliveries/{d}/resend) reaches the watch once it is back, applied
    once.

    KYCDASH_BIN=target/release/kycdash python3 benches/outage.py [--part a|b|both] [--down 60]

Exits 1 when a goal is missed. Loopback only; everything started is stopped.
"""
import argparse, collections, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kycbench as kb  # noqa: E402

SWEEP_SECONDS = 300  # EngineTiming::sweep_every
SDK_LINK_SECONDS = 30 * 60  # the sandbox's SDK link lifetime


def start_watch(binp, url, data_dir, port, webhook_url=None):
    extra = ["--webhook-url", webhook_url] if webhook_url else []
    return kb.started_watch(binp, url, data_dir, port, extra)


def last_stage(lines, cid):
    stage = None
    for line in lines:
        if isinstance(line, dict) and line.get("kind") == "stage_changed" and line.get("customerId") == cid:
            stage = line["to"]
    return stage


def create_customers(api, n, prefix):
    ids = []
    for i in range(n):
        status, body = api.create_customer(last_name="Outage", external_id=f"{prefix}-{i}")
        if status != 201:
            raise RuntimeError(f"create: {status} {body}")
        ids.append(body["id"])
    return ids


def part_a(binp, opts, problems, polling_only):
    work = kb.tempdir("kyc-outage-a-")
    db, data_dir = os.path.join(work, "sandbox.db"), os.path.join(work, "data")
    sandbox = kb.Sandbox(binp, db)
    api = sandbox.api()
    n = opts.expiring + opts.completing
    ids = create_customers(api, n, "outage-a")
    for cid in ids:
        status, body = api.post("/v1/compliance/kyc", {"customerId": cid})
        if status != 201:
            raise RuntimeError(f"start KYC: {status} {body}")
    # Polling only: the endpoint is registered at a closed port, so no webhook ever arrives and
    # every change must come from the engine's own polls and sweeps.
    closed = f"http://127.0.0.1:{kb.free_port()}/webhooks" if polling_only else None
    watch = start_watch(binp, sandbox.url, data_dir, kb.free_port(), closed)
    if not kb.wait_until(lambda: all(last_stage(watch.out.snapshot(), c) == "awaiting_sdk" for c in ids), 120):
        raise RuntimeError("the watch did not report every customer awaiting_sdk")
    expiring, completing = ids[:opts.expiring], ids[opts.expiring:]
    expected = {c: "expired" for c in expiring}
    expected.update({c: "collecting_requirements" for c in completing})
    # The links (30 min on the tenant clock) now run out halfway through the outage.
    status, body = api.advance(SDK_LINK_SECONDS - opts.down // 2)
    if status != 200:
        raise RuntimeError(f"advance: {status} {body}")
    for cid in completing:
        status, body = api.simulate(cid, "SDK_COMPLETE")
        if status != 200:
            raise RuntimeError(f"SDK_COMPLETE: {status} {body}")
    pending = kb.query(db, "SELECT count(*) FROM deliveries WHERE status IN ('PENDING','IN_FLIGHT')")[0][0]
    sandbox.kill9()
    down_at, mark = time.monotonic(), len(watch.out.snapshot())
    time.sleep(opts.down)
    if watch.p.poll() is not None:
        problems.append(f"(a) watch exited during the outage with {watch.p.returncode}")
    during = watch.out.snapshot()[mark:]
    poll_errors = sum(1 for l in during if isinstance(l, dict) and l.get("kind") == "poll_error")
    sandbox.start()
    up_at = time.monotonic()
    converged = kb.wait_until(lambda: all(last_stage(watch.out.snapshot(), c) == s for c, s in expected.items()),
                           SWEEP_SECONDS + 30)
    took = time.monotonic() - up_at
    if not converged or took > SWEEP_SECONDS:
        wrong = {c: last_stage(watch.out.snapshot(), c) for c, s in expected.items()
                 if last_stage(watch.out.snapshot(), c) != s}
        problems.append(f"(a) not every change reported within one sweep ({took:.0f} s): {list(wrong.items())[:5]}")
    time.sleep(3)  # anything printed twice would come now
    lines = watch.out.snapshot()
    transitions = collections.Counter((l["customerId"], l.get("from"), l["to"]) for l in lines
                                      if isinstance(l, dict) and l.get("kind") == "stage_changed")
    twice = {k: v for k, v in transitions.items() if v > 1}
    if twice:
        problems.append(f"(a) transitions reported more than once: {list(twice.items())[:5]}")
    watch.term()
    for line in watch.err.snapshot():
        if "panicked" in line or "internal error" in line:
            problems.append(f"(a) watch: {line}")
    webhooks = sum(1 for l in lines if isinstance(l, dict) and l.get("kind") == "webhook")
    return [["Outage (a): API down" + (", polling only" if polling_only else ", webhooks on"),
             f"{opts.down} s down; {len(expiring)} links expiring meanwhile, "
             f"{len(completing)} SDK_COMPLETE just before the kill ({pending} deliveries pending)",
             f"{poll_errors} poll_error lines while down; every change reported "
             f"{took:.1f} s after the return (goal < {SWEEP_SECONDS} s); transitions printed twice: {len(twice)}; "
             f"webhook lines {webhooks}"]]


def deliveries(api, endpoint):
    status, body = api.get(f"/v1/webhooks/{endpoint}/deliveries")
    if status != 200:
        raise RuntimeError(f"delivery log: {status} {body}")
    return body["data"]


def take_through_attempts(api, endpoint, heads, upto):
    """Advances the clock until each delivery in `heads` has `upto` attempts recorded."""
    for attempt in range(1, upto + 1):
        def done():
            log = {d["id"]: d for d in deliveries(api, endpoint)}
            return all(len(log[h]["attempts"]) >= attempt for h in heads)
        if not kb.wait_until(done, 30):
            raise RuntimeError(f"attempt {attempt} did not happen")
        if attempt < upto:
            api.advance(min(5 * 2 ** (attempt - 1), 3600))


def part_b(binp, opts, problems):
    work = kb.tempdir("kyc-outage-b-")
    db, data_dir = os.path.join(work, "sandbox.db"), os.path.join(work, "data")
    sandbox = kb.Sandbox(binp, db)
    api = sandbox.api()
    wport = kb.free_port()
    runs = [start_watch(binp, sandbox.url, data_dir, wport)]
    if not kb.wait_until(lambda: api.get("/v1/webhooks")[1].get("data"), 60):
        raise RuntimeError("the watch registered no endpoint")
    endpoint = api.get("/v1/webhooks")[1]["data"][0]["id"]
    ids = create_customers(api, opts.customers, "outage-b")
    kb.wait_until(lambda: all(d["status"] == "DELIVERED" for d in deliveries(api, endpoint)), 60)
    runs[-1].term()  # the receiver is down: its port is closed
    started = time.monotonic()
    for round_no in range(opts.events):
        for cid in ids:
            status, body = api.patch(f"/v1/customers/{cid}", {"email": f"r{round_no}@example.com"})
            if status != 200:
                raise RuntimeError(f"patch: {status} {body}")
    log = deliveries(api, endpoint)
    outage = [d for d in log if d["status"] != "DELIVERED"]
    heads = [next(d["id"] for d in outage if d["customerId"] == c) for c in ids]
    # 11 failed attempts: 5 s, 10 s … 2560 s, 3600 s of backoff between them.
    take_through_attempts(api, endpoint, heads, 11)
    schedule = [d for d in deliveries(api, endpoint) if d["id"] in heads]
    failed_attempts = sum(len(d["attempts"]) for d in schedule)
    runs.append(start_watch(binp, sandbox.url, data_dir, wport))
    api.advance(3600)
    ok = kb.wait_until(lambda: all(d["status"] == "DELIVERED" for d in deliveries(api, endpoint)), 120)
    recovered = time.monotonic()
    log = {d["id"]: d for d in deliveries(api, endpoint)}
    if not ok:
        problems.append(f"(b) not delivered after the receiver returned: "
                        f"{collections.Counter(d['status'] for d in log.values())}")
    for h in heads:
        atts = log[h]["attempts"]
        codes = [a.get("responseStatus") for a in atts]
        if len(atts) != 12 or any(c is not None for c in codes[:11]) or not (codes[-1] and 200 <= codes[-1] < 300):
            problems.append(f"(b) delivery {h}: attempts in the log {codes}")
    # Order per customer: the watch's webhook lines in the sandbox's event order.
    order = collections.defaultdict(list)
    for l in runs[-1].out.snapshot():
        if isinstance(l, dict) and l.get("kind") == "webhook" and not l.get("duplicate"):
            order[l["customerId"]].append(l["eventId"])
    out_of_order = 0
    for cid in ids:
        sent = [d["eventId"] for d in outage if d["customerId"] == cid]
        if order[cid] != sent:
            out_of_order += 1
            problems.append(f"(b) customer {cid}: received {order[cid]}, sent {sent}")
    # The end of the schedule: 12 failures make a delivery FAILED; a manual resend delivers it.
    runs[-1].term()
    for cid in ids:
        api.patch(f"/v1/customers/{cid}", {"email": "last@example.com"})
    last = [d for d in deliveries(api, endpoint) if d["status"] != "DELIVERED"]
    take_through_attempts(api, endpoint, [d["id"] for d in last], 12)
    kb.wait_until(lambda: all(d["status"] == "FAILED" for d in deliveries(api, endpoint) if d["id"] in {x["id"] for x in last}), 30)
    api.advance(24 * 3600)
    time.sleep(2)
    gave_up = [d for d in deliveries(api, endpoint) if d["id"] in {x["id"] for x in last}]
    for d in gave_up:
        if d["status"] != "FAILED" or d.get("nextAttemptAt") or len(d["attempts"]) != 12:
            problems.append(f"(b) after the schedule: {d['id']} {d['status']} next {d.get('nextAttemptAt')} "
                            f"attempts {len(d['attempts'])}")
    runs.append(start_watch(binp, sandbox.url, data_dir, wport))
    for d in gave_up:
        status, body = api.post(f"/v1/webhooks/{endpoint}/deliveries/{d['id']}/resend")
        if status not in (200, 201, 202):
            problems.append(f"(b) resend {d['id']}: {status} {body}")
    want = {d["eventId"] for d in gave_up}
    got = lambda: {l["eventId"] for l in runs[-1].out.snapshot()
                   if isinstance(l, dict) and l.get("kind") == "webhook" and not l.get("duplicate")}
    if not kb.wait_until(lambda: want <= got(), 60):
        problems.append(f"(b) resent events not received: {len(want - got())}")
    time.sleep(1)
    for proc in runs:
        proc.term()
    first = collections.Counter(l["eventId"] for p in runs for l in p.out.snapshot()
                                if isinstance(l, dict) and l.get("kind") == "webhook" and not l.get("duplicate"))
    all_events = [r[0] for r in kb.query(db, "SELECT e.id FROM events e")]
    not_once = [e for e in all_events if first[e] != 1]
    cache_ids = {r[0] for r in kb.query(os.path.join(data_dir, "cache.db"), "SELECT id FROM webhook_events")}
    not_cached = [e for e in all_events if e not in cache_ids]
    if not_once or not_cached:
        problems.append(f"(b) events not applied exactly once: {len(not_once)}; not in cache.db: {len(not_cached)}")
    return [["Outage (b): receiver down across the retry schedule",
             f"{len(outage)} events ({opts.customers} customers x {opts.events}); clock advanced through "
             f"11 failed attempts (5 s … 1 h backoff) of each customer's first event",
             f"{sum(1 for d in outage if log[d['id']]['status'] == 'DELIVERED')} of {len(outage)} delivered after the return "
             f"(the whole schedule took {recovered - started:.1f} s of real time), {out_of_order} customers out of order, "
             f"{failed_attempts} failed attempts in the log, applied twice {len(not_once)}"],
            ["Outage (b): end of the schedule", f"{len(gave_up)} events taken through all 12 attempts",
             f"{sum(1 for d in gave_up if d['status'] == 'FAILED')} FAILED with no next attempt "
             f"(24 h later still 12 attempts); manual resend delivered "
             f"{len(want & set(first))} of {len(want)}"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["a", "b", "both"], default="both")
    ap.add_argument("--down", type=int, default=60, help="(a) seconds the API is down")
    ap.add_argument("--expiring", type=int, default=20, help="(a) customers whose links expire meanwhile")
    ap.add_argument("--completing", type=int, default=10, help="(a) customers completed just before the kill")
    ap.add_argument("--customers", type=int, default=10, help="(b) customers")
    ap.add_argument("--events", type=int, default=5, help="(b) events per customer while the receiver is down")
    opts = ap.parse_args()
    binp, problems, rows = kb.binary(), [], []
    started = time.monotonic()
    if opts.part in ("a", "both"):
        rows += part_a(binp, opts, problems, polling_only=False)
        rows += part_a(binp, opts, problems, polling_only=True)
    if opts.part in ("b", "both"):
        rows += part_b(binp, opts, problems)
    print()
    print(kb.table(rows + [["", "lost, twice or out of order (goal 0)", len(problems)]],
                   ["fault", "what", "figures"]))
    print(f"\n{time.monotonic() - started:.0f} s in all")
    print(f"command: KYCDASH_BIN={binp} python3 benches/outage.py --part {opts.part} --down {opts.down}")
    return kb.verdict(problems)


if __name__ == "__main__":
    sys.exit(main())
