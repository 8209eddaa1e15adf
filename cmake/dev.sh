#!/usr/bin/env bash
# hamail's developer entry point: the two commands in README.md run through here.
#
#   cmake/dev.sh demo        install dependencies, build, start the single-machine demo stack
#   cmake/dev.sh demo-stop   stop exactly what the demo started
#   cmake/dev.sh test        install dependencies, build, run the whole test suite
#                            (dev preset: every label; asan preset: unit tests; fuzz
#                            preset: every libFuzzer harness for a bounded time; release
#                            preset: the build and demo the demo command uses), format check
#   cmake/dev.sh build [preset]   install dependencies and build (default preset: dev)
#   cmake/dev.sh packages [DIR]   build the Debian packages from the committed tree (HEAD)
#                            with dpkg-buildpackage into DIR (default build/packages), lintian
#                            them; tests/packaging/check-packages.sh DIR checks them further
#   cmake/dev.sh appliance [OUT]  build the packages, then the VM appliance image from them and
#                            Debian's archive into OUT (default build/appliance; docs/appliance.md)
#
# Environment: HAMAIL_TEST_QUICK=1 skips the asan and fuzz passes (for local iteration
# only; CI never sets it). HAMAIL_JOBS overrides the build parallelism.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${HAMAIL_JOBS:-$(nproc)}"

say() { printf '\n== %s\n' "$*"; }

deps() {
  say "dependencies (Debian packages)"
  bash "$root/cmake/install-deps.sh"
}

build() {
  local preset="$1"
  say "configure + build: preset $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
}

# Runs ctest, echoing its output, and adds its counts to the totals.
passed_total=0
failed_total=0
skipped_total=0
run_ctest() {
  local log rc=0
  log="$(mktemp)"
  ctest "$@" --output-on-failure -j "$jobs" 2>&1 | tee "$log" || rc=$?
  # "100% tests passed, 0 tests failed out of 12"
  local line
  line="$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)"
  if [[ -z "$line" ]]; then
    rm -f "$log"
    echo "dev.sh: ctest printed no summary line" >&2
    failed_total=$((failed_total + 1))
    return
  fi
  local failed total skipped
  failed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
  total="$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")"
  # CTest counts a skipped test as passed; it is not: count it apart.
  skipped="$(grep -cE '\*\*\*Skipped|Not Run .*Disabled' "$log" || true)"
  skipped_total=$((skipped_total + skipped))
  passed_total=$((passed_total + total - failed - skipped))
  failed_total=$((failed_total + failed))
  rm -f "$log"
  if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed_total=$((failed_total + 1)); fi
}

cmd_test() {
  deps
  build dev
  say "format check"
  if cmake --build --preset dev --target format-check; then
    passed_total=$((passed_total + 1))
  else
    failed_total=$((failed_total + 1))
  fi
  say "tests: dev preset, every label"
  run_ctest --preset dev
  if [[ "${HAMAIL_TEST_QUICK:-0}" != 1 ]]; then
    build asan
    say "tests: asan preset (AddressSanitizer + UndefinedBehaviorSanitizer), unit label"
    run_ctest --preset asan -L unit
    # clang: only the harnesses and the libraries they fuzz are built (tests/fuzz).
    build fuzz
    say "tests: fuzz preset (clang libFuzzer + ASan + UBSan), each harness for a bounded time"
    run_ctest --preset fuzz
  fi
  # The demo command builds and runs the release preset: prove that build and the demo on it.
  build release
  say "tests: release preset, the demo stack"
  run_ctest --preset release -R '^integration_demo$'
  say "summary (format check + dev tests + asan unit tests + libFuzzer runs + release demo)"
  echo "hamail: ${passed_total} passed, ${failed_total} failed, ${skipped_total} skipped"
  [[ $failed_total -eq 0 ]]
}

# Builds the .debs from HEAD (what is committed, never a dirty tree) in a scratch copy, so the
# package build cannot pick up a developer's build/ directory or stray files.
cmd_packages() {
  local out="${1:-$root/build/packages}"
  say "dependencies (Debian packages, with --packaging)"
  bash "$root/cmake/install-deps.sh" --packaging
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  say "source tree: $(git -C "$root" rev-parse --short HEAD) (HEAD; uncommitted changes are not packaged)"
  git -C "$root" archive --format=tar --prefix=hamail/ HEAD | tar -x -C "$work"
  say "dpkg-buildpackage -us -uc -b"
  (cd "$work/hamail" && DEB_BUILD_OPTIONS="parallel=$jobs" dpkg-buildpackage -us -uc -b)
  rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.buildinfo "$out"/*.changes
  cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
  say "lintian (errors fail)"
  lintian --fail-on error --info "$work"/*.changes
  say "packages in $out"
  ls -l "$out"/*.deb
}

cmd_demo() {
  deps
  build release
  exec bash "$root/appliance-image/demo/demo.sh" start
}

cmd_demo_stop() {
  exec bash "$root/appliance-image/demo/demo.sh" stop
}

case "${1:-}" in
  test) cmd_test ;;
  demo) cmd_demo ;;
  demo-stop) cmd_demo_stop ;;
  build) deps; build "${2:-dev}" ;;
  packages) cmd_packages "${2:-}" ;;
  appliance)
    out="${2:-$root/build/appliance}"
    cmd_packages "$out/debs"
    exec bash "$root/appliance-image/build.sh" --debs "$out/debs" --out "$out" ;;
  deps) deps ;;
  *)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
