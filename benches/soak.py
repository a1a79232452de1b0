#!/usr/bin/env python3
"""Soak (issue 17): mixed load against a `kycdash sandbox` for SECONDS (default 600), with
`kycdash watch` and its receiver running and the dashboard in a pty beside it (its own data
directory and receiver).

usage: benches/soak.py [SECONDS]          (the binary: $KYCDASH_BIN, else cargo build --release)

A few threads create, patch, start KYC, upload (over the API and through watch's inbox),
simulate (SDK_COMPLETE, REVIEW, APPROVE, DENY, ERROR, SDK_EXPIRE), advance the clock and read
statuses at a moderate rate. The RSS of each process is sampled every 10 s. At the end the
dashboard is quit with `q` (exit 0 required), watch is stopped with SIGTERM (exit 0 required),
and it prints: requests by HTTP status (no 5xx, no refused connection), panics (none, in every
process's stderr, the pty and the logs), webhooks the sandbox logged as delivered (2xx) to
watch's endpoint vs. received (watch's `webhook` lines with duplicate=false, and the cache's
webhook_events table): the same ids, none twice; and the RSS of the second minute vs. the last
minute (the mean of their samples; within 10 % required for watch and the dashboard, the
sandbox's reported). Exit 1 if any goal is missed. Loopback only; everything it starts is
stopped, also on error.
"""
import collections, fcntl, os, pty, random, select, struct, sys, termios, threading, time, uuid
import subprocess

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kycbench as kb

SIM_ACTIONS = ["SDK_COMPLETE", "SDK_COMPLETE", "REVIEW", "APPROVE", "DENY", "ERROR", "SDK_EXPIRE"]
DOC_TYPES = ["W9", "W8BEN", "SOURCE_OF_FUNDS", "PROOF_OF_ADDRESS", "BIOMETRIC_REPORT"]
THREADS = 4
PER_THREAD_RPS = 4.0          # about 16 requests a second in all
# Customers made before the clock starts, and few made during it: the RSS goal is about what
# the processes keep, not about the data the load adds (measured: watch's RSS grows about
# 14 KiB per customer it knows, 150 -> 550 customers with no load: 35.5 -> 41.1 MiB).
INITIAL_CUSTOMERS = 500
PANIC_MARKS = ("internal error", "panicked")


def unique_pdf():
    """A PDF the sandbox accepts whose bytes (hence SHA-256) are new each time."""
    return kb.PDF + b"%" + uuid.uuid4().hex.encode() + b"\n"


class Load:
    """The mixed load: counts every answer by HTTP status."""

    def __init__(self, api, inbox):
        self.api, self.inbox = api, inbox
        self.lock = threading.Lock()
        self.customers = []            # (id, externalId)
        self.by_status = collections.Counter()
        self.by_action = collections.Counter()
        self.five_xx = []              # (action, status, body)
        self.dropped = 0
        self.stop = threading.Event()
        self.seq = 0

    def note(self, action, status, body):
        with self.lock:
            self.by_status[status if status is not None else "refused"] += 1
            self.by_action[action] += 1
            if status is None or status >= 500:
                self.five_xx.append((action, status, str(body)[:200]))

    def create(self):
        with self.lock:
            self.seq += 1
            ext = f"soak-{self.seq}"
        status, body = self.api.create_customer(last_name=random.choice(["Lovelace", "Hopper", "Noether"]),
                                                external_id=ext, idem=str(uuid.uuid4()))
        self.note("create", status, body)
        if status in (200, 201) and isinstance(body, dict):
            with self.lock:
                self.customers.append((body["id"], ext))

    def pick(self):
        with self.lock:
            return random.choice(self.customers) if self.customers else None

    def step(self, rng):
        """One request (or one inbox drop), chosen by weight."""
        action = rng.choices(
            ["create", "patch", "start", "upload", "drop", "simulate", "advance", "status", "get", "list"],
            weights=[1, 8, 10, 8, 3, 22, 2, 25, 10, 3])[0]
        if action == "create":
            return self.create()
        picked = self.pick()
        if picked is None:
            return self.create()
        cid, ext = picked
        if action == "patch":
            body = {"kyc": {"occupation": rng.choice(["11", "12", "13"]),
                            "mainAddress": {"street1": f"{rng.randint(1, 999)} Main St"}}}
            status, resp = self.api.patch(f"/v1/customers/{cid}", body)
        elif action == "start":
            status, resp = self.api.post("/v1/compliance/kyc", {"customerId": cid}, idem=str(uuid.uuid4()))
        elif action == "upload":
            status, resp = self.api.upload(cid, rng.choice(DOC_TYPES), unique_pdf(), idem=str(uuid.uuid4()))
        elif action == "drop":
            name = f"{ext}__{rng.choice(DOC_TYPES)}__{uuid.uuid4().hex[:8]}.pdf"
            part = os.path.join(self.inbox, name + ".part")
            with open(part, "wb") as f:
                f.write(unique_pdf())
            os.rename(part, os.path.join(self.inbox, name))
            with self.lock:
                self.dropped += 1
                self.by_action["drop"] += 1
            return
        elif action == "simulate":
            status, resp = self.api.simulate(cid, rng.choice(SIM_ACTIONS))
        elif action == "advance":
            status, resp = self.api.advance(rng.choice([60, 300, 900]))
        elif action == "status":
            status, resp = self.api.get(f"/v1/compliance/status/{cid}")
        elif action == "get":
            status, resp = self.api.get(f"/v1/customers/{cid}")
        else:
            status, resp = self.api.get("/v1/customers?limit=50")
        self.note(action, status, resp)

    def run_thread(self, seed):
        rng = random.Random(seed)
        period = 1.0 / PER_THREAD_RPS
        next_at = time.monotonic()
        while not self.stop.is_set():
            try:
                self.step(rng)
            except Exception as e:  # a bug in the script: counted, shown, not hidden
                self.note("script-error", None, repr(e))
            next_at += period * rng.uniform(0.5, 1.5)
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()


