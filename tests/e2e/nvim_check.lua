-- Run inside headless Neovim with client-config/neovim: wait for the heatmap, record it, hover, quit.
-- Writes JSON to $SALIENCE_NVIM_OUT: highlight groups per character, the hover text and any error.
local out = { cells = {}, hover = nil, error = nil }
local record_hints
local bufnr = vim.api.nvim_get_current_buf()

local function finish()
  local file = io.open(os.getenv('SALIENCE_NVIM_OUT'), 'w')
  file:write(vim.json.encode(out))
  file:close()
  vim.cmd('qall!')
end

local function salience_groups(row, col)
  local groups = {}
  for _, token in ipairs(vim.inspect_pos(bufnr, row, col).semantic_tokens) do
    -- Neovim applies '@lsp.type.salience3.prompt' (falling back to '@lsp.type.salience3') and the modifier's
    -- '@lsp.mod.negative.prompt'; record them without the file type.
    local group = token.opts.hl_group:gsub('%.' .. vim.pesc(vim.bo[bufnr].filetype) .. '$', '')
    if group:match('^@lsp%.type%.salience%d$') or group == '@lsp.mod.negative' then
      table.insert(groups, group)
    end
  end
  table.sort(groups)
  return groups
end

local function highlighted()
  vim.cmd('redraw')
  for row = 0, vim.api.nvim_buf_line_count(bufnr) - 1 do
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1]
    for col = 0, #line - 1 do
      if #salience_groups(row, col) > 0 then
        return true
      end
    end
  end
  return false
end

-- `:Salience clear` (the config's user command) must remove the heatmap.
local function clear_then_finish()
  vim.cmd('Salience clear')
  local waited = 0
  local poll = vim.uv.new_timer()
  poll:start(200, 200, vim.schedule_wrap(function()
    waited = waited + 200
    if not highlighted() or waited > 20000 then
      poll:stop()
      out.cleared = not highlighted()
      finish()
    end
  end))
end

local function record()
  out.filetype = vim.bo[bufnr].filetype
  for row = 0, vim.api.nvim_buf_line_count(bufnr) - 1 do
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1]
    for col = 0, #line - 1 do
      local groups = salience_groups(row, col)
      if #groups > 0 then
        table.insert(out.cells, { row = row, col = col, groups = groups })
      end
    end
  end
  local strongest
  for _, cell in ipairs(out.cells) do
    if vim.tbl_contains(cell.groups, '@lsp.type.salience5') then
      strongest = cell
      break
    end
  end
  if not strongest then
    return finish()
  end
  out.hover_at = { strongest.row, strongest.col }
  vim.api.nvim_win_set_cursor(0, { strongest.row + 1, strongest.col })
  local client = vim.lsp.get_clients({ bufnr = bufnr, name = 'salience' })[1]
  out.encoding = client.offset_encoding
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  client:request('textDocument/hover', params, function(err, result)
    out.hover = result and result.contents and result.contents.value or vim.inspect(err)
    record_hints(clear_then_finish)
  end, bufnr)
end

-- The inlay hints Neovim shows (it asks for them itself once the server refreshes): where each one sits.
record_hints = function(done)
  out.hints = {}
  local waited = 0
  local poll = vim.uv.new_timer()
  poll:start(0, 200, vim.schedule_wrap(function()
    waited = waited + 200
    local hints = vim.lsp.inlay_hint.get({ bufnr = bufnr })
    local lenses = vim.lsp.codelens.get(bufnr)
    out.lens = lenses[1] and lenses[1].command and lenses[1].command.title or ''
    if (#hints > 0 and out.lens:find("salience: '", 1, true)) or waited > 20000 then
      poll:stop()
      for _, item in ipairs(hints) do
        local position = item.inlay_hint.position
        table.insert(out.hints, { line = position.line, character = position.character })
      end
      out.lenses = {}
      for _, lens in ipairs(lenses) do
        table.insert(out.lenses, { line = lens.range.start.line, title = lens.command and lens.command.title or '' })
      end
      -- Fetched is not drawn: count the virtual texts Neovim put on the screen for them.
      vim.cmd('redraw')
      out.lenses_drawn = {}
      for name, ns in pairs(vim.api.nvim_get_namespaces()) do
        if name:lower():find('codelens') then
          for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
            for _, chunk in ipairs(mark[4].virt_text or {}) do
              table.insert(out.lenses_drawn, { line = mark[2], text = chunk[1] })
            end
          end
        end
      end
      out.hints_drawn = 0
      for name, ns in pairs(vim.api.nvim_get_namespaces()) do
        if name:lower():find('inlay') then
          for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })) do
            if mark[4].virt_text then
              out.hints_drawn = out.hints_drawn + 1
            end
          end
        end
      end
      done()
    end
  end))
end

-- Poll from a timer so Neovim keeps redrawing (semantic tokens become extmarks while it draws).
local started = vim.uv.now()
local timer = vim.uv.new_timer()
timer:start(200, 200, vim.schedule_wrap(function()
  if highlighted() then
    timer:stop()
    vim.defer_fn(record, 300)  -- let the last refresh settle
  elseif vim.uv.now() - started > 120000 then
    timer:stop()
    out.error = 'no salience highlights after 120 s; clients: ' .. #vim.lsp.get_clients({ bufnr = bufnr })
    finish()
  end
end))
