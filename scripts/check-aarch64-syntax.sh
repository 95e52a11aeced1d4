#!/usr/bin/env bash
# Compile-checks the SIMD kernels for 64-bit ARM (Highway's NEON / SVE targets) on an x86 Debian
# machine without a cross toolchain: clang --target=aarch64-linux-gnu -fsyntax-only over the
# host's libstdc++ and glibc headers (a 2-line stub makes glibc's x86 wordsize header answer 64).
# It checks that every target's code parses and type-checks; it does not link or run anything.
#
#   scripts/check-aarch64-syntax.sh        # exit 0 when every kernel source checks
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v clang++ >/dev/null || { echo "check-aarch64-syntax: needs clang (apt-get install clang)" >&2; exit 2; }
gcc_ver="$(gcc -dumpversion | cut -d. -f1)"
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/gnu" "$stub/bits"
: > "$stub/gnu/stubs-32.h"
printf '#define __WORDSIZE 64\n#define __WORDSIZE_TIME64_COMPAT32 1\n#define __SYSCALL_WORDSIZE 64\n' \
  > "$stub/bits/wordsize.h"
fail=0
for f in "$root"/src/kernels/simd/*.cpp; do
  if clang++ --target=aarch64-linux-gnu -std=c++20 -fsyntax-only -Wall -Wno-unused-function \
      -I"$root/src" -isystem "$stub" -isystem "/usr/include/c++/$gcc_ver" \
      -isystem "/usr/include/x86_64-linux-gnu/c++/$gcc_ver" -isystem /usr/include \
      -isystem /usr/include/x86_64-linux-gnu "$f"; then
    echo "ok      ${f#"$root"/}"
  else
    echo "FAILED  ${f#"$root"/}"; fail=1
  fi
done
exit $fail
