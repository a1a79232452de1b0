#!/usr/bin/env bash
# Memory of the real binary at scale, against a separate `kycdash sandbox` process (so the
# sandbox's own memory is not counted), loopback only:
#
#   1. `kycdash watch --once` fills a fresh cache from the sandbox (timed);
#   2. `kycdash watch` runs on the warm cache for SECONDS: peak and current RSS;
#   3. the dashboard (`kycdash`) runs in tmux on the same cache for SECONDS: peak and
#      current RSS, and its CPU time over the last half (idle CPU).
#
# Usage: [KYCDASH_BIN=PATH] benches/rss.sh SANDBOX_DB [SECONDS]
#   SANDBOX_DB: a sandbox database holding the customers (for example the one
#   `cargo run --release --example dashboard_bench 100000 DIR` leaves in DIR/sandbox.db).
set -euo pipefail
cd "$(dirname "$0")/.."

db=${1:?usage: benches/rss.sh SANDBOX_DB [SECONDS]}
seconds=${2:-30}
if [[ -n ${KYCDASH_BIN:-} ]]; then
    bin=$KYCDASH_BIN
else
    cargo build --release --quiet
    bin=${CARGO_TARGET_DIR:-target}/release/kycdash
fi
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port
key=sk_test_kycdash
cleanup() {
    tmux kill-session -t kycdash-rss 2>/dev/null || true
    [[ -n ${sandbox:-} ]] && kill "$sandbox" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mem() { # PID -> "peak X MB, now Y MB"
    awk '/VmHWM/ {p=$2} /VmRSS/ {r=$2} END {printf "peak %.0f MB, now %.0f MB", p/1024, r/1024}' "/proc/$1/status"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

"$bin" sandbox --db "$db" --listen "127.0.0.1:$port" >"$work/sandbox.log" 2>&1 &
sandbox=$!
for _ in $(seq 100); do curl -fs -o /dev/null -H "Authorization: Bearer $key" "$url/v1/customers?limit=1" && break; sleep 0.2; done
echo "sandbox: $(mem $sandbox)"

start=$(date +%s.%N)
"$bin" watch --once --api-url "$url" --api-key "$key" --data-dir "$work/data" --max-rps 0 --concurrency 32 \
    >"$work/once.ndjson"
echo "watch --once, cold cache: $(echo "$(date +%s.%N) - $start" | bc) s; $(grep -c . "$work/once.ndjson") lines"

"$bin" watch --api-url "$url" --api-key "$key" --data-dir "$work/data" --webhook-listen 127.0.0.1:0 \
    >"$work/watch.ndjson" &
watch=$!
sleep "$seconds"
echo "watch, warm cache, after ${seconds} s: $(mem $watch)"
kill -INT $watch
wait $watch || true

tmux new-session -d -s kycdash-rss -x 200 -y 50 \
    "$bin --api-url $url --api-key $key --data-dir $work/data --webhook-listen 127.0.0.1:0"
sleep 2
dash=$(pgrep -n -f "$bin --api-url $url")
sleep $((seconds / 2))
before=$(cpu_ticks "$dash")
sleep $((seconds / 2))
after=$(cpu_ticks "$dash")
hz=$(getconf CLK_TCK)
echo "dashboard, warm cache, after ${seconds} s: $(mem "$dash"); CPU over the last $((seconds / 2)) s:" \
    "$(echo "scale=2; 100 * ($after - $before) / $hz / ($seconds / 2)" | bc) %"
tmux send-keys -t kycdash-rss q
sleep 1
