#!/usr/bin/env python3
"""Disk (issue 17): the cache's directory (the `watch` data directory, cache.db in it) made
read-only mid-run, then writable again; then a full disk, then space freed.

Root only (it mounts): chmod does not stop root, and an open file keeps its write access
whatever its directory's mode, so neither chmod nor `mount -o remount,ro` (refused, EBUSY, while
cache.db is open for writing) can make the cache read-only under a running watch. What does is
what a file system does to a running process after an error: the data directory is an ext4
image on a loop device mounted errors=remount-ro, and /sys/fs/ext4/<dev>/trigger_fs_error puts
it into the kernel's emergency read-only, every write of the watch failing with EROFS. That
cannot be undone while a file is open on it, so "writable again" is: the watch stopped
(SIGTERM), the file system unmounted, checked (e2fsck -fy) and mounted again, the watch started
again on the same data directory and receiver port. The full disk is a small tmpfs (--size)
filled by a ballast file, deleted afterwards, the watch running throughout.

Each part: a `watch` runs with its receiver registered; a baseline of customers reaches the
cache; the fault starts; for --fault seconds customers are created, started and completed
(webhooks and polls happen); the fault ends; the sandbox clock is advanced so that the
deliveries it is retrying come due. Checks: a clear message while the fault lasts (stderr or
poll_error lines naming it), no panic and the watch still running, nothing answered 2xx that was
not stored (every event the sandbox logged a 2xx attempt for is in cache.db's webhook_events
afterwards), and recovery (every customer made during the fault, and new ones made afterwards,
reach a `stage_changed` line and cache.db).

    sudo KYCDASH_BIN=target/release/kycdash python3 benches/disk.py [--fault 15] [--size 16m]

Not root: it says so and exits 0 without testing. Everything it mounted is unmounted (finally
and atexit); exits 1 when a goal is missed. Loopback only.
"""
import argparse, atexit, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kycbench as kb  # noqa: E402

MOUNTED = []


def mount_tmpfs(path, size):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path], check=True)
    MOUNTED.append(path)


