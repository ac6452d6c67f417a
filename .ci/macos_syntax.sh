#!/usr/bin/env bash
# Syntax-checks the C++ sources for macOS on Apple silicon: clang -target arm64-apple-macos11
# -fsyntax-only, every csrc/*.cpp and every kernel level that target builds.
#
# There is no macOS SDK here, so the system headers are glibc's and libstdc++'s for aarch64
# (Debian's cross headers), compiled as for Darwin (__APPLE__, not __linux__), with a few stub
# headers in front of them that make Linux-only interfaces fail loudly: <sys/auxv.h> and
# <malloc.h> do not exist, MADV_HUGEPAGE and sched_getaffinity are not declared, and
# <sys/sysctl.h> declares what macOS's does. This checks that the macOS branches of the sources
# compile and that no Linux-only call is left unguarded; it cannot check the code against libc++
# or Apple's own libc headers.
#
# Usage: .ci/macos_syntax.sh [python]   (the Python whose pybind11, numpy headers and
# scipy-openblas32 are used; default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}
cxx=${CXX_MACOS_SYNTAX:-clang++}
triple=aarch64-linux-gnu
sysinc=/usr/$triple/include
gccver=$(ls "$sysinc/c++" 2>/dev/null | sort -V | tail -1)
if [ -z "$gccver" ]; then
  echo "macos_syntax: no $triple C++ headers (apt-get install g++-$triple)" >&2
  exit 1
fi
clanginc=$("$cxx" -print-resource-dir)/include

read -r pyinc pbinc blasinc < <("$py" -c '
import sysconfig, pybind11, scipy_openblas32
print(sysconfig.get_paths()["include"], pybind11.get_include(), scipy_openblas32.get_include_dir())')

stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
mkdir -p "$stubs/sys"
cat > "$stubs/sys/auxv.h" <<'EOF'
#error "<sys/auxv.h> is Linux-only: guard it"
EOF
cat > "$stubs/malloc.h" <<'EOF'
#error "<malloc.h> is not on macOS: use <cstdlib>"
EOF
cat > "$stubs/sys/mman.h" <<'EOF'
#include_next <sys/mman.h>
#undef MADV_HUGEPAGE
EOF
cat > "$stubs/sched.h" <<'EOF'
#include_next <sched.h>
#pragma GCC poison sched_getaffinity sched_setaffinity
EOF
cat > "$stubs/sys/sysctl.h" <<'EOF'
#pragma once
#include <stddef.h>
extern "C" int sysctlbyname(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen);
EOF

# Clang predefines __nonnull/__nullable as nullability keywords for Darwin, which glibc's headers
# use as macros; glibc wants _GNU_SOURCE, which g++ and clang define for Linux targets.
flags=(-target arm64-apple-macos11 -fsyntax-only -std=c++17 -fopenmp-simd -Wall -Wextra -Werror
       -Wno-missing-field-initializers -U__nonnull -U__nullable -D_GNU_SOURCE
       -nostdinc -nostdinc++ -isystem "$stubs" -isystem "$sysinc/c++/$gccver"
       -isystem "$sysinc/c++/$gccver/$triple" -isystem "$clanginc" -isystem "$sysinc"
       -Icsrc -isystem "$pyinc" -isystem "$pbinc" -isystem "$blasinc")
status=0
# The levels an arm64 macOS build compiles: the baseline (NEON) one only (Apple's CPUs have no SVE).
for src in csrc/*.cpp csrc/kernels/baseline.cpp; do
  if ! "$cxx" "${flags[@]}" "$src"; then
    echo "macos_syntax: $src fails" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "macos_syntax: $(ls csrc/*.cpp | wc -l) sources + the NEON kernels parse for arm64-apple-macos11"
exit $status
