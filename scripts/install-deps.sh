#!/usr/bin/env bash
# Installs the Debian 12 packages edgelm needs to build, test and benchmark (only those missing).
set -euo pipefail
packages=(build-essential cmake pkg-config git clang lld libclang-rt-14-dev
  libhwy-dev googletest libgtest-dev libbenchmark-dev nlohmann-json3-dev libcli11-dev
  libfmt-dev libspdlog-dev libzstd-dev libsodium-dev libsqlite3-dev libcurl4-openssl-dev
  libcpp-httplib-dev xdelta3 bsdiff zstd gnuplot-nox)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "edgelm: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