def mount_ext4(path, image, size):
    """An ext4 image on a loop device, with errors=remount-ro: the kernel's emergency
    read-only is what a file system does to a running process after an I/O error."""
    subprocess.run(["truncate", "-s", size, image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", image, path], check=True)
    MOUNTED.append(path)
    os.chmod(path, 0o700)
    dev = os.path.basename(subprocess.run(["findmnt", "-n", "-o", "SOURCE", path], check=True,
                                          capture_output=True, text=True).stdout.strip())
    return f"/sys/fs/ext4/{dev}/trigger_fs_error"


def unmount_all():
    while MOUNTED:
        path = MOUNTED.pop()
        if subprocess.run(["umount", path], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", path], capture_output=True)


atexit.register(unmount_all)


def reported(watches):
    return {l["customerId"] for w in watches for l in w.out.snapshot()
            if isinstance(l, dict) and l.get("kind") == "stage_changed"}


def cached(cache):
    try:
        return {r[0] for r in kb.query(cache, "SELECT id FROM customers")}
    except Exception:  # the cache may be unreadable while the fault lasts
        return set()


def make_changes(api, tag, n):
    """n customers created, KYC started, and every other one completed: webhooks and stages."""
    ids = []
    for i in range(n):
        status, body = api.create_customer(last_name="Disk", external_id=f"{tag}-{i}")
        if status != 201:
            raise RuntimeError(f"create: {status} {body}")
        cid = body["id"]
        ids.append(cid)
        api.post("/v1/compliance/kyc", {"customerId": cid})
        if i % 2:
            api.simulate(cid, "SDK_COMPLETE")
    return ids


def fill(path):
    """Writes a ballast file until the file system is full; its size."""
    ballast = os.path.join(path, "ballast")
    written = 0
    # Unbuffered: a buffered file would fail again when closed, flushing what did not fit.
    with open(ballast, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        try:
            while True:
                written += f.write(chunk)
        except OSError:
            pass
    try:
        with open(ballast, "ab", buffering=0) as f:  # the last bytes a smaller chunk still fits
            while True:
                written += f.write(b"\0" * 512)
    except OSError:
        pass
    return written


def run_part(binp, name, opts, problems):
    work = kb.tempdir(f"kyc-disk-{name}-")
    db = os.path.join(work, "sandbox.db")
    data_dir = os.path.join(work, "data")
    os.mkdir(data_dir, 0o700)
    image = os.path.join(work, "data.ext4")
    if name == "read-only":
        trigger = mount_ext4(data_dir, image, "64M")
        if not os.path.exists(trigger):
            raise RuntimeError(f"{trigger} is missing: this kernel cannot make ext4 read-only on demand")
    else:
        mount_tmpfs(data_dir, opts.size)
    cache = os.path.join(data_dir, "cache.db")
    sandbox = kb.Sandbox(binp, db)
    api = sandbox.api()
    wport = kb.free_port()
    watch = kb.started_watch(binp, sandbox.url, data_dir, wport)
    watches = [watch]
    row = None
    try:
        if not kb.wait_until(lambda: api.get("/v1/webhooks")[1].get("data"), 60):
            raise RuntimeError("the watch registered no endpoint")
        base = make_changes(api, f"{name}-base", 5)
        if not kb.wait_until(lambda: set(base) <= cached(cache) and set(base) <= reported(watches), 60):
            problems.append(f"({name}) the baseline did not reach the cache")
        err_mark, out_mark = len(watch.err.snapshot()), len(watch.out.snapshot())
        ballast = 0
        if name == "read-only":
            with open(trigger, "w") as f:
                f.write("1")
            try:
                open(os.path.join(data_dir, "probe"), "w").close()
                raise RuntimeError("the file system did not become read-only")
            except OSError:
                pass
        else:
            ballast = fill(data_dir)
        fault_started = time.monotonic()
        during = []
        while time.monotonic() - fault_started < opts.fault:
            during += make_changes(api, f"{name}-during-{len(during)}", 2)
            time.sleep(1)
        alive_in_fault = watch.p.poll() is None
        stop_code = None
        if name == "read-only":
            # An emergency read-only cannot be undone while a file is open for writing on it:
            # writable again means the watch stopped, the file system checked and mounted again,
            # and the watch started again on the same data directory.
            stop_code = watch.term()
            subprocess.run(["umount", data_dir], check=True)
            MOUNTED.remove(data_dir)
            subprocess.run(["e2fsck", "-f", "-y", image], capture_output=True)
            subprocess.run(["mount", "-o", "loop,errors=remount-ro", image, data_dir], check=True)
            MOUNTED.append(data_dir)
            watch = kb.started_watch(binp, sandbox.url, data_dir, wport)
            watches.append(watch)
        else:
            os.unlink(os.path.join(data_dir, "ballast"))
        restored = time.monotonic()
        fault_err = watches[0].err.snapshot()[err_mark:]
        fault_out = [l for l in watches[0].out.snapshot()[out_mark:] if isinstance(l, dict)]
        poll_errors = [l for l in fault_out if l.get("kind") == "poll_error"]
        words = ("read-only", "readonly", "full", "no space", "disk")
        clear = [l for l in fault_err if any(w in l.lower() for w in words)] + \
                [l["error"] for l in poll_errors if any(w in l.get("error", "").lower() for w in words)]
        if not clear:
            problems.append(f"({name}) no message naming the fault; stderr: {fault_err[-5:]}")
        if stop_code not in (None, 0):
            problems.append(f"({name}) watch exit {stop_code} on SIGTERM during the fault "
                            f"(stderr: {watches[0].err.snapshot()[-3:]})")
        if not alive_in_fault:
            problems.append(f"({name}) watch exited during the fault: {watch.p.returncode}")
        # Recovery: retries come due (the sandbox backs off on its own clock), a new change.
        after = make_changes(api, f"{name}-after", 2)
        everyone = set(base) | set(during) | set(after)
        ok = False
        for _ in range(40):
            pending = kb.query(db, "SELECT count(*) FROM deliveries WHERE status IN ('PENDING','IN_FLIGHT')")[0][0]
            if not pending and everyone <= cached(cache) and everyone <= reported(watches):
                ok = True
                break
            if pending:
                api.advance(30)
            time.sleep(1.5)
        recovered_in = time.monotonic() - restored
        if not ok:
            problems.append(f"({name}) no recovery: not cached {len(everyone - cached(cache))}, "
                            f"not reported {len(everyone - reported(watches))}")
        acked = [r[0] for r in kb.query(db, """SELECT DISTINCT e.id FROM delivery_attempts a
                     JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.seq = d.event_seq
                     WHERE a.response_status BETWEEN 200 AND 299""")]
        stored = {r[0] for r in kb.query(cache, "SELECT id FROM webhook_events")}
        lost = [e for e in acked if e not in stored]
        if lost:
            problems.append(f"({name}) {len(lost)} webhooks answered 2xx but not in cache.db: {lost[:3]}")
        refused = kb.query(db, """SELECT count(*) FROM delivery_attempts
                     WHERE response_status IS NULL OR response_status NOT BETWEEN 200 AND 299""")[0][0]
        panics = [l for w in watches for l in w.err.snapshot() if "panicked" in l or "internal error" in l]
        if panics:
            problems.append(f"({name}) panic: {panics[:2]}")
        if watch.p.poll() is not None:
            problems.append(f"({name}) watch not running after the fault: {watch.p.returncode}")
        code = watch.term()
        if code != 0:
            problems.append(f"({name}) watch exit {code} on SIGTERM")
        sample = (clear[0] if clear else "(none)")[:150]
        how = (f" (tmpfs {opts.size}, ballast {ballast // 1024} KiB, then deleted)" if ballast else
               f" (ext4 on a loop device, emergency read-only; then stopped with exit {stop_code}, "
               f"e2fsck, mounted rw, watch started again)")
        row = [f"Disk: {name}" + how,
               f"{opts.fault} s fault, {len(during)} customers created meanwhile; {len(acked)} webhooks answered 2xx, "
               f"{refused} attempts refused/failed (retried)",
               f"lost {len(lost)}; {len(poll_errors)} poll_error lines, {len(clear)} lines naming the fault, "
               f"e.g. `{sample}`; panics {len(panics)}; recovered {'yes' if ok else 'NO'} in {recovered_in:.1f} s"]
    finally:
        for w in watches:
            w.term()
        sandbox.proc.term()
        unmount_all()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fault", type=int, default=15, help="seconds each fault lasts")
    ap.add_argument("--size", default="16m", help="the tmpfs size")
    ap.add_argument("--part", choices=["ro", "full", "both"], default="both")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        print("benches/disk.py: SKIPPED, not run: it needs root to mount a tmpfs and remount it "
              "read-only (chmod does not stop root, and a non-root chmod test would not be a full "
              "disk); run it with sudo.", file=sys.stderr)
        return 0
    binp, problems, rows = kb.binary(), [], []
    started = time.monotonic()
    if opts.part in ("ro", "both"):
        rows.append(run_part(binp, "read-only", opts, problems))
    if opts.part in ("full", "both"):
        rows.append(run_part(binp, "full", opts, problems))
    print()
    print(kb.table([r for r in rows if r] + [["", "goals missed (goal 0)", len(problems)]],
                   ["fault", "what", "figures"]))
    print(f"\n{time.monotonic() - started:.0f} s in all")
    print(f"command: sudo KYCDASH_BIN={binp} python3 benches/disk.py --fault {opts.fault} --size {opts.size}")
    return kb.verdict(problems)


if __name__ == "__main__":
    sys.exit(main())
