-- tools/deps.sh (make run / make test on a fresh machine) waits for the apt
-- lock that a running apt-get or unattended-upgrades holds, and still fails
-- at once on any other apt error. Checked against fake apt-get, dpkg-query
-- and id first on PATH: nothing here touches the real system.
-- SEGLOSS_DEPS_SH=path runs the same checks against another deps.sh.
local H = require "helpers"

local SCRIPT = os.getenv("SEGLOSS_DEPS_SH") or "tools/deps.sh"

-- apt-get as apt 2.6 behaves: progress on stdout, errors on stderr, status 100.
-- FAKE_LOCKED_INSTALL / FAKE_LOCKED_UPDATE: so many first calls of that
-- command find the lock held; FAKE_INSTALL: ok | stale (unknown packages
-- until an update succeeds) | missing; FAKE_UPDATE: ok | offline.
local FAKE_APT = [=[#!/bin/sh
printf "%s\n" "apt-get $*" >>"$FAKE_DIR/calls"
cmd=""
for a in "$@"; do
	case $a in install | update) cmd=$a ;; esac
done
n=$(($(cat "$FAKE_DIR/n_$cmd" 2>/dev/null || echo 0) + 1))
echo "$n" >"$FAKE_DIR/n_$cmd"
echo "Reading package lists..."
if [ "$cmd" = update ]; then
	if [ "$n" -le "${FAKE_LOCKED_UPDATE:-0}" ]; then
		echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
		echo "N: Be aware that removing the lock file is not a solution and may break your system." >&2
		echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
		exit 100
	fi
	if [ "${FAKE_UPDATE:-ok}" = offline ]; then
		echo "Err:1 http://deb.debian.org/debian bookworm InRelease"
		echo "  Temporary failure resolving 'deb.debian.org'"
		echo "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease" \
			" Temporary failure resolving 'deb.debian.org'" >&2
		echo "E: Some index files failed to download. They have been ignored, or old ones used instead." >&2
		exit 100
	fi
	touch "$FAKE_DIR/updated"
	exit 0
fi
if [ "$n" -le "${FAKE_LOCKED_INSTALL:-0}" ]; then
	held="/var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)"
	echo "Waiting for cache lock: Could not get lock $held..."
	echo "E: Could not get lock $held" >&2
	echo "N: Be aware that removing the lock file is not a solution and may break your system." >&2
	echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
	exit 100
fi
case ${FAKE_INSTALL:-ok} in
missing) bad=1 ;;
stale) if [ -e "$FAKE_DIR/updated" ]; then bad=0; else bad=1; fi ;;
*) bad=0 ;;
esac
if [ "$bad" = 1 ]; then
	echo "Building dependency tree..."
	for a in "$@"; do
		case $a in -* | install | DPkg::*) ;; *) echo "E: Unable to locate package $a" >&2 ;; esac
	done
	exit 100
fi
exit 0
]=]

-- dpkg-query -W [-f=FORMAT] PKG...: the packages of FAKE_INSTALLED are installed.
local FAKE_DPKG_QUERY = [=[#!/bin/sh
printf "%s\n" "dpkg-query $*" >>"$FAKE_DIR/calls"
fmt='${Status}\n'
rc=0
for a in "$@"; do
	case $a in
	-f=* | --showformat=*) fmt=${a#*=} ;;
	-*) ;;
	*)
		case " ${FAKE_INSTALLED:-} " in
		*" $a "*) printf '%b' "$(printf '%s' "$fmt" | sed "s/\${Package}/$a/g; s/\${Status}/install ok installed/g")" ;;
		*) echo "dpkg-query: no packages found matching $a" >&2; rc=1 ;;
		esac
		;;
	esac
done
exit $rc
]=]

