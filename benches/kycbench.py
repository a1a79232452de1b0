"""What the reliability campaigns under benches/ share: the binary, a sandbox process, a
`watch` process, the API over HTTP, the cache read with sqlite3, and process memory.

Only loopback addresses are used; every wait is bounded; every process started here is
stopped when the script exits (`Procs.close`, also on an exception).
Standard library only, so a fresh clone needs nothing but Python 3 and cargo.
"""
import atexit, json, os, queue, random, re, signal, sqlite3, subprocess, sys, tempfile, threading
import time, urllib.error, urllib.request, uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk_test_kycdash"


def binary():
    """The release binary: $KYCDASH_BIN, or `cargo build --release` and its output."""
    if os.environ.get("KYCDASH_BIN"):
        return os.environ["KYCDASH_BIN"]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "kycdash")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(**extra):
    """An environment with no profile, no KYCDASH_* from the caller, and logs at info."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KYCDASH_")}
    env.update(KYCDASH_CONFIG="/nonexistent/kycdash-bench.toml", RUST_LOG="info")
    env.update(extra)
    return env


class Lines:
    """Reads a pipe on a thread; keeps every line; `wait` for one matching a predicate."""

    def __init__(self, pipe, keep_json=False):
        self.lines, self.cond, self.closed = [], threading.Condition(), False
        self.keep_json = keep_json
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe):
        for raw in iter(pipe.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            item = text
            if self.keep_json:
                try:
                    item = json.loads(text)
                except ValueError:
                    item = {"kind": "_unparsed", "text": text}
            with self.cond:
                self.lines.append(item)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pred, timeout, start=0):
        """The first line from index `start` on that satisfies `pred`, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(min(left, 0.5))

    def snapshot(self):
        with self.cond:
            return list(self.lines)


class Proc:
    """A started kycdash process with its stdout and stderr read on threads."""

    def __init__(self, args, env=None, json_stdout=False, stdin=subprocess.DEVNULL):
        self.args = args
        self.p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env or isolated_env())
        self.out = Lines(self.p.stdout, keep_json=json_stdout)
        self.err = Lines(self.p.stderr)
        PROCS.add(self)

    @property
    def pid(self):
        return self.p.pid

    def kill9(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=30)

    def term(self, timeout=30):
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=30)
        return self.p.returncode

    def rss_kb(self):
        return rss_kb(self.pid)


class Procs:
    def __init__(self):
        self.all = []
        atexit.register(self.close)

    def add(self, proc):
        self.all.append(proc)

    def close(self):
        for proc in self.all:
            if proc.p.poll() is None:
                proc.p.kill()
                try:
                    proc.p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass


PROCS = Procs()


