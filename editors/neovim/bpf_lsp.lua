-- bpf-lsp for Neovim 0.7.2 and newer, without plugins.
--
--   require("bpf_lsp").setup({
--     cmd = { "bpf-lsp", "serve" },            -- or { "/path/to/python", "-m", "bpf_lsp", "serve" }
--     patterns = { "*.bpf.c" },                 -- buffers (full path) the server handles
--     settings = { includeDirs = { "/usr/include/bpf" }, extraFlags = { "-DDEBUG" } },
--   })
--
-- One client per root directory (the nearest ancestor holding one of `root_markers`,
-- else the file's directory). `settings` uses the names of bpf_lsp/settings.py and is
-- sent as initializationOptions; `workspace/configuration` for the section "bpfLsp"
-- answers the same table. `:BpfLspRestart` restarts the servers.
-- On Neovim >= 0.8 clients are started with vim.lsp.start; on 0.7 with
-- vim.lsp.start_client + vim.lsp.buf_attach_client.

local M = {}

local SECTION = "bpfLsp"

local defaults = {
  name = "bpf-lsp",
  cmd = { "bpf-lsp", "serve" },
  filetypes = { "c" },
  patterns = { "*.bpf.c" }, -- globs, see :help glob2regpat(); matched case-sensitively
  root_markers = { "compile_commands.json", ".git" },
  settings = {},
  on_attach = nil, -- function(client, bufnr)
  on_exit = nil, -- function(code, signal, client_id)
  capabilities = nil, -- default: vim.lsp.protocol.make_client_capabilities()
  handlers = nil, -- per-client LSP handlers
}

-- Options that may be given to setup(), with their Lua types.
local OPTION_TYPES = {
  name = "string",
  cmd = "table",
  filetypes = "table",
  patterns = "table",
  root_markers = "table",
  settings = "table",
  on_attach = "function",
  on_exit = "function",
  capabilities = "table",
  handlers = "table",
}

M.config = vim.deepcopy(defaults)

local clients_by_root = {} -- Neovim 0.7 only: root_dir -> client id

local uv = vim.uv or vim.loop
local has_lsp_start = vim.lsp.start ~= nil
local methods_need_self = vim.fn.has("nvim-0.11") == 1 -- client.notify(...) became client:notify(...)

local function client_call(client, method, ...)
  if methods_need_self then
    return client[method](client, ...)
  end
  return client[method](...)
end

--- Settings as JSON-ready tables: Neovim encodes an empty Lua table as `[]`, so an empty
--- settings object is sent as vim.empty_dict() and empty values (list settings whose
--- default is []) are left out.
local function server_settings(settings)
  local result = {}
  for name, value in pairs(settings or {}) do
    if not (type(value) == "table" and next(value) == nil) then
      result[name] = value
    end
  end
  if next(result) == nil then
    return vim.empty_dict()
  end
  return result
end

--- Whether `path` matches one of the configured glob patterns.
function M.matches(path)
  for _, glob in ipairs(M.config.patterns) do
    if vim.fn.match(path, "\\C" .. vim.fn.glob2regpat(glob)) >= 0 then
      return true
    end
  end
  return false
end

--- The nearest ancestor directory of `path` holding a root marker, else the file's directory.
function M.root_dir(path)
  local start = vim.fn.fnamemodify(path, ":p:h")
  local dir = start
  while true do
    for _, marker in ipairs(M.config.root_markers) do
      if uv.fs_stat(dir .. "/" .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      return start
    end
    dir = parent
  end
end

local function client_config(root)
  local cfg = M.config
  local settings = server_settings(cfg.settings)
  return {
    name = cfg.name,
    cmd = cfg.cmd,
    root_dir = root,
    init_options = settings,
    settings = { [SECTION] = settings },
    capabilities = cfg.capabilities,
    handlers = cfg.handlers,
    on_attach = cfg.on_attach,
    on_exit = cfg.on_exit,
  }
end

--- The running bpf-lsp clients.
function M.clients()
  local all = vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()
  return vim.tbl_filter(function(client)
    return client.name == M.config.name
  end, all)
end

--- Start (or reuse) the client for buffer `bufnr` if it is a matching file; returns the client id.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local path = vim.api.nvim_buf_get_name(bufnr)
  if path == "" or vim.bo[bufnr].buftype ~= "" or not M.matches(path) then
    return nil
  end
  local root = M.root_dir(path)
  local config = client_config(root)
  if has_lsp_start then
    return vim.api.nvim_buf_call(bufnr, function()
      return vim.lsp.start(config, { bufnr = bufnr })
    end)
  end
  local id = clients_by_root[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or client.is_stopped() then
    id = vim.lsp.start_client(config)
    if not id then
      return nil
    end
    clients_by_root[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

local function attach_loaded_buffers()
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.attach(bufnr)
    end
  end
end

--- Send new settings to the running servers (workspace/didChangeConfiguration).
function M.update_settings(settings)
  M.config.settings = settings
  local payload = server_settings(settings)
  for _, client in ipairs(M.clients()) do
    client.config.settings = { [SECTION] = payload }
    client_call(client, "notify", "workspace/didChangeConfiguration", { settings = client.config.settings })
  end
end

--- Stop the servers, wait (up to 5 s) for them to exit, then start them again.
function M.restart()
  local stopping = M.clients()
  for _, client in ipairs(stopping) do
    client_call(client, "stop")
  end
  clients_by_root = {}
  local deadline = uv.now() + 5000
  local function when_stopped()
    local alive = vim.tbl_filter(function(client)
      return not client_call(client, "is_stopped")
    end, stopping)
    if #alive > 0 and uv.now() < deadline then
      vim.defer_fn(when_stopped, 50)
      return
    end
    for _, client in ipairs(alive) do
      client_call(client, "stop", true)
    end
    attach_loaded_buffers()
  end
  when_stopped()
end

--- Configure and enable: `opts` replaces the defaults key by key (lists are not merged).
function M.setup(opts)
  local config = vim.deepcopy(defaults)
  for key, value in pairs(opts or {}) do
    if OPTION_TYPES[key] == nil then
      error("bpf_lsp.setup: unknown option " .. tostring(key))
    end
    config[key] = value
  end
  for key, kind in pairs(OPTION_TYPES) do
    if config[key] ~= nil and type(config[key]) ~= kind then
      error(("bpf_lsp.setup: %s must be a %s, got %s"):format(key, kind, type(config[key])))
    end
  end
  M.config = config

  local group = vim.api.nvim_create_augroup("bpf_lsp", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  vim.api.nvim_create_user_command("BpfLspRestart", M.restart, { desc = "Restart bpf-lsp" })
  attach_loaded_buffers()
  return M
end

return M
