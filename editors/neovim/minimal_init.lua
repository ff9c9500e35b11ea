-- A minimal Neovim configuration that runs bpf-lsp and records what it publishes,
-- for end-to-end tests and for trying the server without touching your own config:
--
--   BPF_LSP_CMD="/path/to/.venv/bin/bpf-lsp serve" BPF_LSP_DIAG_OUT=/tmp/diags.json \
--     nvim --headless -u editors/neovim/minimal_init.lua path/to/prog.bpf.c
--
-- Environment:
--   BPF_LSP_CMD           server command: a JSON array, or words split on blanks (default "bpf-lsp serve")
--   BPF_LSP_SETTINGS      JSON object of server settings (names as in bpf_lsp/settings.py)
--   BPF_LSP_DIAG_OUT      file rewritten (atomically) as JSON each time diagnostics change
--   BPF_LSP_QUIT_AFTER_MS write the file once more and quit Neovim after this many milliseconds
--
-- The JSON file:
--   {
--     "updates":     n,        -- number of writes so far (increases by one per write)
--     "received":    { "<path>": { "count": n, "model": "push"|"pull", "version": v,
--                                    "diagnostics": [<LSP Diagnostic>...] } },
--     "diagnostics": { "<path>": [ { "lnum", "col", "end_lnum", "end_col", "severity",
--                                    "message", "source", "code" } ... ] },
--     "messages":    [ { "type": 1..4, "message": "..." } ],   -- window/logMessage and showMessage
--     "clients":     [ { "id", "name", "root_dir" } ],
--     "exits":       [ { "code", "signal" } ]
--   }
-- "received" holds, per file, the last diagnostics exactly as the server sent them and how
-- many reports arrived: textDocument/publishDiagnostics (push; Neovim 0.7-0.9) or answers to
-- textDocument/diagnostic (pull; Neovim >= 0.10 declares pull support and the server then
-- uses it; "version" is null there). "diagnostics" is vim.diagnostic's view of every buffer
-- (0-based lines, byte columns), [] for a file whose diagnostics were cleared.
-- A test opens a file, polls until received[path] (or a log message such as the server's
-- "compiled in") says the analysis it waits for has arrived, then reads the rest.
-- Caveat: an empty JSON object inside a diagnostic ("data": {}) comes back as [] (Lua has
-- one empty table).

local here = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
package.path = here .. "/?.lua;" .. package.path

vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
vim.cmd("filetype on")

-- What the record holds besides vim.diagnostic's view.
local state = { updates = 0, received = {}, messages = {}, exits = {}, leaving = false }

-- Quitting stops the clients, which clears their diagnostics: keep the last record as it was.
-- Defined before vim.lsp is loaded so that it runs before vim.lsp's own VimLeavePre.
vim.api.nvim_create_autocmd("VimLeavePre", {
  callback = function()
    state.leaving = true
  end,
})

local bpf_lsp = require("bpf_lsp")

local function decode(text, what)
  local ok, value = pcall(vim.fn.json_decode, text)
  if not ok then
    error(("bpf-lsp minimal_init: %s is not valid JSON: %s"):format(what, value))
  end
  return value
end

local function command()
  local raw = vim.env.BPF_LSP_CMD
  if raw == nil or vim.trim(raw) == "" then
    return { "bpf-lsp", "serve" }
  end
  if vim.startswith(vim.trim(raw), "[") then
    return decode(raw, "BPF_LSP_CMD")
  end
  return vim.split(vim.trim(raw), "%s+")
end

local function settings()
  local raw = vim.env.BPF_LSP_SETTINGS
  if raw == nil or vim.trim(raw) == "" then
    return {}
  end
  return decode(raw, "BPF_LSP_SETTINGS")
end

local out = vim.env.BPF_LSP_DIAG_OUT

local SEVERITY = { "error", "warning", "info", "hint" }

local function object(t)
  return next(t) == nil and vim.empty_dict() or t