def rss_kb(pid):
    """Resident memory of a process in KiB (VmRSS), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Sandbox:
    """`kycdash sandbox` on a loopback port, on a database file that outlives the process."""

    def __init__(self, bin_path, db, port=0, keys=(KEY,), extra=()):
        self.bin, self.db, self.keys, self.extra = bin_path, db, list(keys), list(extra)
        self.port, self.proc = port, None
        self.start()

    def start(self, timeout=60):
        args = [self.bin, "sandbox", "--listen", f"127.0.0.1:{self.port}", "--db", self.db]
        for key in self.keys:
            args += ["--api-key", key]
        self.proc = Proc(args + self.extra)
        line = self.proc.out.wait(lambda l: "listening on http://" in l, timeout)
        if line is None:
            self.proc.kill9()
            raise RuntimeError("the sandbox did not start: " + "\n".join(self.proc.err.snapshot()[-5:]))
        self.url = re.search(r"http://[0-9.:]+", line).group(0)
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def kill9(self):
        self.proc.kill9()

    def api(self, key=KEY):
        return Api(self.url, key)


class Api:
    """JSON over HTTP with a bearer key; every call answers (status, body) and never raises
    for an HTTP status. A refused connection answers (None, reason)."""

    def __init__(self, url, key=KEY, timeout=30):
        self.url, self.key, self.timeout = url, key, timeout

    def call(self, method, path, body=None, idem=None, headers=None, raw=None, content_type=None):
        data, hdrs = None, {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
        if raw is not None:
            data, hdrs["Content-Type"] = raw, content_type
        if idem:
            hdrs["Idempotency-Key"] = idem
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            return None, str(e)

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None, idem=None):
        return self.call("POST", path, body if body is not None else {}, idem=idem)

    def patch(self, path, body):
        return self.call("PATCH", path, raw=json.dumps(body).encode(),
                         content_type="application/merge-patch+json")

    def create_customer(self, last_name="Lovelace", external_id=None, idem=None):
        return self.post("/v1/customers", customer_body(last_name, external_id), idem=idem)

    def upload(self, customer_id, doc_type, content, filename="doc.pdf", idem=None):
        boundary = "kycbench" + uuid.uuid4().hex
        parts = []
        for name, value in (("customerId", customer_id), ("type", doc_type)):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     f'Content-Type: application/octet-stream\r\n\r\n'.encode() + content + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        return self.call("POST", "/v1/compliance/upload-doc", raw=b"".join(parts),
                         content_type=f"multipart/form-data; boundary={boundary}", idem=idem)

    def advance(self, seconds):
        return self.post("/v1/sandbox/clock/advance", {"seconds": seconds})

    def simulate(self, customer_id, action):
        return self.post(f"/v1/sandbox/customers/{customer_id}/simulate", {"action": action})

    def all_customers(self):
        """Every customer, following the listing's cursor."""
        out, cursor = [], None
        while True:
            path = "/v1/customers?limit=100" + (f"&cursor={cursor}" if cursor else "")
            status, body = self.get(path)
            if status != 200:
                raise RuntimeError(f"listing customers: {status} {body}")
            out += body.get("data", [])
            cursor = body.get("nextCursor")
            if not cursor:
                return out


def _decode(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def customer_body(last_name="Lovelace", external_id=None):
    body = {
        "ipAddress": "203.0.113.7",
        "kyc": {"firstName": "Ada", "lastName": last_name, "birthDate": "1990-04-12",
                "documentNumber": "X1",
                "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001",
                                "countryCode": "US"},
                "nationality": "US", "occupation": "11"},
    }
    if external_id:
        body["externalId"] = external_id
    return body


# The smallest files the sandbox takes as each kind, by their magic bytes.
PDF = b"%PDF-1.4\n%bench\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def watch(bin_path, url, data_dir, key=KEY, extra=(), env=None, port=0):
    """`kycdash watch` on a data directory with a receiver on a loopback port (0: a free one;
    a fixed one, as a deployment has, lets a restarted watch reuse its endpoint)."""
    args = [bin_path, "watch", "--api-url", url, "--api-key", key, "--data-dir", data_dir,
            "--webhook-listen", f"127.0.0.1:{port}"] + list(extra)
    return Proc(args, env=env, json_stdout=True)


def started_watch(bin_path, url, data_dir, port=0, extra=(), timeout=60):
    """`watch`, once it printed its `started` line (RuntimeError with its stderr if not)."""
    proc = watch(bin_path, url, data_dir, extra=extra, port=port)
    if proc.out.wait(lambda l: l.get("kind") == "started", timeout) is None:
        raise RuntimeError("watch did not start: " + "\n".join(proc.err.snapshot()[-5:]))
    return proc


def wait_until(pred, timeout, step=0.2):
    """Whether `pred()` became true within `timeout` seconds (asked every `step`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def verdict(problems, limit=30):
    """Prints each goal missed (or that all were met); the script's exit code."""
    for problem in problems[:limit]:
        print("PROBLEM:", problem)
    if len(problems) > limit:
        print(f"... and {len(problems) - limit} more")
    if not problems:
        print("all goals met")
    return 1 if problems else 0


def query(db_path, sql, params=()):
    """Rows of a read-only query on a SQLite file another process may be writing."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def tempdir(prefix):
    """A temporary directory removed at exit unless KYCDASH_KEEP is set."""
    path = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("KYCDASH_KEEP"):
        import shutil
        atexit.register(shutil.rmtree, path, True)
    return path


def table(rows, header):
    """A Markdown table, for pasting into the README."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in rows])
