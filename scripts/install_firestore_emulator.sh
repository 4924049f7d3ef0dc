#!/usr/bin/env bash
# Install the Node Firestore emulator used by the integration tests into .tools/firestore-emulator.
#
# Idempotent: does nothing when the pinned version is already installed. The official emulator
# needs Java 21 and downloads a jar at first start, so we use @firestore-emulator/server (MIT),
# which the Python google-cloud-firestore client talks to through FIRESTORE_EMULATOR_HOST.
# See docs/firestore.md for what it does and does not implement.
set -euo pipefail

VERSION="0.3.15"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.tools/firestore-emulator"
PKG_JSON="$PREFIX/node_modules/@firestore-emulator/server/package.json"

if ! command -v npm >/dev/null 2>&1; then
    echo "install_firestore_emulator: npm not found; install Node.js >= 18 first" >&2
    exit 1
fi

if [ -f "$PKG_JSON" ] && grep -q "\"version\": \"$VERSION\"" "$PKG_JSON"; then
    echo "install_firestore_emulator: @firestore-emulator/server@$VERSION already in $PREFIX"
    exit 0
fi

mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@firestore-emulator/server@$VERSION"
echo "install_firestore_emulator: installed @firestore-emulator/server@$VERSION in $PREFIX"
