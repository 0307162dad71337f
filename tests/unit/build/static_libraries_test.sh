#!/usr/bin/env bash
# Every sluice symbol that one of the project's static libraries needs is
# defined in one of them. A library that calls into an executable's main.cc
# links in one build type and not in another (the linker only pulls the
# archive members a target needs, and what a target needs follows inlining):
# that is how `-Dbuildtype=release` once failed to link libsluice_ctl.
# Checking the archives themselves catches it in whichever build type runs
# the tests, without building the others.
# usage: static_libraries_test.sh LIB.a...
set -euo pipefail
command -v nm >/dev/null || { echo "SKIP: nm not installed"; exit 77; }
defined=$(mktemp)
needed=$(mktemp)
trap 'rm -f "$defined" "$needed"' EXIT
for lib in "$@"; do
  nm --defined-only -P "$lib" 2>/dev/null | awk 'NF >= 2 && $1 !~ /:$/ {print $1}' >>"$defined"
  # "member.o:" headers carry a colon; the rest are "symbol U" lines.
  nm -u -P "$lib" 2>/dev/null | awk -v lib="$(basename "$lib")" '
    $1 ~ /\[.*\]:$/ || $1 ~ /:$/ {member = $1; next}
    $1 ~ /6sluice/ {print $1 " " lib " " member}' >>"$needed"
done
sort -u -o "$defined" "$defined"
missing=$(sort -k1,1 "$needed" | join -v 1 - "$defined" || true)
if [[ -n "$missing" ]]; then
  echo "FAIL: sluice symbols used by a library but defined in none of them (only in an executable?):"
  while read -r sym lib member; do
    printf '  %s  needed by %s %s\n' "$(echo "$sym" | c++filt)" "$lib" "$member"
  done <<<"$missing"
  exit 1
fi
echo "PASS: $# libraries, every sluice symbol they use is defined in one of them"
