#!/usr/bin/env python3
"""Crash, client (issue 17): `kill -9` of `kycdash watch`, then a restart on the same data
directory, repeated with the kill at a seeded random moment:

  (a) in the middle of the first sweep of 10,000 customers (a fresh cache), with changes made
      while it is down;
  (b) while it uploads 300 files dropped into its inbox;
  (c) while more than 2,000 webhooks a second arrive: the sandbox's outbox delivering the
      events of state changes made by 4 threads, plus a compiled sender (examples/
      webhook_send.rs) POSTing signed CUSTOMER_UPDATED events straight to the receiver at
      --direct-rate a second over --connections connections; the rate answered 2xx (both
      together, over the time from the load's start to the kill) is printed, median and max.

Counted after each restart (goal 0 for each):
  lost files     a dropped file neither in inbox/.processed/, inbox/.failed/ nor still in the inbox;
  dup uploads    documents the sandbox holds twice for one customer and type (its database);
  lost webhooks  events the sandbox's delivery log says were answered 2xx by a `watch` of this
                 data directory, or that the direct sender had answered 2xx (it writes each
                 such id to a file as the answer arrives), which its
                 cache.db (table webhook_events) does not hold;
  wrong stages   after the restart's first `sweep` line, customers whose stage in the cache
                 (overview.workflow, what `stage_changed` lines come from) is not the stage the
                 sandbox holds for them (its customers.workflow, which its status answers);
  failed restarts a restart that did not reach its first sweep (the lock, a panic, ...).
Also counted as lost: a file in .processed/ whose content the sandbox does not hold.

One 10,000-customer sandbox database is made once and copied for every repeat.
Loopback only; every process started here is killed at exit; temp dirs are removed.

  benches/crash_watch.py [--scenario a|b|c|all] [--repeats N] [--seed S] [--customers N]
                         [--max-minutes M] [--direct-rate R] [--connections N]

The binaries: $KYCDASH_BIN (else `cargo build --release`) and $KYCDASH_SENDER (else
`cargo build --release --example webhook_send`), under $CARGO_TARGET_DIR.

The defaults (20 repeats of each, 10,000 customers) take about 5 minutes on a 2-core machine.
Exit 1 if any count is not 0; 2 if the run passed --max-minutes (the stacks are printed).
`kill -USR1 PID` prints every thread's stack meanwhile.
"""
import argparse, faulthandler, json, os, random, shutil, signal, sys, threading, time
faulthandler.register(signal.SIGUSR1, all_threads=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kycbench as kb  # noqa: E402

STOPPING = threading.Event()  # set by the watchdog: no new repeat starts
STARTED_SHARE = 0.7  # customers with an onboarding started
SDK_DONE_SHARE = 0.3  # of those, SDK completed (collecting requirements)


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def parallel(items, work, threads=16):
    """Runs `work(item)` for every item on `threads` threads; the results, in order."""
    items = list(items)
    out = [None] * len(items)
    it = iter(range(len(items)))
    lock = threading.Lock()

    def run():
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            out[i] = work(items[i])

    ts = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def make_template(bin_path, path, customers):
    """A sandbox database of `customers` customers (externalId c0..): 70 % started, 30 % of
    those past the SDK. Stopped cleanly, so the file alone holds everything."""
    started = time.monotonic()
    sandbox = kb.Sandbox(bin_path, path)
    api = sandbox.api()

    def create(i):
        for _ in range(5):
            status, body = api.create_customer(f"Bench{i}", external_id=f"c{i}", idem=f"tmpl-{i}")
            if status in (200, 201):
                return body["id"]
            time.sleep(0.2)
        raise RuntimeError(f"creating customer {i}: {status} {body}")

    ids = parallel(range(customers), create)
    rnd = random.Random(1)
    chosen = [i for i in ids if rnd.random() < STARTED_SHARE]

    def start(cid):
        status, body = api.post("/v1/compliance/kyc", {"customerId": cid}, idem=f"kyc-{cid}")
        if status not in (200, 201):
            raise RuntimeError(f"starting {cid}: {status} {body}")
        if rnd.random() < SDK_DONE_SHARE:
            api.simulate(cid, "SDK_COMPLETE")

    parallel(chosen, start)
    if sandbox.proc.term() != 0:
        raise RuntimeError("the template sandbox did not stop cleanly")
    log(f"template: {customers} customers, {len(chosen)} started, in {time.monotonic() - started:.0f}s")


def copy_db(src, dst):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(src + suffix):
            shutil.copyfile(src + suffix, dst + suffix)


class Run:
    """One repeat: a sandbox on a copy of the template, a data directory, `watch` on it."""

    def __init__(self, bin_path, template, root, n):
        if STOPPING.is_set():
            raise SystemExit(2)
        self.bin = bin_path
        self.dir = os.path.join(root, f"rep{n}")
        os.makedirs(self.dir)
        self.db = os.path.join(self.dir, "sandbox.db")
        copy_db(template, self.db)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.sandbox = kb.Sandbox(bin_path, self.db)
        self.api = self.sandbox.api()
        self.watches = []

    def start_watch(self, timeout=60):
        w = kb.watch(self.bin, self.sandbox.url, self.data, extra=["--max-rps", "0"])
        self.watches.append(w)
        line = w.out.wait(lambda l: l.get("kind") == "started", timeout)
        if line is None:
            return None
        return w

    def first_sweep(self, w, timeout=120):
        return w.out.wait(lambda l: l.get("kind") == "sweep", timeout)

    def close(self):
        for w in self.watches:
            w.term(timeout=20)
        self.sandbox.proc.term(timeout=20)
        if not os.environ.get("KYCDASH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- the counts -------------------------------------------------------------------

    def cache(self):
        return os.path.join(self.data, "cache.db")

    def lost_webhooks(self):
        """Events answered 2xx by any `watch` of this data directory that its cache lacks."""
        delivered = {r[0] for r in kb.query(self.db, """
            SELECT DISTINCT e.id FROM delivery_attempts a
            JOIN deliveries d ON d.id = a.delivery_id
            JOIN events e ON e.seq = d.event_seq
            WHERE a.response_status BETWEEN 200 AND 299""")}
        delivered |= set(getattr(self, "direct_ok", ()))
        held = {r[0] for r in kb.query(self.cache(), "SELECT id FROM webhook_events")}
        return len(delivered - held), len(delivered)

    def duplicate_uploads(self):
        rows = kb.query(self.db, """SELECT count(*) - 1 FROM documents
                                    GROUP BY customer_id, type HAVING count(*) > 1""")
        return sum(r[0] for r in rows)

    def wrong_stages(self):
        """Customers whose stage in the cache is not the sandbox's (ids of the wrong)."""
        truth = {cid: json.loads(wf).get("stage") for cid, wf in
                 kb.query(self.db, "SELECT id, workflow FROM customers")}
        cached = {}
        for cid, wf in kb.query(self.cache(), "SELECT customer_id, workflow FROM overview"):
            try:
                cached[cid] = json.loads(wf).get("stage") if wf else None
            except ValueError:
                cached[cid] = None
        return sorted(c for c, stage in truth.items() if cached.get(c) != stage), truth, cached

    def settled_wrong_stages(self, wait=3.0):
        """The wrong stages once the cache's writer has committed what the sweep read (the
        sweep line may come a moment before its rows are committed)."""
        deadline = time.monotonic() + wait
        while True:
            wrong, truth, cached = self.wrong_stages()
            if not wrong or time.monotonic() > deadline:
                return wrong, truth, cached
            time.sleep(0.25)


# --- scenarios ----------------------------------------------------------------------------

def changes_while_down(run, rnd, started_ids, count=50):
    """State changes nobody's receiver hears: made while `watch` is dead."""
    made = 0
    for cid in rnd.sample(started_ids, min(count, len(started_ids))):
        status, _ = run.api.simulate(cid, rnd.choice(["REVIEW", "ERROR", "SDK_EXPIRE"]))
        made += status == 200
    return made


def scenario_a(run, rnd, ctx):
    """Kill during the fresh cache's first sweep, after a random number of its stage lines."""
    w = run.start_watch()
    if w is None:
        return {"error": "watch did not start"}
    k = rnd.randint(1, int(ctx["customers"] * 0.95))
    t0 = time.monotonic()
    seen = {"n": 0}

    def enough(line):
        if line.get("kind") == "stage_changed":
            seen["n"] += 1
        return seen["n"] >= k or line.get("kind") == "sweep"

    line = w.out.wait(enough, 120)
    w.kill9()
    killed_at = time.monotonic() - t0
    note = f"killed after {seen['n']} stage lines ({killed_at:.1f}s)"
    if line is not None and line.get("kind") == "sweep":
        note += " (the sweep had ended)"
    made = changes_while_down(run, rnd, ctx["started_ids"])
    return {"note": note + f"; {made} changes while down", "kills": 1}


def scenario_b(run, rnd, ctx, files=300):
    """Drop 300 files; kill after a random number of them were uploaded."""
    w = run.start_watch()
    if w is None:
        return {"error": "watch did not start"}
    inbox = os.path.join(run.data, "inbox")
    os.makedirs(inbox, exist_ok=True)
    ext_ids = rnd.sample(ctx["started_ext"], files)
    names = []
    for i, ext in enumerate(ext_ids):
        name = f"{ext}__W9.pdf"
        with open(os.path.join(inbox, name), "wb") as f:
            f.write(kb.PDF + f"%{run.dir} {i}\n".encode())
        names.append(name)
    k = rnd.randint(0, files - 1)
    t0 = time.monotonic()
    seen = {"n": 0}

    def enough(line):
        if line.get("kind") == "upload":
            seen["n"] += 1
        return seen["n"] >= k

    if k > 0 and w.out.wait(enough, 120) is None:
        return {"error": f"only {seen['n']} uploads in 120s"}
    if k == 0:
        time.sleep(rnd.uniform(0, 2.5))  # before or at the settling moment
    w.kill9()
    ctx.setdefault("b_names", {})[run.dir] = names
    return {"note": f"killed after {seen['n']} uploads ({time.monotonic() - t0:.1f}s after the drop)",
            "kills": 1, "names": names}


TERMINAL = {"ERROR", "APPROVED", "DENIED_COMPLIANCE"}


def load_generator(run, rnd, ids, stop, counts, threads=4):
    """Many threads moving customers through their stages, each change an event. Each thread
    owns its own customers and follows each one's status, so that no customer is moved out
    of a final stage (errored, approved, denied): no real API does that, and the engine rightly
    never reads a final stage again."""
    lock = threading.Lock()

    def worker(seed, mine):
        r = random.Random(seed)
        api = kb.Api(run.sandbox.url, timeout=10)
        state = {cid: ("PROCESSING", None) for cid in mine}
        while not stop.is_set() and state:
            cid = r.choice(list(state)) if len(state) < 50 else r.choice(mine)
            if cid not in state:
                continue
            status, onboarding = state[cid]
            if status == "EXPIRED" and onboarding:
                code, body = api.post(f"/v1/compliance/kyc/{onboarding}/rerun", {})
            elif status == "PENDING_REVIEW":
                if r.random() > 0.2:
                    continue  # decided now and then only: a decision is final
                code, body = api.simulate(cid, r.choice(["APPROVE", "DENY"]))
            else:
                action = r.choices(["SDK_EXPIRE", "REVIEW", "SDK_COMPLETE", "ERROR"], [70, 10, 15, 5])[0]
                code, body = api.simulate(cid, action)
            with lock:
                counts[code] = counts.get(code, 0) + 1
            if code in (200, 201) and isinstance(body, dict):
                if isinstance(body.get("onboarding"), dict):  # a rerun answers the new onboarding
                    new = (body["onboarding"].get("status"), body["onboarding"].get("id"))
                else:
                    new = (body.get("onboardingStatus"), body.get("onboardingId") or onboarding)
                if new[0] in TERMINAL:
                    del state[cid]
                else:
                    state[cid] = new
            elif code is None or code >= 500:
                with lock:
                    counts["stopped"] = counts.get("stopped", 0) + 1
                # The state of this customer is unknown now: leave it alone.
                state.pop(cid, None)

    ts = [threading.Thread(target=worker, args=(rnd.random(), ids[i::threads]), daemon=True)
          for i in range(threads)]
    for t in ts:
        t.start()
    return ts


def sender_binary():
    """The compiled sender of signed webhooks (examples/webhook_send.rs): $KYCDASH_SENDER, or
    `cargo build --release --example webhook_send` and its output (as kb.binary() does)."""
    if os.environ.get("KYCDASH_SENDER"):
        return os.environ["KYCDASH_SENDER"]
    import subprocess
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "webhook_send"], cwd=kb.REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(kb.REPO, "target"))
    return os.path.join(target, "release", "examples", "webhook_send")


