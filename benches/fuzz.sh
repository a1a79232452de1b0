#!/usr/bin/env bash
# The fuzz campaign (issue 17): builds the cargo-fuzz targets in fuzz/ (nightly, AddressSanitizer)
# and runs each one, one after another, for SECONDS, from seeds this script writes. Prints per
# target the executions (libFuzzer's final stats), the corpus size and the findings (crash,
# timeout, leak or out-of-memory inputs under fuzz/artifacts/TARGET/), then the exact command.
# Exits non-zero if a target found something or did not run.
#
#   benches/fuzz.sh SECONDS [TARGET...]      e.g. benches/fuzz.sh 600
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz from
# crates.io when it is missing. Builds into fuzz/target (never the stable build's directories).
set -euo pipefail

SECONDS_PER_TARGET=${1:?usage: benches/fuzz.sh SECONDS [TARGET...]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ="$ROOT/fuzz"
ALL_TARGETS=(webhook inbox_name customer_patch evaluate_stage config dashboard)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
RSS_LIMIT_MB=${FUZZ_RSS_LIMIT_MB:-2048}

# Nightly artifacts have their own directory: not the stable build's target or build dir.
unset CARGO_BUILD_BUILD_DIR
export CARGO_TARGET_DIR="$FUZZ/target"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Seeds: a few valid inputs per target, written here so that nothing but the script is committed.
seed() { # target name content
    mkdir -p "$FUZZ/corpus/$1"
    printf '%s' "$3" >"$FUZZ/corpus/$1/seed-$2"
}
seed inbox_name plain 'cus_1__W9.pdf'
seed inbox_name folder 'ext-42/SOURCE_OF_FUNDS.png'
seed inbox_name nested 'a/b/PROOF_OF_ADDRESS.jpg'
seed inbox_name hidden '.processed/x__W9.pdf'
seed customer_patch body \
'{"email":"ada@example.com","ipAddress":"203.0.113.7","kyc":{"firstName":"Ada","lastName":"Lovelace","birthDate":"1990-04-12","documentNumber":"X1","nationality":"US","occupation":"11","mainAddress":{"street1":"1 Main St","cityCounty":"New York","zip":"10001","countryCode":"US"}}}'
seed config profiles \
'default_profile = "sandbox"
theme = "dark"
mouse = true

[keys]
quit = ["q", "ctrl-q"]

[profiles.sandbox]
api_url = "http://127.0.0.1:8080"
api_key = "sk_test_1"
data_dir = "/tmp/kycdash"
webhook_listen = "127.0.0.1:0"
max_rps = 10
concurrency = 4
read_only = false
'
seed webhook event \
'{"id":"evt_1","eventType":"CUSTOMER_KYC_STARTED","createdAt":"2026-11-30T10:00:00Z","data":{"customerId":"00000000-0000-0000-0000-000000000007","onboardingId":"00000000-0000-0000-0000-000000000001","status":"PROCESSING"}}'
# The structured targets (evaluate_stage, dashboard) start from nothing: any bytes are an input.
for target in "${TARGETS[@]}"; do mkdir -p "$FUZZ/corpus/$target"; done

cd "$FUZZ"
echo "fuzz.sh: building ${TARGETS[*]}" >&2
nice -n 10 cargo +nightly fuzz build >&2
BIN="$CARGO_TARGET_DIR/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
failed=0
rows=()
for target in "${TARGETS[@]}"; do
    mkdir -p "$FUZZ/artifacts/$target"
    before=$(ls "$FUZZ/artifacts/$target" | wc -l)
    started=$(date +%s)
    echo "fuzz.sh: $target for ${SECONDS_PER_TARGET}s" >&2
    set +e
    # The binary built above, run directly: nothing is rebuilt between targets.
    ASAN_OPTIONS="detect_odr_violation=0" nice -n 10 "$BIN/$target" "$FUZZ/corpus/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout=10 -artifact_prefix="$FUZZ/artifacts/$target/" \
        >"$LOGS/$target.log" 2>&1
    status=$?
    set -e
    took=$(( $(date +%s) - started ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$target.log" | tail -1)
    corpus=$(ls "$FUZZ/corpus/$target" | wc -l)
    found=$(( $(ls "$FUZZ/artifacts/$target" | wc -l) - before ))
    # sed reads the whole listing (`head` could leave ls to die of SIGPIPE, which pipefail
    # turns into the script's end, with no table).
    newest=""
    if [ "$found" -gt 0 ]; then
        newest=$(ls -t "$FUZZ/artifacts/$target" | sed -n "1,${found}p" | tr '\n' ' ')
    fi
    if [ -z "$execs" ] || [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
        failed=1
        echo "fuzz.sh: $target exited $status; the end of its log:" >&2
        grep -v '^#' "$LOGS/$target.log" | tail -40 >&2
    fi
    per_s=$(( ${execs:-0} / (took > 0 ? took : 1) ))
    rows+=("| $target | $took | ${execs:-none} | $per_s | $corpus | $found ${newest:+($newest)}|")
done

echo
echo "| target | seconds | executions | exec/s | corpus | findings |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "command: benches/fuzz.sh $SECONDS_PER_TARGET${1:+ $*} (cargo-fuzz $(cargo fuzz --version 2>/dev/null | awk '{print $2}'), $(rustc +nightly --version))"
exit "$failed"
