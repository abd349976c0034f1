-- salience for Neovim 0.11+: prompt file types, the language server and heatmap highlight groups.
-- Use it from your init.lua:  dofile('/path/to/salience/client-config/neovim/salience.lua')
-- Options (set before dofile): vim.g.salience_cmd = { 'salience', 'serve' }
--                              vim.g.salience_settings = { method = 'occlusion', inlayTopK = 3 }
local M = {}

vim.filetype.add({
  extension = { prompt = 'prompt', prompty = 'prompt' },
  pattern = {
    ['.*%.prompt%.md'] = { 'prompt', { priority = 10 } },
    ['.*%.prompt%.txt'] = { 'prompt', { priority = 10 } },
  },
})

local function server_cmd()
  if vim.g.salience_cmd then
    return vim.g.salience_cmd
  end
  if vim.fn.executable('salience') == 1 then
    return { 'salience', 'serve' }
  end
  return { 'python3', '-m', 'salience', 'serve' }
end

-- Background colours for levels 1..5 (light to strong); negative contributions are undercurled.
M.colours = { '#2b3a2b', '#3d5a2a', '#5f7d1f', '#8f8a12', '#b8620a' }

function M.highlights()
  for level, bg in ipairs(M.colours) do
    vim.api.nvim_set_hl(0, '@lsp.type.salience' .. level, { bg = bg, default = true })
  end
  vim.api.nvim_set_hl(0, '@lsp.mod.negative', { undercurl = true, sp = '#5fa8ff', default = true })
end

M.highlights()
vim.api.nvim_create_autocmd('ColorScheme', { callback = M.highlights })

local settings = vim.g.salience_settings or vim.empty_dict()
vim.lsp.config('salience', {
  cmd = server_cmd(),
  filetypes = { 'prompt' },
  root_markers = { '.git' },
  init_options = settings,
  settings = { salience = settings },
  handlers = {
    -- The scores notification carries every range with its normalised score; keep the latest per buffer
    -- (a statusline or a custom renderer can read vim.b.salience_scores).
    ['salience/scores'] = function(_, params)
      local bufnr = vim.uri_to_bufnr(params.uri)
      if vim.api.nvim_buf_is_valid(bufnr) then
        vim.b[bufnr].salience_scores = params
      end
    end,
  },
})

vim.api.nvim_create_autocmd('LspAttach', {
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if not client or client.name ~= 'salience' then
      return
    end
    vim.lsp.inlay_hint.enable(true, { bufnr = args.buf })
    vim.lsp.codelens.refresh({ bufnr = args.buf })
    vim.api.nvim_create_autocmd({ 'BufEnter', 'InsertLeave' }, {
      buffer = args.buf,
      callback = function() vim.lsp.codelens.refresh({ bufnr = args.buf }) end,
    })
  end,
})

vim.lsp.enable('salience')
return M