class Dashboard:
    """The dashboard in a pty, its output read all the time so it never blocks on a write."""

    def __init__(self, binary, url, data_dir):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        env = kb.isolated_env(TERM="xterm-256color")
        env.pop("RUST_LOG", None)
        self.p = subprocess.Popen([binary, "--api-url", url, "--api-key", kb.KEY, "--data-dir", data_dir],
                                  stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                                  start_new_session=True)
        os.close(slave)
        self.bytes, self.tail, self.marks = 0, b"", []
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while not self.done.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                if self.p.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.bytes += len(chunk)
            window = self.tail + chunk
            for mark in PANIC_MARKS:
                if mark.encode() in window:
                    self.marks.append(window[max(0, window.find(mark.encode()) - 100):][:300])
            self.tail = window[-400:]

    def quit(self, timeout=15):
        try:
            os.write(self.master, b"q")
        except OSError:
            pass
        try:
            code = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=10)
            code = "killed (no exit after q)"
        self.done.set()
        return code

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    if seconds < 180:
        print("note: under 180 s the second and last minutes overlap; the RSS figure means little",
              file=sys.stderr)
    binary = kb.binary()
    root = kb.tempdir("kycdash-soak-")
    sandbox_dir, watch_dir, dash_dir = (os.path.join(root, d) for d in ("sandbox", "watch", "dash"))
    for d in (sandbox_dir, watch_dir, dash_dir):
        os.makedirs(d)
    failures = []

    sandbox = kb.Sandbox(binary, os.path.join(sandbox_dir, "sandbox.db"))
    api = sandbox.api()
    watcher = kb.watch(binary, sandbox.url, watch_dir)
    started = watcher.out.wait(lambda l: isinstance(l, dict) and l.get("kind") == "started", 60)
    if started is None:
        raise SystemExit("watch did not start: " + "\n".join(watcher.err.snapshot()[-5:]))
    watch_url = started.get("webhookUrl")
    inbox = started.get("inbox") or os.path.join(watch_dir, "inbox")
    os.makedirs(inbox, exist_ok=True)
    dash = Dashboard(binary, sandbox.url, dash_dir)
    dash_log = []

    load = Load(api, inbox)
    try:
        makers = [threading.Thread(target=lambda: [load.create() for _ in range(INITIAL_CUSTOMERS // 4)])
                  for _ in range(4)]
        for t in makers:
            t.start()
        for t in makers:
            t.join()
        # The endpoints: watch's (by its URL) and the dashboard's (the other one).
        deadline = time.monotonic() + 60
        endpoints = []
        while time.monotonic() < deadline:
            status, body = api.get("/v1/webhooks")
            endpoints = body.get("data", []) if status == 200 and isinstance(body, dict) else []
            if any(e["url"] == watch_url for e in endpoints) and len(endpoints) >= 2:
                break
            time.sleep(0.5)
        watch_ep = next((e["id"] for e in endpoints if e["url"] == watch_url), None)
        dash_eps = [e["id"] for e in endpoints if e["url"] != watch_url]
        if watch_ep is None:
            raise SystemExit(f"watch's endpoint {watch_url} was not registered: {endpoints}")
        if not dash_eps:
            failures.append("the dashboard registered no webhook endpoint within 60 s")

        threads = [threading.Thread(target=load.run_thread, args=(i,), daemon=True) for i in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        procs = {"sandbox": sandbox.proc.pid, "watch": watcher.pid, "dashboard": dash.p.pid}
        samples = {name: [] for name in procs}          # (t, kB)
        known = []                                      # (t, customers)
        next_sample = t0
        while True:
            now = time.monotonic()
            if now >= next_sample:
                with load.lock:
                    known.append((now - t0, len(load.customers)))
                for name, pid in procs.items():
                    kb_ = kb.rss_kb(pid)
                    if kb_ is not None:
                        samples[name].append((now - t0, kb_))
                next_sample += 10
            if now - t0 >= seconds:
                break
            for name, proc in (("sandbox", sandbox.proc.p), ("watch", watcher.p), ("dashboard", dash.p)):
                if proc.poll() is not None:
                    failures.append(f"{name} exited during the soak ({proc.returncode})")
            if any("exited during" in f for f in failures):
                break
            time.sleep(min(1.0, max(0.05, next_sample - time.monotonic())))
        load.stop.set()
        for t in threads:
            t.join(timeout=60)
        elapsed = time.monotonic() - t0

        # Let the last deliveries land: advancing the clock makes any retry due.
        def deliveries(ep):
            status, body = api.get(f"/v1/webhooks/{ep}/deliveries")
            load.note("final-read", status, body)
            return body.get("data", []) if status == 200 and isinstance(body, dict) else []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending = [d for d in deliveries(watch_ep) if d["status"] == "PENDING"]
            if not pending:
                break
            api.advance(60)
            time.sleep(1)
        # Inbox drops settle in 2 s; give them time to be uploaded.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = [n for n in os.listdir(inbox) if not n.startswith(".")]
            if not left:
                break
            time.sleep(0.5)
        log = deliveries(watch_ep)
        dash_log = [d for ep in dash_eps for d in deliveries(ep)]
        time.sleep(2)

        dash_code = dash.quit()
        watch_code = watcher.term()
        watch_lines = watcher.out.snapshot()
        cache_ids = [r[0] for r in kb.query(os.path.join(watch_dir, "cache.db"), "SELECT id FROM webhook_events")]
        sandbox_code = sandbox.proc.term()
    finally:
        load.stop.set()
        dash.kill()

    # Webhooks: delivered (2xx) vs. received.
    delivered = [d["eventId"] for d in log
                 if d["status"] == "DELIVERED"
                 or any(200 <= (a.get("responseStatus") or 0) < 300 for a in d.get("attempts", []))]
    undelivered = collections.Counter(d["status"] for d in log if d["eventId"] not in set(delivered))
    hooks = [l for l in watch_lines if isinstance(l, dict) and l.get("kind") == "webhook"]
    received = [l["eventId"] for l in hooks if not l.get("duplicate")]
    repeats = [l["eventId"] for l in hooks if l.get("duplicate")]
    twice = [e for e, n in collections.Counter(received).items() if n > 1]
    d_set, r_set, c_set = set(delivered), set(received), set(cache_ids)
    missing_lines, extra_lines = d_set - r_set, r_set - d_set
    missing_cache, extra_cache = d_set - c_set, c_set - d_set
    if missing_lines or extra_lines or twice or missing_cache or extra_cache or len(delivered) != len(d_set):
        failures.append(f"webhooks: {len(missing_lines)} delivered without a line, {len(extra_lines)} lines "
                        f"not logged as delivered, {len(twice)} received twice, {len(missing_cache)} "
                        f"delivered not in the cache, {len(extra_cache)} in the cache not delivered, "
                        f"{len(delivered) - len(d_set)} delivered twice")
    if undelivered:
        failures.append(f"deliveries to watch not delivered at the end: {dict(undelivered)}")
    poll_5xx = [l for l in watch_lines if isinstance(l, dict) and l.get("kind") == "poll_error"
                and (l.get("status") or 0) >= 500]
    rejected = [l for l in watch_lines if isinstance(l, dict) and l.get("kind") == "webhook_rejected"]
    uploads = collections.Counter(l.get("result") if isinstance(l.get("result"), str) else "failed"
                                  for l in watch_lines if isinstance(l, dict) and l.get("kind") == "upload")

    # Panics, everywhere.
    panics = []
    for name, proc in (("sandbox", sandbox.proc), ("watch", watcher)):
        panics += [f"{name}: {l}" for l in proc.err.snapshot() if any(m in l for m in PANIC_MARKS)]
    panics += [f"dashboard pty: {m!r}" for m in dash.marks]
    for d in (sandbox_dir, watch_dir, dash_dir):
        for dirpath, _, names in os.walk(d):
            for n in names:
                if n.endswith(".log"):
                    with open(os.path.join(dirpath, n), "rb") as f:
                        text = f.read().decode("utf-8", "replace")
                    panics += [f"{n}: {l[:200]}" for l in text.splitlines() if any(m in l for m in PANIC_MARKS)]
    if panics:
        failures.append(f"{len(panics)} panic lines: {panics[:3]}")

    five = sum(n for s, n in load.by_status.items() if s == "refused" or s >= 500)
    if five:
        failures.append(f"{five} requests answered 5xx or refused: {load.five_xx[:3]}")
    if poll_5xx:
        failures.append(f"watch saw {len(poll_5xx)} 5xx: {poll_5xx[:2]}")
    if dash_code != 0:
        failures.append(f"the dashboard exited {dash_code} after q")
    if watch_code != 0:
        failures.append(f"watch exited {watch_code} after SIGTERM")

    # RSS: the second minute vs. the last minute.
    rss_rows = []
    for name in ("sandbox", "watch", "dashboard"):
        second = mean([k for t, k in samples[name] if 60 <= t < 120])
        last = mean([k for t, k in samples[name] if elapsed - 60 <= t <= elapsed])
        if second is None or last is None:
            rss_rows.append((name, "-", "-", "-", "too short"))
            continue
        growth = (last - second) / second * 100
        required = name != "sandbox"
        ok = abs(growth) <= 10
        if required and not ok:
            failures.append(f"{name} RSS {second / 1024:.1f} MiB in the second minute, {last / 1024:.1f} MiB "
                            f"in the last ({growth:+.1f} %)")
        rss_rows.append((name, f"{second / 1024:.1f} MiB", f"{last / 1024:.1f} MiB", f"{growth:+.1f} %",
                         ("ok" if ok else "OVER 10 %") if required else ("reported" + ("" if ok else ", over 10 %"))))

    customers = len(load.customers)
    second_min = [n for t, n in known if 60 <= t < 120]
    at_second = second_min[0] if second_min else "-"
    total = sum(load.by_status.values())
    print()
    print(f"Soak: {elapsed:.0f} s of mixed load, {THREADS} threads, {total} requests "
          f"({total / elapsed:.1f}/s), {customers} customers ({INITIAL_CUSTOMERS} made before), "
          f"{load.dropped} inbox drops; watch and the dashboard (pty) beside it")
    print("requests by action: " + ", ".join(f"{a} {n}" for a, n in sorted(load.by_action.items())))
    print("requests by HTTP status: " + ", ".join(f"{s} {n}" for s, n in
                                                   sorted(load.by_status.items(), key=lambda x: str(x[0]))))
    print("deliveries to the dashboard's endpoint: " + ", ".join(
        f"{s} {n}" for s, n in sorted(collections.Counter(d["status"] for d in dash_log).items())))
    print(f"watch's upload lines: {dict(uploads)}; webhook_rejected lines: {len(rejected)}; "
          f"dashboard pty bytes read: {dash.bytes}")
    print()
    print(kb.table([
        ("requests answered 5xx (or refused)", f"{total} requests", five),
        ("panics (stderr, pty, logs)", "3 processes", len(panics)),
        ("webhooks delivered (2xx, sandbox log) vs. received (watch lines, duplicate=false)",
         f"{len(d_set)} delivered, {len(received)} received",
         f"{len(missing_lines)} missing, {len(extra_lines)} extra"),
        ("received twice (duplicate=false)", f"{len(received)}", len(twice)),
        ("delivered vs. the cache's webhook_events", f"{len(c_set)} rows",
         f"{len(missing_cache)} missing, {len(extra_cache)} extra"),
        ("repeats answered as duplicate=true", f"{len(repeats)}", "-"),
        ("dashboard exit after q / watch exit after SIGTERM", "", f"{dash_code} / {watch_code}"),
    ], ["check", "how many", "bad"]))
    print()
    print(kb.table(rss_rows, ["process", "RSS, 2nd minute", "RSS, last minute", "change", "goal ±10 %"]))
    print(f"(customers: {at_second} at the second minute, {customers} at the end; RSS is the mean of the "
          f"10 s samples in each minute)")
    print()
    print(f"command: KYCDASH_BIN={binary} python3 benches/soak.py {seconds}")
    print()
    sys.exit(kb.verdict(failures))


if __name__ == "__main__":
    main()
