#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target in fuzz/ once, then runs each for a
# few seconds from its committed corpus (fuzz/corpus/<target>/). Fails on any crash,
# timeout or out-of-memory. Installs cargo-fuzz when it is missing.
#
#   scripts/fuzz_smoke.sh            every target, FUZZ_SECONDS (default 5) each
#   scripts/fuzz_smoke.sh auth ...   only those targets
#
# The fuzz build lives outside the checkout (FUZZ_TARGET_DIR, default
# ~/.cache/bleepstore/fuzz-target) so a machine's repeated runs rebuild only the crate.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-5}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/bleepstore/fuzz-target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo fuzz passes nightly-only flags to rustc. A new machine has the one stable
# toolchain, so the default is that toolchain with RUSTC_BOOTSTRAP=1; FUZZ_CARGO
# picks another ("cargo +nightly").
read -r -a fuzz <<<"${FUZZ_CARGO:-cargo}"
fuzz+=(fuzz)
[ -n "${FUZZ_CARGO:-}" ] || export RUSTC_BOOTSTRAP=1

# No sanitizer: the crate forbids unsafe code, and the smoke run is for panics,
# overflows (debug assertions and overflow checks on) and hangs.
build_flags=(--sanitizer none --debug-assertions)
"${fuzz[@]}" build "${build_flags[@]}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("${fuzz[@]}" list)
fi

artifacts="$(mktemp -d)"
trap 'rm -rf "$artifacts"' EXIT
failed=()
for target in "${targets[@]}"; do
    # A scratch corpus (first directory: where new inputs go) over the committed one.
    scratch="$artifacts/corpus-$target"
    mkdir -p "$scratch"
    echo "fuzz_smoke: $target for ${seconds}s"
    if ! "${fuzz[@]}" run "${build_flags[@]}" "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$artifacts/$target-" -print_final_stats=1 \
        >"$artifacts/$target.log" 2>&1; then
        failed+=("$target")
        grep -E -A3 "panicked|ERROR: libFuzzer|SUMMARY" "$artifacts/$target.log" | head -n 40
        for found in "$artifacts/$target"-*; do
            [ -f "$found" ] || continue
            echo "fuzz_smoke: $target input $(basename "$found") (base64):"
            base64 "$found" | head -c 8192
            echo
        done
    fi
    grep -E '^stat::number_of_executed_units' "$artifacts/$target.log" || true
done

total=${#targets[@]}
echo "fuzz_smoke: $((total - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz_smoke: failing targets: ${failed[*]}" >&2
    exit 1
fi