end

local function diagnostics_by_path()
  local files = {}
  for path in pairs(state.received) do
    files[path] = {}
  end
  for _, d in ipairs(vim.diagnostic.get()) do
    local path = vim.api.nvim_buf_get_name(d.bufnr)
    files[path] = files[path] or {}
    table.insert(files[path], {
      lnum = d.lnum,
      col = d.col,
      end_lnum = d.end_lnum,
      end_col = d.end_col,
      severity = SEVERITY[d.severity] or d.severity,
      message = d.message,
      source = d.source,
      code = d.code,
    })
  end
  return files
end

local function write()
  if out == nil or out == "" or state.leaving then
    return
  end
  state.updates = state.updates + 1
  local clients = {}
  for _, client in ipairs(bpf_lsp.clients()) do
    table.insert(clients, { id = client.id, name = client.name, root_dir = client.config.root_dir })
  end
  local text = vim.fn.json_encode({
    updates = state.updates,
    received = object(state.received),
    diagnostics = object(diagnostics_by_path()),
    messages = state.messages,
    clients = clients,
    exits = state.exits,
  })
  local tmp = out .. ".tmp"
  local file = assert(io.open(tmp, "w"))
  file:write(text)
  file:close()
  assert(os.rename(tmp, out))
end

-- Recording handlers: note what arrived, let Neovim's own handler act, then write.
local function recording(method, note)
  return function(err, result, ctx, config)
    note(result)
    local value = vim.lsp.handlers[method](err, result, ctx, config)
    write()
    return value
  end
end

local function receive(uri, model, version, diagnostics)
  local path = vim.uri_to_fname(uri)
  local previous = state.received[path]
  state.received[path] = {
    count = (previous and previous.count or 0) + 1,
    model = model,
    version = version,
    diagnostics = diagnostics or (previous and previous.diagnostics) or {},
  }
end

local handlers = {
  -- Push model (Neovim < 0.10 and clients that do not declare pull support).
  ["textDocument/publishDiagnostics"] = recording("textDocument/publishDiagnostics", function(result)
    receive(result.uri, "push", result.version, result.diagnostics)
  end),
  -- Pull model: Neovim >= 0.10 asks with textDocument/diagnostic and the answer lands here.
  ["textDocument/diagnostic"] = function(err, result, ctx, config)
    if err == nil and result ~= nil then
      local items = result.kind == "full" and result.items or nil -- "unchanged": keep the last ones
      receive(ctx.params.textDocument.uri, "pull", nil, items)
    end
    local value = vim.lsp.handlers["textDocument/diagnostic"](err, result, ctx, config)
    write()
    return value
  end,
  ["window/logMessage"] = recording("window/logMessage", function(result)
    table.insert(state.messages, { type = result.type, message = result.message })
  end),
  ["window/showMessage"] = recording("window/showMessage", function(result)
    table.insert(state.messages, { type = result.type, message = result.message })
  end),
}

bpf_lsp.setup({
  cmd = command(),
  settings = settings(),
  handlers = handlers,
  on_exit = function(code, signal)
    table.insert(state.exits, { code = code, signal = signal })
    vim.schedule(write)
  end,
})

-- Diagnostics changed by anything else (or cleared): DiagnosticChanged on 0.7+, else a poll.
if vim.fn.exists("##DiagnosticChanged") == 1 then
  vim.api.nvim_create_autocmd("DiagnosticChanged", { callback = write })
else
  local last = nil
  (vim.uv or vim.loop).new_timer():start(200, 200, vim.schedule_wrap(function()
    local snapshot = vim.fn.json_encode(diagnostics_by_path())
    if snapshot ~= last then
      last = snapshot
      write()
    end
  end))
end

local quit_after = tonumber(vim.env.BPF_LSP_QUIT_AFTER_MS or "")
if quit_after then
  vim.defer_fn(function()
    write()
    vim.cmd("qall!")
  end, quit_after)
end
