#!/usr/bin/env bash
# The README's pictures, regenerated: `make pictures` (after `make test-vscode`, whose screenshots it copies).
# VS Code (dark and light, the hover, the method picker) from the end-to-end run in code-server; Neovim from a
# real nvim in tmux (truecolor, captured with its escapes and drawn by rich); the HTML page in headless
# Chromium, light and dark. Writes docs/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/pictures
mkdir -p "$out"
for name in heatmap-dark heatmap-light hover method-picker; do
  cp "build/vscode-e2e/vscode-$name.png" "docs/vscode-$name.png"
done

# The HTML page, light and dark.
.venv/bin/salience attribute examples/door-codes.prompt --html "$out/door-codes.html" >/dev/null
shot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,760 "$@" 2>/dev/null; }
shot --screenshot=docs/html-page.png "file://$PWD/$out/door-codes.html"
shot --blink-settings=preferredColorScheme=0 --screenshot=docs/html-page-dark.png "file://$PWD/$out/door-codes.html"
.venv/bin/salience attribute examples/whole-prompt/sections.prompt.md --html "$out/sections.html" >/dev/null
shot --window-size=1100,640 --screenshot=docs/html-sections.png "file://$PWD/$out/sections.html"

# Neovim: our config in a 100 x 9 terminal; wait for the heatmap, the inlay hints and the code lens naming the result.
home=$(mktemp -d)
tmux -f /dev/null kill-session -t salience-pictures 2>/dev/null || true
tmux -f /dev/null new-session -d -s salience-pictures -x 100 -y 9 \
  "env COLORTERM=truecolor XDG_CONFIG_HOME=$home/c XDG_DATA_HOME=$home/d XDG_STATE_HOME=$home/s \
   PATH=$PWD/.venv/bin:$PATH nvim -i NONE -u client-config/neovim/init.lua examples/door-codes.prompt"
for _ in $(seq 1 90); do
  sleep 2
  colours=$(tmux capture-pane -t salience-pictures -e -p | grep -o "48;2;[0-9;]*m" | sort -u | wc -l)
  text=$(tmux capture-pane -t salience-pictures -p)
  if [ "$colours" -gt 3 ] && grep -q "salience: '" <<<"$text" && grep -Eq "7733 [0-9]+\.[0-9]{2}" <<<"$text"; then
    break
  fi
done
sleep 2
tmux capture-pane -t salience-pictures -e -p > "$out/neovim.ansi"
tmux kill-session -t salience-pictures
.venv/bin/python - "$out/neovim.ansi" "$out/neovim.svg" <<'PY'
import sys
from rich.console import Console
from rich.text import Text
console = Console(record=True, width=100, force_terminal=True, color_system="truecolor", file=open("/dev/null", "w"))
console.print(Text.from_ansi(open(sys.argv[1], encoding="utf-8").read()))
open(sys.argv[2], "w", encoding="utf-8").write(console.export_svg(title="Neovim, default colour scheme (dark)"))
PY
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,330 \
  --screenshot=docs/neovim.png "file://$PWD/$out/neovim.svg" 2>/dev/null
echo "docs/: vscode-*.png, html-page.png, html-page-dark.png, html-sections.png, neovim.png"
