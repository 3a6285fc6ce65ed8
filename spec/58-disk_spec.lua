-- Writing to a full disk (a 256 KiB tmpfs, filled up) and to places that
-- cannot be written (a read-only mount, a path under a file): tensor:save,
-- net:save, and the experiment's JSON/CSV/report writes each give a Lua error
-- that names the function and the path, leave the old file as it was (same
-- bytes) and no temporary file behind. Mounting needs root (CAP_SYS_ADMIN):
-- without it these are pending, with the reason.
local segloss = require "segloss"
local H = require "helpers"
local F = require "segloss.experiment.files"
local T = segloss.tensor

local function sh(cmd) return os.execute(cmd .. " >/dev/null 2>&1") == true end

local function listdir(d)
  local names = {}
  for n in assert(io.popen("ls -A '" .. d .. "'")):lines() do names[#names + 1] = n end
  table.sort(names)
  return names
end

local function writefile(p, s)
  local f = assert(io.open(p, "wb"))
  assert(f:write(s))
  assert(f:close())
end

-- fills the file system of d: a filler file as large as it can be
local function fill(d)
  sh("head -c 1048576 /dev/zero > '" .. d .. "/filler'")
  -- the last pages: small writes until none fits
  local f = io.open(d .. "/filler2", "wb")
  if f then
    f:setvbuf("no")
    while f:write(string.rep("\0", 512)) do end
    f:close()
  end
end

local root = H.tmpdir()
local full, ro = root .. "/full", root .. "/ro"
local can_mount = sh("mkdir -p '" .. full .. "' '" .. ro .. "'") and
  sh("mount -t tmpfs -o size=256k segloss-full '" .. full .. "'")
local why = "mount -t tmpfs is not permitted here (needs root): the full-disk specs did not run"
if can_mount and not sh("mount -t tmpfs -o size=256k segloss-ro '" .. ro .. "'") then
  sh("umount '" .. full .. "'")
  can_mount = false
end

-- the saves under test: (path, small) writes something small (the old
-- file), (path) something larger than the free space
local function net_and_opt()
  segloss.seed(3)
  local net = segloss.nn.UNet{ input = 1, output = 1, base = 4, depth = 1, dims = 2 }
  return net, segloss.optim.Adam(net, {})
end
local saves = {
  { name = "tensor:save (.npy)", prefix = "segloss.Tensor:save: ", file = "t.npy",
    small = function(p) T.ones(4):save(p) end,
    big = function(p) T.zeros(64, 256):save(p) end },
  { name = "net:save (checkpoint)", prefix = "segloss.nn.Module:save: ", file = "net.npz",
    small = function(p) segloss.nn.Conv2d(1, 1, 1):save(p) end,
    big = function(p)
      local net, opt = net_and_opt()
      net:save(p, { optim = opt })
    end },
  { name = "experiment JSON (summary.json)", prefix = "segloss.experiment: ", file = "summary.json",
    small = function(p) F.write(p, F.json({ a = 1 })) end,
    big = function(p)
      local rows = {}
      for i = 1, 3000 do rows[i] = i / 7 end
      F.write(p, F.json({ curve = rows }))
    end },
  { name = "experiment CSV and report (curves.csv)", prefix = "segloss.experiment: ", file = "curves.csv",
    small = function(p) F.write(p, "epoch,loss\n1,0.5\n") end,
    big = function(p) F.write(p, string.rep("1,0.123456789\n", 4000)) end },
}

describe("writing where it cannot be written", function()
  teardown(function()
    if can_mount then
      sh("umount '" .. full .. "'")
      sh("umount '" .. ro .. "'")
    end
    sh("rm -rf '" .. root .. "'")
  end)

  for _, s in ipairs(saves) do
    if not can_mount then
      pending(s.name .. ": " .. why)
    else
      it(s.name .. " on a full disk: an error naming the function and the path, the old file intact", function()
        local p = full .. "/" .. s.file
        s.small(p)
        local before = H.readfile(p)
        fill(full)
        local names = listdir(full)
        local err = H.errors(s.prefix, { "cannot write", p, "No space left on device" }, s.big, p)
        assert.truthy(err)
        assert.equal(before, H.readfile(p))
        assert.same(names, listdir(full)) -- no temporary file left
        -- room again: the same save works
        os.remove(full .. "/filler")
        os.remove(full .. "/filler2")
        s.big(p)
        assert.is_true(#H.readfile(p) > #before)
        os.remove(p)
      end)

      it(s.name .. " on a read-only mount: an error naming the function and the path, the old file intact", function()
        local p = ro .. "/" .. s.file
        assert.is_true(sh("mount -o remount,rw '" .. ro .. "'"))
        s.small(p)
        local before = H.readfile(p)
        assert.is_true(sh("mount -o remount,ro '" .. ro .. "'"))
        local names = listdir(ro)
        H.errors(s.prefix, { "cannot write", p, "Read-only file system" }, s.big, p)
        assert.equal(before, H.readfile(p))
        assert.same(names, listdir(ro))
      end)
    end

    -- root ignores permission bits: a path under a regular file cannot be
    -- written by anyone
    it(s.name .. " under a file (not a directory): an error naming the function and the path", function()
      local d = root .. "/plain"
      sh("mkdir -p '" .. d .. "'")
      writefile(d .. "/file", "x")
      local p = d .. "/file/" .. s.file
      H.errors(s.prefix, { "cannot write", p, "Not a directory" }, s.big, p)
      assert.same({ "file" }, listdir(d))
      os.remove(d .. "/file")
    end)
  end

  it("nn.load and Module:load name themselves, not the core, in a read error", function()
    local p = root .. "/none.npz"
    H.errors("segloss.nn.load: ", { "cannot open '" .. p .. "'" }, segloss.nn.load, p)
    H.errors("segloss.nn.Module:load: ", { p }, function() segloss.nn.Conv2d(1, 1, 1):load(p) end)
  end)
end)
