#!/usr/bin/env bash
# Debian packages the VS Code end-to-end test needs: chromium (driven by puppeteer-core), and
# libkrb5-dev and pkg-config (code-server's native modules build against them).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v krb5-config >/dev/null || missing+=(libkrb5-dev)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
else
  echo "make test-vscode needs: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
