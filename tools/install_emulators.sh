#!/usr/bin/env bash
# Install what the emulated-CPU checks need (docs/NUMERICS.md, "Tests on any CPU"):
#   qemu-x86_64 and qemu-aarch64, QEMU 8 or newer (tools/on_cpu.py refuses older:
#     QEMU 7.2 faults on masked-off elements of AVX2 gathers, which NumPy uses);
#   g++-aarch64-linux-gnu and its C library, to cross-build the core for aarch64.
# On Debian 12 (bookworm), whose own QEMU is 7.2, qemu-user comes from
# bookworm-backports (a Debian suite, added to apt's sources if missing).
# Needs root (apt-get). Does nothing that is already done.
set -euo pipefail

have_qemu() {
  command -v qemu-x86_64 >/dev/null && command -v qemu-aarch64 >/dev/null &&
    qemu-x86_64 --version | grep -qE 'version ([89]|[1-9][0-9])\.'
}

if have_qemu && command -v aarch64-linux-gnu-g++ >/dev/null; then
  echo "install_emulators: $(qemu-x86_64 --version | head -1); $(aarch64-linux-gnu-g++ --version | head -1)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_emulators: needs root for apt-get (QEMU 8+ as qemu-user, g++-aarch64-linux-gnu)" >&2
  exit 3
fi
export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
apt-get update -qq
apt-get install -y -qq g++-aarch64-linux-gnu >/dev/null
if ! have_qemu; then
  if [ "$codename" = bookworm ]; then
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
      apt-get update -qq
    fi
    apt-get install -y -qq -t bookworm-backports qemu-user >/dev/null
  else
    apt-get install -y -qq qemu-user >/dev/null
  fi
fi
if ! have_qemu; then
  echo "install_emulators: no QEMU 8 or newer after installing: $(qemu-x86_64 --version 2>&1 | head -1)" >&2
  exit 1
fi
echo "install_emulators: $(qemu-x86_64 --version | head -1); $(aarch64-linux-gnu-g++ --version | head -1)"
