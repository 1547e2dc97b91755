#!/usr/bin/env bash
# The CI fuzz smoke run: installs cargo-fuzz if missing, builds every target on the stable
# toolchain without a sanitizer (`-s none`, see DEPS.md §3) and runs each briefly, one at a time.
# A finding fails the run; its input is left under fuzz/artifacts/<target>/ (keep it as a
# regression under fuzz/regressions/<target>/ once fixed).
#
#   FUZZ_SECONDS  seconds per target (default 20)
#   FUZZ_RSS_MB   libFuzzer's memory limit per target (default 2048)
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
rss="${FUZZ_RSS_MB:-2048}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Seeds from the corpus and conformance data (best effort: needs python3).
./seed.sh || true

echo "== cargo fuzz build -s none"
cargo fuzz build -s none

for target in $(cargo fuzz list); do
    echo "== cargo fuzz run -s none $target (${seconds} s)"
    mkdir -p "corpus/$target"
    # The regressions directory is read as a second corpus, so every past finding runs first.
    dirs=("corpus/$target")
    if [ -d "regressions/$target" ]; then
        dirs+=("regressions/$target")
    fi
    log="$(mktemp)"
    if ! cargo fuzz run -s none "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 80 "$log"
        echo "fuzz target $target failed" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" || true
    rm -f "$log"
done
