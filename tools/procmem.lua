-- tools/procmem.lua — this process's memory as Linux reports it, for the
-- memory tools (tools/memtest.lua, tools/memory_figures.lua). Loaded with
-- dofile beside the script: tools/ is not on package.path.
local M = {}

--- A size field of /proc/self/status ("VmRSS", "VmHWM", ...), in bytes.
function M.status(key)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(key .. ":%s*(%d+) kB")) * 1024
end

--- Resets the peak resident size (VmHWM) to the current one; false where
--- /proc/self/clear_refs cannot be written.
function M.reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  f:write("5")
  f:close()
  return true
end

return M
