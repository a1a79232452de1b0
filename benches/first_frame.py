#!/usr/bin/env python3
"""Time from start to the dashboard's first frame showing its cached customers, against an
API that is down (closed port) or that accepts connections and never answers (a blackhole).

usage: benches/first_frame.py BINARY DATA_DIR API_URL KEY [closed|blackhole] [RUNS]
The data directory must hold a cache filled from API_URL with KEY (`kycdash watch --once`).
"""
import fcntl, os, pty, select, socket, struct, subprocess, sys, termios, threading, time

def blackhole(port):
    """Accepts every connection on `port` and never answers."""
    hole = socket.socket(); hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", port)); hole.listen(1024)
    held = []
    def accept():
        while True:
            held.append(hole.accept()[0])
    threading.Thread(target=accept, daemon=True).start()

def first_frame(binary, data_dir, url, key):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", KYCDASH_CONFIG="/nonexistent.toml")
    start = time.monotonic()
    child = subprocess.Popen([binary, "--api-url", url, "--api-key", key, "--data-dir", data_dir],
                             stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen, elapsed = b"", None
    while time.monotonic() - start < 10:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try: seen += os.read(master, 65536)
            except OSError: break
            if b"Customers " in seen and b"/" in seen.split(b"Customers ", 1)[1][:12]:
                elapsed = time.monotonic() - start
                break
    os.write(master, b"q")
    try: child.wait(timeout=10)
    except subprocess.TimeoutExpired: child.kill()
    return elapsed

if __name__ == "__main__":
    binary, data_dir, url, key = sys.argv[1:5]
    mode = sys.argv[5] if len(sys.argv) > 5 else "closed"
    runs = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    if mode == "blackhole":
        blackhole(int(url.rsplit(":", 1)[1]))
    times = [first_frame(binary, data_dir, url, key) for _ in range(runs)]
    shown = ["%.0f ms" % (t * 1000) if t else "none in 10 s" for t in times]
    print(f"{mode}: first frame with the cached rows: {', '.join(shown)}")