-- root, so that deps.sh never looks for sudo
local FAKE_ID = [=[#!/bin/sh
echo 0
]=]

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function lines(path)
  local f = io.open(path)
  if not f then return {} end
  local r = {}
  for l in f:lines() do r[#r + 1] = l end
  f:close()
  return r
end

local function count(list, prefix)
  local n = 0
  for _, l in ipairs(list) do
    if l:sub(1, #prefix) == prefix then n = n + 1 end
  end
  return n
end

local function occurrences(s, part)
  local n, i = 0, 1
  while true do
    local j = s:find(part, i, true)
    if not j then return n end
    n, i = n + 1, j + #part
  end
end

describe("tools/deps.sh", function()
  local dir

  lazy_setup(function()
    local p = assert(io.popen("mktemp -d"))
    dir = p:read("l")
    p:close()
    assert.truthy(dir and dir:match("^/"))
    write(dir .. "/apt-get", FAKE_APT)
    write(dir .. "/dpkg-query", FAKE_DPKG_QUERY)
    write(dir .. "/id", FAKE_ID)
    assert(os.execute(string.format("chmod 755 '%s/apt-get' '%s/dpkg-query' '%s/id'", dir, dir, dir)))
  end)

  lazy_teardown(function()
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  -- each case starts with no calls recorded and nothing "updated"
  before_each(function()
    for _, f in ipairs { "calls", "n_install", "n_update", "updated" } do os.remove(dir .. "/" .. f) end
  end)

  after_each(H.cleanup)

  -- Runs deps.sh on pkgs with the fakes first on PATH and env set; returns
  -- its status, stderr, the fakes' calls and the wall time in ms.
  local function run(pkgs, env)
    local assign = { "FAKE_DIR='" .. dir .. "'", "PATH='" .. dir .. "':\"$PATH\"",
      "SEGLOSS_APT_RETRY=0.01", "SEGLOSS_APT_LOCK_WAIT=600" }
    for k, v in pairs(env or {}) do assign[#assign + 1] = k .. "='" .. v .. "'" end
    local err, res = H.tmpname(".err"), H.tmpname(".res")
    -- (without the sanitizer runtime `make asan` preloads: the shell tools
    -- that deps.sh runs are not ours, and LeakSanitizer would stop them)
    local cmd = string.format("unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; " ..
      "s=$(date +%%s%%N); env %s sh '%s' %s >/dev/null 2>'%s'; rc=$?; " ..
      "echo $rc $((($(date +%%s%%N) - s) / 1000000)) >'%s'",
      table.concat(assign, " "), SCRIPT, table.concat(pkgs, " "), err, res)
    assert(os.execute(cmd))
    local rc, ms = H.readfile(res):match("^(%d+) (%d+)")
    return tonumber(rc), H.readfile(err), lines(dir .. "/calls"), tonumber(ms)
  end

  it("runs one dpkg-query and nothing else when every package is installed", function()
    local rc, err, calls = run({ "lua5.4", "gcc", "make" }, { FAKE_INSTALLED = "lua5.4 gcc make" })
    assert.equal(0, rc)
    assert.equal("", err)
    assert.equal(1, #calls)
    assert.equal(1, count(calls, "dpkg-query "))
  end)

  it("installs only the missing packages, in one apt-get call", function()
    local rc, err, calls = run({ "lua5.4", "sl", "cowsay" }, { FAKE_INSTALLED = "lua5.4" })
    assert.equal(0, rc)
    assert.equal(1, count(calls, "apt-get "))
    assert.equal(1, count(calls, "apt-get -o DPkg::Lock::Timeout=1 install -y -q --no-install-recommends sl cowsay"))
    assert.truthy(err:find("segloss: installing sl cowsay", 1, true))
    assert.truthy(err:find("segloss: installed sl cowsay", 1, true))
  end)

  it("waits while the dpkg frontend lock is held, then installs", function()
    local rc, err, calls = run({ "sl" }, { FAKE_LOCKED_INSTALL = "3" })
    assert.equal(0, rc, err)
    assert.equal(4, count(calls, "apt-get "))
    assert.equal(4, count(calls, "apt-get -o DPkg::Lock::Timeout=1 install "))
    assert.equal(1, occurrences(err,
      "segloss: waiting for the apt lock (another apt-get or unattended-upgrades is running)"))
    assert.truthy(err:find("\n  apt: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 " ..
      "(unattended-upgr)\n", 1, true))
    assert.truthy(err:find("segloss: installed sl (after waiting", 1, true))
  end)

  it("waits for the lists lock of apt-get update too", function()
    local rc, err, calls = run({ "sl" }, { FAKE_INSTALL = "stale", FAKE_LOCKED_UPDATE = "2" })
    assert.equal(0, rc, err)
    -- install (stale lists), update x 3 (locked twice), install
    assert.equal(5, count(calls, "apt-get "))
    assert.equal(3, count(calls, "apt-get -o DPkg::Lock::Timeout=1 update"))
    assert.truthy(err:find("Could not get lock /var/lib/apt/lists/lock", 1, true))
    assert.truthy(err:find("segloss: installed sl", 1, true))
  end)

  it("gives up after SEGLOSS_APT_LOCK_WAIT seconds with a clear message", function()
    local rc, err, calls, ms = run({ "sl" }, { FAKE_LOCKED_INSTALL = "100000", SEGLOSS_APT_LOCK_WAIT = "1" })
    assert.equal(1, rc)
    -- the limit counts whole seconds of the clock from the first attempt:
    -- it gave up after about 1 s, not after the 600 s of the other cases
    -- (a bound loose enough for a loaded machine; the calls prove the rest)
    assert.is_true(ms < 30000, ms .. " ms")
    assert.is_true(count(calls, "apt-get ") >= 1)
    assert.equal(count(calls, "apt-get "), count(calls, "apt-get -o DPkg::Lock::Timeout=1 install "))
    assert.truthy(err:find("segloss: gave up after 1 s waiting for the apt lock (limit SEGLOSS_APT_LOCK_WAIT=1 s)",
      1, true))
    assert.truthy(err:find("apt: E: Unable to acquire the dpkg frontend lock", 1, true))
    assert.falsy(err:find("segloss: installed", 1, true))
  end)

  it("does not retry a package that apt cannot find, and shows apt's error", function()
    local rc, err, calls = run({ "nosuchpkg" }, { FAKE_INSTALL = "missing" })
    assert.equal(1, rc)
    -- install, update (the lists may be stale), install once more: no loop
    assert.equal(3, count(calls, "apt-get "))
    assert.truthy(err:find("segloss: could not install nosuchpkg", 1, true))
    assert.truthy(err:find("E: Unable to locate package nosuchpkg", 1, true))
    assert.falsy(err:find("waiting", 1, true))
  end)

  it("stops at a network error of apt-get update, and shows it", function()
    local rc, err, calls = run({ "sl" }, { FAKE_INSTALL = "stale", FAKE_UPDATE = "offline" })
    assert.equal(1, rc)
    assert.equal(2, count(calls, "apt-get "))
    assert.truthy(err:find("segloss: could not install sl: apt-get update failed", 1, true))
    assert.truthy(err:find("Temporary failure resolving 'deb.debian.org'", 1, true))
    assert.falsy(err:find("waiting", 1, true))
  end)

  it("rejects a wait or interval that is not a number", function()
    local rc, err, calls = run({ "sl" }, { SEGLOSS_APT_LOCK_WAIT = "10m" })
    assert.equal(2, rc)
    assert.truthy(err:find("SEGLOSS_APT_LOCK_WAIT must be a whole number of seconds, got '10m'", 1, true))
    assert.equal(0, #calls)
    rc, err = run({ "sl" }, { SEGLOSS_APT_RETRY = "soon" })
    assert.equal(2, rc)
    assert.truthy(err:find("SEGLOSS_APT_RETRY must be a number of seconds, got 'soon'", 1, true))
  end)
end)