def start_sender(ctx, run, url, secret, customers, tag, seconds):
    """webhook_send POSTing signed CUSTOMER_UPDATED events to `url` at ctx['direct_rate']/s
    over ctx['connections'] connections for at most `seconds`; it appends each id answered 2xx
    to the returned file as the answer arrives, and stops at the receiver's death."""
    ids_path = os.path.join(run.dir, "sender-customers.txt")
    with open(ids_path, "w") as f:
        f.write("\n".join(customers) + "\n")
    ok_path = os.path.join(run.dir, "sender-ok.txt")
    proc = kb.Proc([ctx["sender"], "--url", url, "--secret", secret, "--customers", ids_path,
                    "--ok-file", ok_path, "--rate", str(ctx["direct_rate"]), "--seconds", str(seconds),
                    "--connections", str(ctx["connections"]), "--prefix", f"crash_{tag}"], json_stdout=True)
    return proc, ok_path


def delivered_2xx(run):
    return kb.query(run.db, "SELECT count(*) FROM delivery_attempts WHERE response_status BETWEEN 200 AND 299")[0][0]


def scenario_c(run, rnd, ctx):
    """Webhooks at 2,000 a second and more: the sandbox's outbox delivering the events of
    concurrent state changes, plus the compiled sender POSTing signed events straight to the
    receiver at ctx['direct_rate']/s; kill at a random moment among them."""
    w = run.start_watch()
    if w is None:
        return {"error": "watch did not start"}
    # The load starts once the first sweep is over: (a) is the kill during a sweep.
    if run.first_sweep(w) is None:
        return {"error": "watch's first sweep did not end"}
    url = next(l for l in w.out.snapshot() if l.get("kind") == "started").get("webhookUrl")
    secret = kb.query(run.cache(), "SELECT value FROM settings WHERE key = 'webhook.secret'")[0][0]
    stop, counts = threading.Event(), {}
    ids = list(ctx["started_ids"])
    rnd.shuffle(ids)
    before = delivered_2xx(run)
    kill_after = rnd.uniform(1.0, 5.0)
    t0 = time.monotonic()
    sender, ok_path = start_sender(ctx, run, url, secret, ids[:2000], rnd.randrange(10**9), seconds=15)
    ts = load_generator(run, rnd, ids, stop, counts)
    time.sleep(max(0.0, kill_after - (time.monotonic() - t0)))
    w.kill9()
    window = time.monotonic() - t0
    after = delivered_2xx(run)
    time.sleep(0.5)  # deliveries to the dead receiver fail meanwhile
    stop.set()
    for t in ts:
        t.join(timeout=15)
    # The sender stops by itself at the receiver's death (each connection's first error).
    try:
        sender.p.wait(timeout=30)
    except Exception:
        sender.kill9()
        return {"error": "the sender did not stop after the receiver's death"}
    summary = sender.out.wait(lambda l: "ok" in l, 5)
    if sender.p.returncode != 0 or summary is None:
        return {"error": f"the sender failed ({sender.p.returncode}): {sender.err.snapshot()[-3:]}"}
    with open(ok_path) as f:
        direct_ok = [line.strip() for line in f if line.strip()]
    if len(direct_ok) != summary["ok"] or len(set(direct_ok)) != len(direct_ok):
        return {"error": f"the sender's ok file has {len(direct_ok)} ids, it counted {summary['ok']}"}
    run.direct_ok = direct_ok
    rate = (after - before + len(direct_ok)) / window
    ctx.setdefault("c_rates", []).append(rate)
    ctx.setdefault("c_outbox_rates", []).append((after - before) / window)
    return {"note": f"killed {window:.1f}s into the load; {after - before} delivered 2xx by the sandbox "
                    f"+ {len(direct_ok)} answered 2xx to the direct sender = {rate:.0f}/s "
                    f"(direct answers {summary['counts']}); {counts.get(200, 0) + counts.get(201, 0)} changes made",
            "kills": 1}


