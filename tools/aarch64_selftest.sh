#!/usr/bin/env bash
# Builds the C++ core with its self-test (cpp/tests/core_selftest.cpp) and
# runs it, requiring every SIMD level the target has to equal the scalar
# path bit for bit; then checks the C API (cpp/include/synctalk/synctalk.h)
# with its C99 test (cpp/tests/capi_test.c): every bad argument returns an
# error, and on the golden clips' samples (tests/golden/*.npz) the C API's
# mel and fbank, at every SIMD level, whole and streamed, are bitwise the
# C++ API's (written by cpp/tests/cxx_reference.cpp, in the same build):
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
# levels were run and compared with the scalar path, or if capi_test fails
# (or the C API is not in the library). Missing Debian packages
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

  if ! "$nm" "$lib" | grep -c " T synctalk_mel_create$" > /dev/null; then
    echo "FAIL: $name: the C API (synctalk_mel_create) is not in $lib" >&2
    return 1
  fi

  local args=()
  [[ -z $required ]] || args+=("--require-simd=$required")
  log "$name: ${emulator[*]:+${emulator[*]} }core_selftest ${args[*]}"
  start=$(now)
  local status=0
  # The core reads no environment, but capi_test asks for SYNCTALK_AUDIO_SIMD's cap.
  env -u SYNCTALK_AUDIO_SIMD "${emulator[@]}" "$build/core_selftest" "${args[@]}" || status=$?
  local run_time
  run_time=$(since "$start")
  echo "$name: core_selftest ${run_time} s, exit status $status"

  # The C API against the C++ API on the golden clips, both built here and
  # run on this target (the references are written beside the clips).
  log "$name: ${emulator[*]:+${emulator[*]} }capi_test (${#golden_clips[@]} golden clips)"
  start=$(now)
  local capi_status=0 clips=()
  mkdir "$build/golden"
  cp "${golden_clips[@]}" "$build/golden/"
  clips=("$build"/golden/*.f32)
  "${emulator[@]}" "$build/cxx_reference" "${clips[@]}" || capi_status=$?
  if [[ $capi_status -eq 0 ]]; then
    env -u SYNCTALK_AUDIO_SIMD "${emulator[@]}" "$build/capi_test" "${clips[@]}" || capi_status=$?
  fi
  local capi_time
  capi_time=$(since "$start")
  echo "$name: capi_test ${capi_time} s, exit status $capi_status"
  [[ $status -ne 0 ]] || status=$capi_status
  summary+=("$name: build ${build_time} s, core_selftest ${run_time} s, capi_test ${capi_time} s, required: ${required:-none}, status $status")
  return "$status"
}

# The golden clips' samples (tests/golden/*.npz, key "samples": 1-D
# little-endian float32) as raw float32 files, read with Python's standard
# library only (no NumPy needed).
golden_clips=()
extract_golden() {
  need "python3 python3"
  local dir
  dir=$(mktemp -d /tmp/synctalk-golden.XXXXXX)
  build_dirs+=("$dir")
  python3 - "$repo/tests/golden" "$dir" <<'PY'
import ast
import pathlib
import sys
import zipfile

src, dst = map(pathlib.Path, sys.argv[1:])
clips = sorted(src.glob("*.npz"))
if not clips:
    sys.exit(f"aarch64_selftest.sh: no golden clips (*.npz) in {src}")
for npz in clips:
    with zipfile.ZipFile(npz) as archive:
        data = archive.read("samples.npy")
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"aarch64_selftest.sh: {npz}: samples.npy is not a .npy file")
    size = 2 if data[6] == 1 else 4
    start = 8 + size + int.from_bytes(data[8 : 8 + size], "little")
    header = ast.literal_eval(data[8 + size : start].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"] or len(header["shape"]) != 1:
        sys.exit(f"aarch64_selftest.sh: {npz}: samples are not 1-D float32: {header}")
    body = data[start:]
    if len(body) != 4 * header["shape"][0]:
        sys.exit(f"aarch64_selftest.sh: {npz}: {len(body)} bytes for shape {header['shape']}")
    (dst / (npz.stem + ".f32")).write_bytes(body)
PY
  golden_clips=("$dir"/*.f32)
  echo "golden clips: ${#golden_clips[@]} (tests/golden/*.npz)"
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
extract_golden
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
