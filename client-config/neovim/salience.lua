-- salience for Neovim 0.11+: prompt file types, the language server, heatmap highlight groups and :Salience.
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

-- Background colours for levels 1..5 (faint to strong): warm for words that raise the answer, blue for
-- words that lower it, for dark and light backgrounds. Chosen by measured contrast on Neovim's default
-- colour scheme (tests/clients/test_editor_configs.py): every level at least 10 CIELAB ΔE from the
-- background and from its neighbours, the text on it at WCAG contrast 4.5 or more. Set
-- vim.g.salience_colours = { dark = {...}, light = {...}, dark_negative = {...}, light_negative = {...} }
-- before loading to choose your own.
M.colours = vim.g.salience_colours or {
  dark = { '#37171a', '#5a1919', '#7e1a18', '#a11b17', '#c41c15' },
  dark_negative = { '#102249', '#0c2d76', '#0839a4', '#0444d1', '#0050ff' },
  light = { '#e6bbbf', '#ec9494', '#f36c6a', '#f9453f', '#ff1e14' },
  light_negative = { '#c8cbee', '#b0b5f2', '#989ef5', '#8087f9', '#6771fd' },
}

-- Re-applied on every colour scheme and 'background' change (a colour scheme clears them).
function M.highlights()
  local background = M.colours[vim.o.background] and vim.o.background or 'dark'
  local negative = M.colours[background .. '_negative'] or M.colours[background]
  for level, bg in ipairs(M.colours[background]) do
    vim.api.nvim_set_hl(0, '@lsp.type.salience' .. level, { bg = bg })
    -- Type and modifier together (Neovim applies it above both): a negative word's level in blue.
    vim.api.nvim_set_hl(0, '@lsp.typemod.salience' .. level .. '.negative', { bg = negative[level] })
  end
  -- Negative contributions (the word lowers the target) are also undercurled, for readers who cannot tell
  -- the hues apart.
  vim.api.nvim_set_hl(0, '@lsp.mod.negative', { undercurl = true, sp = '#3f8fff' })
end

M.highlights()
vim.api.nvim_create_autocmd({ 'ColorScheme', 'OptionSet' }, {
  pattern = { '*' },
  callback = function(ev)
    if ev.event == 'ColorScheme' or ev.match == 'background' then
      M.highlights()
    end
  end,
})

local settings = vim.g.salience_settings or vim.empty_dict()
vim.lsp.config('salience', {
  cmd = server_cmd(),
  filetypes = { 'prompt' },
  root_markers = { '.git' },
  init_options = settings,
  settings = { salience = settings },
  handlers = {
    -- The scores notification carries every word's range with its colour strength; keep the latest per
    -- buffer (a statusline or a custom renderer can read vim.b.salience_scores). A new result also
    -- refreshes the code lens, which Neovim would otherwise leave at "running…" until the next BufEnter,
    -- and the inlay hints.
    ['salience/scores'] = function(_, params)
      local bufnr = vim.uri_to_bufnr(params.uri)
      if vim.api.nvim_buf_is_valid(bufnr) then
        local result = table.concat({ tostring(params.method), tostring(params.computedVersion),
          tostring(params.seconds) }, ' ')
        local shown = vim.b[bufnr].salience_scores
        vim.b[bufnr].salience_scores = params
        if not shown or vim.b[bufnr].salience_result ~= result then
          vim.b[bufnr].salience_result = result
          vim.lsp.codelens.refresh({ bufnr = bufnr })
          -- Neovim 0.11 fetches the hints on the server's refresh but does not draw them (measured: none on
          -- screen 45 s later); enabling them again fetches and draws them.
          if vim.lsp.inlay_hint.is_enabled({ bufnr = bufnr }) then
            vim.lsp.inlay_hint.enable(false, { bufnr = bufnr })
            vim.lsp.inlay_hint.enable(true, { bufnr = bufnr })
          end
        end
      end
    end,
  },
})

local function client_for(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'salience' })[1]
end

--- Run one of the server's commands on a buffer: salience.run, salience.setMethod, ...
function M.command(name, extra, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    vim.notify('salience: no server attached to this buffer', vim.log.levels.WARN)
    return
  end
  local arguments = { vim.uri_from_bufnr(bufnr) }
  vim.list_extend(arguments, extra or {})
  client:request('workspace/executeCommand', { command = name, arguments = arguments }, function(err)
    if err then
      vim.notify('salience: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    end
  end, bufnr)
end

-- :Salience run | method [NAME] | target [TEXT] | clear | faithfulness | pin | compare [HEAD|saved|pinned|off]
M.subcommands = {
  run = function() M.command('salience.run') end,
  pin = function() M.command('salience.pin') end,
  compare = function(rest) M.command('salience.compare', { rest ~= '' and rest or 'HEAD' }) end,
  clear = function() M.command('salience.clear') end,
  faithfulness = function() M.command('salience.faithfulness') end,
  target = function(rest) M.command('salience.setTarget', rest ~= '' and { rest } or {}) end,
  method = function(rest)
    if rest ~= '' then
      return M.command('salience.setMethod', { rest })
    end
    local bufnr = vim.api.nvim_get_current_buf()
    local client = client_for(bufnr)
    if not client then
      return M.command('salience.setMethod')  -- reports that no server is attached
    end
    client:request('workspace/executeCommand', { command = 'salience.methods', arguments = {} }, function(_, methods)
      vim.ui.select(methods or {}, {
        prompt = 'salience method',
        format_item = function(m) return m.name .. '  (' .. m.cost .. ') ' .. m.description end,
      }, function(choice)
        if choice then
          M.command('salience.setMethod', { choice.name }, bufnr)
        end
      end)
    end, bufnr)
  end,
}

vim.api.nvim_create_user_command('Salience', function(opts)
  local name, rest = opts.args:match('^(%S*)%s*(.-)%s*$')
  local sub = M.subcommands[name ~= '' and name or 'run']
  if not sub then
    vim.notify('salience: unknown subcommand ' .. name .. '; use run, method, target, clear or faithfulness',
      vim.log.levels.ERROR)
    return
  end
  sub(rest)
end, {
  nargs = '*',
  desc = 'salience: run | method [NAME] | target [TEXT] | clear | faithfulness',
  complete = function(arg_lead, line)
    if line:match('^%S+%s+%S+%s') then
      return {}
    end
    return vim.tbl_filter(function(s) return s:find(arg_lead, 1, true) == 1 end, vim.tbl_keys(M.subcommands))
  end,
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