SCENARIOS = {"a": scenario_a, "b": scenario_b, "c": scenario_c}


def one_repeat(name, n, bin_path, template, root, rnd, ctx):
    """A repeat of a scenario; its counts."""
    started = time.monotonic()
    run = Run(bin_path, template, root, n)
    res = {"lost_files": 0, "dup_uploads": 0, "lost_webhooks": 0, "wrong_stages": 0,
           "failed_restarts": 0, "kills": 0, "delivered": 0}
    try:
        done = SCENARIOS[name](run, rnd, ctx)
        if "error" in done:
            res["failed_restarts"] += 1
            log(f"  {name}#{n}: {done['error']}")
            return res, time.monotonic() - started
        res["kills"] = done["kills"]
        w2 = run.start_watch()
        sweep = w2 and run.first_sweep(w2)
        if not sweep:
            res["failed_restarts"] += 1
            err = "\n".join((w2.err.snapshot() if w2 else [])[-5:])
            log(f"  {name}#{n}: the restart did not reach its first sweep: {err}")
        else:
            wrong, truth, cached = run.settled_wrong_stages()
            res["wrong_stages"] = len(wrong)
            if wrong:
                sample = [(c, cached.get(c), truth[c]) for c in wrong[:3]]
                log(f"  {name}#{n}: {len(wrong)} wrong stages after the first sweep, e.g. (id, cache, API) {sample}")
        if name == "b" and w2:
            # Let the restarted watch finish the inbox, then look for every file.
            inbox = os.path.join(run.data, "inbox")
            names = done["names"]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and any(
                    f for f in os.listdir(inbox) if not f.startswith(".")):
                time.sleep(0.25)
            found = []
            for sub in ("", ".processed", ".failed"):
                p = os.path.join(inbox, sub)
                if os.path.isdir(p):
                    found += [f for f in os.listdir(p) if not f.startswith(".") and not f.endswith(".error.txt")]
            stems = {}
            for f in found:
                base = f.split(" (")[0].removesuffix(".pdf")
                stems[base] = stems.get(base, 0) + 1
            res["lost_files"] = sum(1 for nm in names if nm.removesuffix(".pdf") not in stems)
            # A file moved to .processed/ must have been uploaded: its content is in the sandbox.
            import hashlib
            held = {r[0] for r in kb.query(run.db, "SELECT sha256 FROM documents")}
            done_dir = os.path.join(inbox, ".processed")
            not_uploaded = [f for f in (os.listdir(done_dir) if os.path.isdir(done_dir) else [])
                            if hashlib.sha256(open(os.path.join(done_dir, f), "rb").read()).hexdigest() not in held]
            if not_uploaded:
                log(f"  {name}#{n}: in .processed/ but not uploaded: {not_uploaded[:3]}")
            res["lost_files"] += len(not_uploaded)
            failed = len(os.listdir(os.path.join(inbox, ".failed"))) if os.path.isdir(os.path.join(inbox, ".failed")) else 0
            if failed:
                log(f"  {name}#{n}: {failed} entries in .failed/")
        for w in run.watches:
            w.term(timeout=20)
        res["dup_uploads"] = run.duplicate_uploads()
        res["lost_webhooks"], res["delivered"] = run.lost_webhooks()
        log(f"  {name}#{n}: {done['note']}; lost files {res['lost_files']}, dup uploads {res['dup_uploads']}, "
            f"lost webhooks {res['lost_webhooks']} of {res['delivered']} delivered, wrong stages {res['wrong_stages']}")
    finally:
        run.close()
    return res, time.monotonic() - started


