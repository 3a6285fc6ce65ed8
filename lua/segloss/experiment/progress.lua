--- Progress of an experiment on stderr (internal): a bar with the ETA,
-- redrawn in place, when stderr is a terminal; one plain line per finished
-- run otherwise (logs, CI); nothing when switched off.
-- @module segloss.experiment.progress

local P = {}
P.__index = P

--- Is stderr a terminal? (The shell's test -t, which sees our descriptors.)
function P.isatty()
  return os.execute("test -t 2") == true
end

--- A monotonic wall clock in seconds: luasystem's when installed (Debian
-- lua-system), else os.time.
function P.clock()
  local ok, system = pcall(require, "system")
  if ok and system.monotime then return system.monotime end
  return os.time
end

local function hms(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, s % 3600 // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end
P.hms = hms

--- mode: "bar", "lines" or "off"; total: epochs to run in all.
function P.new(mode, total, clock, stream)
  return setmetatable({ mode = mode, total = total, done = 0, clock = clock, t0 = clock(),
    out = stream or io.stderr, width = 30 }, P)
end

function P:eta()
  local el = self.clock() - self.t0
  if self.done == 0 or el <= 0 then return "?" end
  return hms(el / self.done * (self.total - self.done))
end

--- After each epoch of the run `id` (`i` of `n` runs).
function P:epoch(id, i, n, epoch, epochs)
  self.done = self.done + 1
  if self.mode ~= "bar" then return end
  local frac = self.total > 0 and self.done / self.total or 1
  local full = math.floor(frac * self.width + 0.5)
  self.out:write(string.format("\r\27[K[%s%s] %3d%%  run %d/%d %s  epoch %d/%d  ETA %s",
    string.rep("#", full), string.rep(".", self.width - full), math.floor(frac * 100 + 0.5), i, n, id, epoch,
    epochs, self:eta()))
  self.out:flush()
end

--- A line: a finished or skipped run, or anything to say.
function P:line(s)
  if self.mode == "off" then return end
  if self.mode == "bar" then self.out:write("\r\27[K") end
  self.out:write(s, "\n")
  self.out:flush()
end

function P:finish()
  if self.mode == "bar" then self.out:write("\r\27[K") self.out:flush() end
end

return P
