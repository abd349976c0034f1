#!/usr/bin/env bash
# Debian's Chromium for the HTML layout tests (tests/views/test_html_layout.py measure pages in it).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium (Debian package) for the HTML layout tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
else
  echo "make test needs Chromium for the HTML layout tests; install it with: sudo apt-get install chromium" >&2
  exit 1
fi