def watchdog(seconds):
    """Bounded in time whatever happens: past `seconds`, print the stacks, kill every process
    started here, remove the temp dirs and exit 2."""
    def fire():
        STOPPING.set()
        log(f"the campaign passed its limit of {seconds:.0f}s; stopping")
        faulthandler.dump_traceback(all_threads=True)
        kb.PROCS.close()
        import atexit
        atexit._run_exitfuncs()
        os._exit(2)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="all", choices=["a", "b", "c", "all"])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--max-minutes", type=float, default=30)
    ap.add_argument("--direct-rate", type=float, default=2000,
                    help="(c): webhooks a second the compiled sender aims at, beside the outbox's")
    ap.add_argument("--connections", type=int, default=64, help="(c): the sender's connections")
    args = ap.parse_args()
    watchdog(args.max_minutes * 60)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    command = (f"benches/crash_watch.py --scenario {args.scenario} --repeats {args.repeats} "
               f"--seed {seed} --customers {args.customers} --direct-rate {args.direct_rate:g} "
               f"--connections {args.connections}")
    log(f"seed {seed}")
    rnd = random.Random(seed)
    bin_path = kb.binary()
    root = kb.tempdir("kycdash-crash-")
    template = os.path.join(root, "template.db")
    make_template(bin_path, template, args.customers)
    ids = [r[0] for r in kb.query(template, "SELECT id FROM customers ORDER BY seq")]
    started_ids = [r[0] for r in kb.query(template, "SELECT DISTINCT customer_id FROM onboardings")]
    ext = {r[0]: r[1] for r in kb.query(template, "SELECT id, json_extract(body, '$.externalId') FROM customers")}
    ctx = {"customers": len(ids), "started_ids": started_ids, "started_ext": [ext[i] for i in started_ids],
           "direct_rate": args.direct_rate, "connections": args.connections}
    names = ["a", "b", "c"] if args.scenario == "all" else [args.scenario]
    if "c" in names:
        ctx["sender"] = sender_binary()
    rows, failed = [], False
    labels = {"a": "(a) mid-sweep of %d customers" % len(ids), "b": "(b) uploading 300 inbox files",
              "c": "(c) webhooks arriving"}
    for name in names:
        totals, durations = {}, []
        for n in range(args.repeats):
            res, took = one_repeat(name, n, bin_path, template, root, rnd, ctx)
            durations.append(took)
            for k, v in res.items():
                totals[k] = totals.get(k, 0) + v
        label = labels[name]
        if name == "c" and ctx.get("c_rates"):
            r = sorted(ctx["c_rates"])
            o = sorted(ctx["c_outbox_rates"])
            label += (f" (2xx answered: median {r[len(r) // 2]:.0f}/s, max {r[-1]:.0f}/s; of which the"
                      f" sandbox's outbox median {o[len(o) // 2]:.0f}/s)")
        counts = [totals["lost_files"], totals["dup_uploads"], totals["lost_webhooks"], totals["wrong_stages"],
                  totals["failed_restarts"]]
        failed |= any(counts)
        rows.append([label, args.repeats, totals["kills"], *counts, totals["delivered"],
                     f"{sum(durations):.0f}s ({sum(durations) / len(durations):.1f}s each)"])
    print(kb.table(rows, ["kill -9 of watch", "repeats", "kills", "lost files", "dup uploads",
                          "lost webhooks", "wrong stages", "failed restarts", "webhooks 2xx", "time"]))
    print(f"\nseed {seed}; command: {command}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
