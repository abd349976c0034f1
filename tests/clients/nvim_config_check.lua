-- Run with client-config/neovim/init.lua loaded: parse every Lua file, check :Salience, the filetypes
-- and the highlight groups for both backgrounds; write JSON to $SALIENCE_NVIM_OUT and quit.
local out = { parse_errors = {} }
local root = os.getenv('SALIENCE_CONFIG_DIR')
for _, file in ipairs(vim.fn.glob(root .. '/*.lua', false, true)) do
  local _, err = loadfile(file)
  if err then
    table.insert(out.parse_errors, err)
  end
end
out.command = vim.fn.exists(':Salience') == 2
out.subcommands = vim.fn.getcompletion('Salience ', 'cmdline')
out.filetypes = {}
for _, name in ipairs({ 'a.prompt', 'a.prompty', 'a.prompt.md', 'a.prompt.txt', 'a.md' }) do
  out.filetypes[name] = vim.filetype.match({ filename = name }) or ''
end
local function backgrounds(group)
  local found = {}
  for level = 1, 5 do
    found[level] = vim.api.nvim_get_hl(0, { name = group:format(level), link = false }).bg or -1
  end
  return found
end
-- What the default colour scheme draws text with, and the heatmap's levels over it.
local function theme()
  local normal = vim.api.nvim_get_hl(0, { name = 'Normal', link = false })
  return {
    bg = normal.bg or -1,
    fg = normal.fg or -1,
    levels = backgrounds('@lsp.type.salience%d'),
    negative = backgrounds('@lsp.typemod.salience%d.negative'),
  }
end
out.lsp_filetypes = vim.lsp.config.salience.filetypes
out.negative = vim.api.nvim_get_hl(0, { name = '@lsp.mod.negative' }).undercurl or false
-- OptionSet does not fire during startup (until v:vim_did_enter): switch backgrounds after it.
vim.defer_fn(function()
  vim.o.background = 'dark'
  out.dark = theme()
  vim.o.background = 'light'
  out.light = theme()
  local file = io.open(os.getenv('SALIENCE_NVIM_OUT'), 'w')
  file:write(vim.json.encode(out))
  file:close()
  vim.cmd('qall!')
end, 50)
