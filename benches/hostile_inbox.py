#!/usr/bin/env python3
"""Hostile files (issue 17): `kycdash watch`'s inbox fed what should never block it or be read
outside it, then 10,000 files at once.

usage: benches/hostile_inbox.py [FILES [MAX_RPS]]   (default 10000 files, and watch's
       --max-rps 0: no cap, the sandbox is on loopback; watch's default against an API that
       is not its embedded sandbox is 20 requests/s, and each file costs two: its upload and
       the status pull that follows. The binary: $KYCDASH_BIN, else cargo build --release)

Against a `kycdash sandbox` with 20 customers (externalIds ada-1 … ada-20), the inbox gets:
a symbolic link to /etc/passwd named like a document (at the top and in a customer folder), a
link to a folder outside the inbox named like a customer folder, a dangling link, a FIFO and a
Unix socket named like documents, a folder named like a document, a file that grows all the
time (a writer thread appends 64 KiB every 50 ms until the checks are done, then stops: it
must then settle and be refused, past 10 MiB), a 0-byte file, names with `..`,
with a newline and with invalid UTF-8 bytes. Then a valid file: it must be uploaded within
15 s (nothing blocks). Checks: each hostile entry ends in `.failed/` with `NAME.error.txt`
or is left alone exactly as the README's "The inbox" says (hidden names; a folder is a
customer's folder); the growing file is not uploaded while it grows; nothing outside the inbox
is uploaded (no document on the sandbox has the SHA-256 of /etc/passwd or of the outside
file). Then FILES valid documents (distinct contents, spread over the 20 customers and the 5
types) are renamed into the inbox at once; the drain rate is FILES / (first rename → the last
`upload` line), and every one must be uploaded once (the sandbox's document count).
Exit 1 if any goal is missed. Loopback only; everything it starts is stopped, also on error.
"""
import collections, hashlib, os, socket, sys, threading, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kycbench as kb

CUSTOMERS = 20
TYPES = ["W9", "W8BEN", "SOURCE_OF_FUNDS", "PROOF_OF_ADDRESS", "BIOMETRIC_REPORT"]
PROBE_BOUND = 15.0
GROW_CHUNK = 64 * 1024            # every 50 ms: about 1.3 MiB/s, past the 10 MiB limit in ~8 s


def unique_pdf(tag):
    return kb.PDF + b"%" + tag.encode() + b" " + uuid.uuid4().hex.encode() + b"\n"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def uploads(watcher):
    return [l for l in watcher.out.snapshot() if isinstance(l, dict) and l.get("kind") == "upload"]


