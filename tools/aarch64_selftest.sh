#!/usr/bin/env bash
# Builds the C++ core with its self-test (cpp/tests/core_selftest.cpp) and
# runs it, requiring every SIMD level the target has to equal the scalar
# path bit for bit:
#
#   tools/aarch64_selftest.sh [aarch64|native|all] [--source DIR] [--keep]
#
#   aarch64  (default) cross-compile for aarch64 Linux with Debian's
#            g++-aarch64-linux-gnu (cpp/cmake/aarch64-linux-gnu.cmake) and run
#            under qemu-aarch64 -L /usr/aarch64-linux-gnu; requires NEON.
#   native   the host build; on x86-64 requires sse2, and avx2 and avx512 if
#            /proc/cpuinfo lists avx2 and avx512f; on aarch64 requires neon.
#   all      both, native first.
#   --source DIR  the core's CMake project (default: cpp/ of this checkout).
#   --keep        keep the build directories (printed) instead of removing them.
#
# Each mode fails (non-zero exit) if the lanes were not compiled in
# (no lanes::<isa>::Run symbol in the library), if the library contains a
# fused multiply-add (the core is built with -ffp-contract=off), or if
# core_selftest fails, including its --require-simd check that the required
# levels were run and compared with the scalar path. Missing Debian packages
# are installed with apt-get when running as root. Environment: JOBS
# (parallel build jobs, default 2), CXX (the native compiler, as for CMake).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_dir="$repo/cpp"
mode=aarch64
keep=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    aarch64 | native | all) mode=$1 ;;
    --source) source_dir=$(cd "$2" && pwd); shift ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "aarch64_selftest.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
jobs=${JOBS:-2}
sysroot=/usr/aarch64-linux-gnu

log() { printf '== %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Installs the Debian packages behind the missing commands (root only).
need() {  # need "command package" ...
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%% *}" > /dev/null 2>&1 || missing+=("${pair#* }")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null 2>&1; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" ||
      { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  else
    echo "aarch64_selftest.sh: missing ${missing[*]}; install them first, e.g." >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 3
  fi
}

build_dirs=()
cleanup() {
  if [[ $keep -eq 0 ]]; then
    [[ ${#build_dirs[@]} -eq 0 ]] || rm -rf "${build_dirs[@]}"
  else
    [[ ${#build_dirs[@]} -eq 0 ]] || echo "build directories kept: ${build_dirs[*]}"
  fi
}
trap cleanup EXIT

summary=()

# run_mode NAME REQUIRED_LEVELS FUSED_REGEX OBJDUMP NM [EMULATOR...] -- [CMAKE_ARGS...]
run_mode() {
  local name=$1 required=$2 fused=$3 objdump=$4 nm=$5
  shift 5
  local emulator=()
  while [[ $1 != -- ]]; do emulator+=("$1"); shift; done
  shift
  local build
  build=$(mktemp -d "/tmp/synctalk-selftest-$name.XXXXXX")
  build_dirs+=("$build")

  log "$name: configure and build ($source_dir -> $build, -j$jobs)"
  local start
  start=$(now)
  cmake -S "$source_dir" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DSYNCTALK_BUILD_CPP_TESTS=ON "$@" > "$build/configure.log" ||
    { cat "$build/configure.log"; return 1; }
  grep 'synctalk_core: SIMD lanes' "$build/configure.log" || true
  cmake --build "$build" -j"$jobs" > "$build/build.log" 2>&1 ||
    { cat "$build/build.log"; return 1; }
  if grep -E 'warning:' "$build/build.log"; then
    echo "FAIL: $name: the build has warnings (above)" >&2
    return 1
  fi
  local build_time
  build_time=$(since "$start")
  echo "$name: build ${build_time} s"

  local lib="$build/libsynctalk_core.a" level
  for level in ${required//,/ }; do
    if ! "$nm" -C "$lib" | grep -c " T synctalk::lanes::$level::Run(" > /dev/null; then
      echo "FAIL: $name: the $level lanes are not compiled into $lib" >&2
      return 1
    fi
  done
  local count
  count=$("$objdump" -d "$lib" | grep -cE "$fused" || true)
  echo "$name: fused multiply-add instructions in libsynctalk_core.a: $count"
  if [[ $count -ne 0 ]]; then
    echo "FAIL: $name: the core contains fused multiply-adds (-ffp-contract=off lost?)" >&2
    return 1
  fi

  local args=()
  [[ -z $required ]] || args+=("--require-simd=$required")
  log "$name: ${emulator[*]:+${emulator[*]} }core_selftest ${args[*]}"
  start=$(now)
  local status=0
  # SYNCTALK_AUDIO_SIMD would cap the processors; the run must use every level.
  env -u SYNCTALK_AUDIO_SIMD "${emulator[@]}" "$build/core_selftest" "${args[@]}" || status=$?
  local run_time
  run_time=$(since "$start")
  echo "$name: core_selftest ${run_time} s, exit status $status"
  summary+=("$name: build ${build_time} s, core_selftest ${run_time} s, required: ${required:-none}, status $status")
  return "$status"
}

x86_fused='\svfn?m(add|sub)'
arm_fused='\s(fn?m(add|sub)|fml[as])\s'

run_native() {
  need "cmake cmake" "objdump binutils"
  [[ -n ${CXX:-} ]] || need "c++ g++"
  local arch required="" fused=$x86_fused
  arch=$(uname -m)
  case "$arch" in
    x86_64 | amd64)
      required=sse2
      grep -qw avx2 /proc/cpuinfo && required+=,avx2
      grep -qw avx512f /proc/cpuinfo && required+=,avx512
      ;;
    aarch64 | arm64) required=neon fused=$arm_fused ;;
    *) echo "native: no SIMD lanes on $arch; the scalar path only" ;;
  esac
  run_mode "native-$arch" "$required" "$fused" objdump nm --
}

run_aarch64() {
  need "cmake cmake" "aarch64-linux-gnu-g++ g++-aarch64-linux-gnu" \
    "aarch64-linux-gnu-objdump binutils-aarch64-linux-gnu" "qemu-aarch64 qemu-user"
  qemu-aarch64 --version | head -n 1
  aarch64-linux-gnu-g++ --version | head -n 1
  run_mode aarch64 neon "$arm_fused" aarch64-linux-gnu-objdump aarch64-linux-gnu-nm \
    qemu-aarch64 -L "$sysroot" -- \
    -DCMAKE_TOOLCHAIN_FILE="$source_dir/cmake/aarch64-linux-gnu.cmake"
}

total=$(now)
status=0
case "$mode" in
  aarch64) run_aarch64 || status=$? ;;
  native) run_native || status=$? ;;
  all)
    run_native || status=$?
    run_aarch64 || status=$?
    ;;
esac
log "summary"
for line in "${summary[@]}"; do echo "$line"; done
echo "total $(since "$total") s"
if [[ $status -ne 0 ]]; then
  echo "aarch64_selftest.sh: FAILED" >&2
  exit "$status"
fi
echo "aarch64_selftest.sh: passed"
