#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root, or with sudo available):
#   tools/dev.sh run    install what is missing, build, run the server on its built-in defaults
#   tools/dev.sh test   install what is missing, build (release, ASan/UBSan, TSan, fuzzers), run the
#                       whole suite and each fuzz target for a bounded time
#   tools/dev.sh deps   only install the Debian packages
#   tools/dev.sh build  deps + release build (CMAKE_BUILD_TYPE=Release, warnings as errors)
#   tools/dev.sh package  deps + release build, then the Debian packages in build/:
#                       ringcast_<version>_<arch>.deb and ringcast-tools_<version>_<arch>.deb
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${RINGCAST_BUILD_DIR:-$ROOT/build}"
ASAN_BUILD="${RINGCAST_ASAN_BUILD_DIR:-$ROOT/build-asan}"
TSAN_BUILD="${RINGCAST_TSAN_BUILD_DIR:-$ROOT/build-tsan}"
FUZZ_BUILD="${RINGCAST_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${RINGCAST_JOBS:-$(nproc)}"

# Why each package is here is in README.md ("Dependencies").
PACKAGES=(
  build-essential dpkg-dev cmake pkg-config
  liburing-dev libwslay-dev rapidjson-dev libssl-dev libtomlplusplus-dev libsqlite3-dev zlib1g-dev
  libhiredis-dev redis-server
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-websockets python3-prometheus-client systemd curl
  chromium fonts-liberation
  clang libfuzzer-14-dev
)

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The project's own builds treat warnings as errors (RINGCAST_WERROR; off for a plain cmake build).
# The release suite runs on a Release (-O3) build, as shipped.
build_release() {
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRINGCAST_WERROR=ON >/dev/null
  cmake --build "$BUILD" -j"$JOBS"
}

build_asan() {
  cmake -S "$ROOT" -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DRINGCAST_SANITIZE=ON \
    -DRINGCAST_BENCH=OFF -DRINGCAST_WERROR=ON >/dev/null
  cmake --build "$ASAN_BUILD" -j"$JOBS"
}

build_tsan() {
  cmake -S "$ROOT" -B "$TSAN_BUILD" -DRINGCAST_TSAN=ON -DRINGCAST_WERROR=ON >/dev/null
  cmake --build "$TSAN_BUILD" -j"$JOBS"
}

# libFuzzer targets need Clang; only the fuzzers are built in this tree.
build_fuzz() {
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$FUZZ_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRINGCAST_FUZZ=ON -DRINGCAST_BENCH=OFF -DRINGCAST_TOOLS=OFF -DRINGCAST_WERROR=ON >/dev/null
  cmake --build "$FUZZ_BUILD" -j"$JOBS" --target ringcast_fuzzers
}

# Each target runs RINGCAST_FUZZ_SECONDS (15) on its seed corpus; any crash, sanitizer report,
# leak or timeout fails the run, and the input is left in build-fuzz/tests/fuzz/artifacts/.
run_fuzz() {
  # Two at a time: each target is one busy thread, with no timing to disturb.
  (cd "$FUZZ_BUILD" && ctest -L fuzz --output-on-failure -j2)
}

run_suite() {
  local dir="$1"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  # Two at a time: most integration tests wait far more than they compute. The ones that keep
  # the CPUs busy or measure memory and timing are RUN_SERIAL (tests/CMakeLists.txt).
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j2)
}

case "${1:-}" in
  deps) deps ;;
  build) deps; build_release ;;
  package)
    deps
    build_release
    # -B: the packages land in the build directory whatever the current directory is.
    cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$BUILD"
    ls -1 "$BUILD"/*.deb
    ;;
  run)
    deps
    build_release
    exec "$BUILD/ringcast" "${@:2}"
    ;;
  test)
    deps
    build_release
    run_suite "$BUILD"
    build_asan
    # halt_on_error: any sanitizer report fails the run.
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1" \
      UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" run_suite "$ASAN_BUILD"
    build_tsan
    TSAN_OPTIONS="halt_on_error=1" run_suite "$TSAN_BUILD"
    build_fuzz
    run_fuzz
    ;;
  *)
    echo "usage: $0 run|test|deps|build|package" >&2
    exit 2
    ;;
esac