def wait_upload(watcher, name_end, timeout):
    """The first `upload` line whose path ends with `name_end` (a str, as watch prints it)."""
    return watcher.out.wait(lambda l: isinstance(l, dict) and l.get("kind") == "upload"
                            and l.get("path", "").endswith(name_end), timeout)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    max_rps = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    binary = kb.binary()
    root = kb.tempdir("kycdash-hostile-")
    watch_dir, outside, staging = (os.path.join(root, d) for d in ("watch", "outside", "staging"))
    for d in (watch_dir, outside, staging):
        os.makedirs(d)
    failures, rows = [], []

    sandbox = kb.Sandbox(binary, os.path.join(root, "sandbox.db"))
    api = sandbox.api()
    ids = {}
    for n in range(1, CUSTOMERS + 1):
        status, body = api.create_customer(external_id=f"ada-{n}")
        if status != 201:
            raise SystemExit(f"creating ada-{n}: {status} {body}")
        ids[f"ada-{n}"] = body["id"]
    watcher = kb.watch(binary, sandbox.url, watch_dir, extra=["--max-rps", str(max_rps)])
    started = watcher.out.wait(lambda l: isinstance(l, dict) and l.get("kind") == "started", 60)
    if started is None:
        raise SystemExit("watch did not start: " + "\n".join(watcher.err.snapshot()[-5:]))
    inbox = started["inbox"]
    os.makedirs(inbox, exist_ok=True)
    binbox = os.fsencode(inbox)
    j = lambda *parts: os.path.join(binbox, *[os.fsencode(p) if isinstance(p, str) else p for p in parts])

    # --- The hostile entries. Each: (label, bytes name relative to the inbox, expected).
    # expected: "failed" (moved to .failed/ with NAME.error.txt), "ignored" (left where it is,
    # never uploaded), "customer folder" (a folder: its files are handled by their names).
    with open("/etc/passwd", "rb") as f:
        passwd_sha = sha(f.read())
    outside_pdf = unique_pdf("outside the inbox")
    with open(os.path.join(outside, "W9.pdf"), "wb") as f:
        f.write(outside_pdf)
    outside_sha = sha(outside_pdf)
    hostile = []

    def add(label, name, expected, make):
        make(j(name))
        hostile.append((label, name if isinstance(name, bytes) else os.fsencode(name), expected))

    add("symlink to /etc/passwd", "ada-1__W9.pdf", "failed", lambda p: os.symlink(b"/etc/passwd", p))
    os.makedirs(j("ada-2"))
    add("symlink to /etc/passwd in a customer folder", "ada-2/W8BEN.pdf", "failed",
        lambda p: os.symlink(b"/etc/passwd", p))
    add("symlink to a folder outside, named like a customer", "ada-3", "failed",
        lambda p: os.symlink(os.fsencode(outside), p))
    add("dangling symlink", "ada-4__W9.pdf", "failed", lambda p: os.symlink(b"/nonexistent/kycdash", p))
    add("FIFO", "ada-1__W8BEN.pdf", "failed", lambda p: os.mkfifo(p))
    sock = socket.socket(socket.AF_UNIX)
    add("Unix socket", "ada-1__PROOF_OF_ADDRESS.pdf", "failed", lambda p: sock.bind(p))
    add("folder named like a document", "ada-1__SOURCE_OF_FUNDS.pdf", "customer folder", lambda p: os.mkdir(p))
    add("0-byte file", "ada-5__W9.pdf", "failed", lambda p: open(p, "wb").close())
    add("name with .. (unknown customer)", "ada..1__W9.pdf", "failed",
        lambda p: open(p, "wb").write(unique_pdf("dots")))
    add("name with .. (the type)", "ada-1__W9..pdf", "failed", lambda p: open(p, "wb").write(unique_pdf("dots2")))
    add("name starting with ..", "..ada-1__W9.pdf", "ignored", lambda p: open(p, "wb").write(unique_pdf("dots3")))
    # TYPE is read trimmed and in any case: "W9\n" is a W9.
    add("newline in the type (read as W9)", b"ada-6__W9\n.pdf", "processed", lambda p: open(p, "wb").write(unique_pdf("nl")))
    add("newline in the customer", b"ada-6\n__W9.pdf", "failed", lambda p: open(p, "wb").write(unique_pdf("nl2")))
    add("invalid UTF-8 in the name", b"ada-7__W9\xff\xfe.pdf", "failed",
        lambda p: open(p, "wb").write(unique_pdf("utf8")))
    os.makedirs(j(b"\xffada-8"))
    add("invalid UTF-8 folder", b"\xffada-8/W9.pdf", "failed", lambda p: open(p, "wb").write(unique_pdf("utf8b")))

    # A file that grows all the time, from a PDF header on: never settles, so never read.
    grow_path, grow_stop, grown = j("ada-9__W9.pdf"), threading.Event(), [0]

    def grow():
        with open(grow_path, "wb") as f:
            f.write(kb.PDF)
            while not grow_stop.is_set():
                f.write(b"%" + b"x" * (GROW_CHUNK - 2) + b"\n")
                f.flush()
                grown[0] += GROW_CHUNK
                grow_stop.wait(0.05)
    writer = threading.Thread(target=grow, daemon=True)
    writer.start()

    # --- Nothing blocks: a valid file dropped after them is uploaded within the bound.
    time.sleep(0.5)
    probe_name = "ada-10__W9__after the hostile ones.pdf"
    with open(j(probe_name + ".part"), "wb") as f:
        f.write(unique_pdf("probe"))
    t_probe = time.monotonic()
    os.rename(j(probe_name + ".part"), j(probe_name))
    line = wait_upload(watcher, probe_name, PROBE_BOUND + 30)
    probe_s = time.monotonic() - t_probe
    if line is None or line.get("result") != "uploaded" or probe_s > PROBE_BOUND:
        failures.append(f"the valid file after the hostile ones: {line} after {probe_s:.1f} s "
                        f"(bound {PROBE_BOUND:.0f} s)")
    rows.append(("valid file dropped after the hostile ones", "uploaded",
                 f"{line.get('result') if line else 'nothing'} in {probe_s:.1f} s"))

    # Give every hostile entry time for its settle window and a rescan.
    time.sleep(5)

    def check_hostile():
        failed_dir = j(".failed")
        bad = []
        for label, name, expected in hostile:
            here = os.path.lexists(j(name))
            in_failed = os.path.lexists(os.path.join(failed_dir, name))
            note = os.path.join(failed_dir, name + b".error.txt")
            reason = open(note, "rb").read().decode("utf-8", "replace").splitlines()[0] if os.path.exists(note) else None
            if reason:  # the first clause is enough for the table (the note goes on with how to name it)
                reason = reason.split(": name it ")[0].split("; check the name")[0]
            if expected == "failed":
                ok = in_failed and not here and reason is not None
                got = f"in .failed: {reason}" if ok else f"here={here} in_failed={in_failed} note={reason}"
            elif expected == "processed":
                moved = os.path.lexists(os.path.join(j(".processed"), name))
                ok = moved and not here and not in_failed
                got = "uploaded, in .processed" if ok else f"here={here} in_failed={in_failed} processed={moved}"
            elif expected == "ignored":
                ok = here and not in_failed
                got = "left alone (hidden)" if ok else f"here={here} in_failed={in_failed}"
            else:
                ok = here and os.path.isdir(j(name)) and not in_failed
                got = "left alone (a customer's folder, empty)" if ok else f"here={here} in_failed={in_failed}"
            if not ok:
                bad.append(f"{label} ({name!r}): expected {expected}, {got}")
            rows.append((label, expected, got if ok else "WRONG: " + got))
        return bad
    failures += check_hostile()

    # The growing file: not uploaded while it grows.
    growing_lines = [l for l in uploads(watcher) if l.get("path", "").endswith("ada-9__W9.pdf")]
    if growing_lines:
        failures.append(f"the growing file was handled while growing: {growing_lines}")
    rows.append(("file growing all the time (%d KiB so far)" % (grown[0] // 1024), "waits, not read",
                 "waits" if not growing_lines else f"WRONG: {growing_lines}"))

    # --- FILES at once, while the file keeps growing.
    names = []
    for i in range(count):
        cust = f"ada-{1 + i % CUSTOMERS}"
        doc_type = TYPES[(i // CUSTOMERS) % len(TYPES)]
        name = f"{cust}__{doc_type}__bulk {i:05d}.pdf"
        with open(os.path.join(staging, name), "wb") as f:
            f.write(unique_pdf(f"bulk {i}"))
        names.append(name)
    before = len(uploads(watcher))
    t0 = time.monotonic()
    for name in names:
        os.rename(os.path.join(staging, name), os.path.join(inbox, name))
    dropped_s = time.monotonic() - t0
    bound = max(300.0, count / 5.0)
    done_at, seen = None, 0
    while time.monotonic() - t0 < bound:
        bulk = [l for l in uploads(watcher)[before:] if "__bulk " in l.get("path", "")]
        if len(bulk) > seen:
            seen, last_change = len(bulk), time.monotonic()
        if seen >= count:
            done_at = last_change
            break
        if watcher.p.poll() is not None:
            failures.append(f"watch exited ({watcher.p.returncode}) during the drain")
            break
        time.sleep(0.2)
    bulk = [l for l in uploads(watcher)[before:] if "__bulk " in l.get("path", "")]
    results = collections.Counter(l.get("result") for l in bulk)
    if done_at is None:
        failures.append(f"{len(bulk)} of {count} files handled within {bound:.0f} s ({dict(results)})")
        drain_s = time.monotonic() - t0
    else:
        drain_s = done_at - t0
    rate = len(bulk) / drain_s if drain_s > 0 else 0
    if results.get("uploaded", 0) != count:
        failures.append(f"bulk results: {dict(results)}, expected {count} uploaded")
    rows.append((f"{count} valid files renamed into the inbox at once ({dropped_s:.1f} s to drop)",
                 "all uploaded once", f"{dict(results)} in {drain_s:.1f} s: {rate:.0f} files/s"))

    # A valid file dropped after the batch, while the file still grows.
    probe2 = "ada-11__W9__after the batch.pdf"
    with open(j(probe2 + ".part"), "wb") as f:
        f.write(unique_pdf("probe2"))
    t_probe2 = time.monotonic()
    os.rename(j(probe2 + ".part"), j(probe2))
    line2 = wait_upload(watcher, probe2, PROBE_BOUND + 30)
    probe2_s = time.monotonic() - t_probe2
    if line2 is None or line2.get("result") != "uploaded" or probe2_s > PROBE_BOUND:
        failures.append(f"the valid file after the batch: {line2} after {probe2_s:.1f} s")
    rows.append(("valid file dropped after the batch", "uploaded",
                 f"{line2.get('result') if line2 else 'nothing'} in {probe2_s:.1f} s"))

    # The growing file stops growing: it settles and is refused (it is past 10 MiB) or
    # uploaded, once, like any other file.
    still_growing = not [l for l in uploads(watcher) if l.get("path", "").endswith("ada-9__W9.pdf")]
    grow_stop.set()
    writer.join(timeout=10)
    grown_line = wait_upload(watcher, "ada-9__W9.pdf", 30)
    grown_result = (grown_line or {}).get("result")
    expected_grown = "failed" if grown[0] + len(kb.PDF) > 10 * 1024 * 1024 else "uploaded"
    if not still_growing or grown_result != expected_grown:
        failures.append(f"the grown file: handled while growing={not still_growing}, then {grown_line}")
    rows.append((f"the growing file once stopped ({(grown[0] + len(kb.PDF)) / 1048576:.1f} MiB)", expected_grown,
                 f"{grown_result}: {(grown_line or {}).get('error', '')[:60]}"))

    # Nothing from outside the inbox on the sandbox; every document uploaded once.
    outside_docs, docs_total = [], 0
    for ext, cid in ids.items():
        status, body = api.get(f"/v1/compliance/documents/{cid}")
        if status != 200:
            failures.append(f"documents of {ext}: {status}")
            continue
        for d in body.get("data", []):
            docs_total += 1
            if d.get("sha256") in (passwd_sha, outside_sha):
                outside_docs.append((ext, d.get("fileName"), d.get("type")))
    expected_docs = (count + 2 + sum(1 for _, _, e in hostile if e == "processed")
                     + (1 if expected_grown == "uploaded" else 0))
    if outside_docs:
        failures.append(f"read outside the inbox and uploaded: {outside_docs}")
    if docs_total != expected_docs:
        failures.append(f"{docs_total} documents on the sandbox, expected {expected_docs}")
    rows.append(("documents on the sandbox from outside the inbox (/etc/passwd, ../outside/W9.pdf)", "0",
                 len(outside_docs)))
    rows.append(("documents on the sandbox in all", str(expected_docs), docs_total))

    panics = [l for l in watcher.err.snapshot() + sandbox.proc.err.snapshot()
              if "internal error" in l or "panicked" in l]
    code = watcher.term()
    if panics:
        failures.append(f"panics: {panics[:3]}")
    if code != 0:
        failures.append(f"watch exited {code} after SIGTERM")
    sock.close()

    print()
    print(f"Hostile files: {len(hostile)} hostile entries and a file growing {GROW_CHUNK * 20 // 1024} KiB/s, then {count} "
          f"valid files at once, in the inbox of a running `kycdash watch` against a sandbox")
    print()
    print(kb.table(rows, ["entry", "expected", "got"]))
    print()
    print(f"drain: {count} files in {drain_s:.1f} s = {rate:.0f} files/s (first rename to the last "
          f"`upload` line), watch --max-rps {max_rps}; watch exit {code}; panics {len(panics)}")
    print(f"command: KYCDASH_BIN={binary} python3 benches/hostile_inbox.py {count} {max_rps}")
    print()
    sys.exit(kb.verdict(failures))


if __name__ == "__main__":
    main()
