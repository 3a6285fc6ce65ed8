-- A criterion's state: what a failed call, an in-place change of an input,
-- or Lua code reaching into its fields can and cannot do to it; the checks
-- of segloss.core.combo, the entry point behind criteria.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local core = require "segloss.core"

-- the criteria's private state table, reached the only way there is: debug
local function state_of(crit)
  for i = 1, 50 do
    local name, v = debug.getupvalue(segloss.Criterion.last, i)
    if name == nil then break end
    if name == "own" then
      for j = 1, 10 do
        local n2, st = debug.getupvalue(v, j)
        if n2 == "state" then return st[crit] end
      end
    end
  end
  error("no state table found")
end

local function same(a, b)
  local d = a - b
  return d:max() == 0 and d:min() == 0
end

describe("criterion state", function()
  local x1, x2, t1
  before_each(function()
    segloss.seed(12)
    x1 = T.randn(2, 1, 40, 40) * 3
    x2 = T.randn(2, 1, 40, 40) * 3
    t1 = H.bin({ 2, 1, 40, 40 }, 0.2)
  end)

  it("a failed call changes neither the gradient handed out nor what backward returns", function()
    for _, crit in ipairs { segloss.Dice { activation = "sigmoid" }, segloss.BCEDice { activation = "sigmoid" },
      segloss.BCE { activation = "sigmoid" } + segloss.Tversky { activation = "sigmoid" } } do
      local _, g = crit(x1, t1)
      local kept = g:clone()
      local bad = x2:clone()
      bad:set(2, 1, 40, 40, 0 / 0)
      assert.is_false(pcall(crit, bad, t1))
      assert.is_true(same(kept, g), "the tensor handed out was written into")
      local g2 = crit:backward(x1, t1)
      assert.is_true(same(kept, g2), "backward after a failed call")
    end
  end)

  it("backward sees in-place changes of the input, target, mask and gradient (versions)", function()
    local crit = segloss.Dice { activation = "sigmoid" }
    local function fresh(x, t, m)
      local _, g = segloss.dice(x, t, { activation = "sigmoid", mask = m })
      return g
    end
    local x, t = x1:clone(), t1:clone()
    crit:forward(x, t)
    x:copy(x2) -- the case of the report
    assert.is_true(same(fresh(x2, t), crit:backward(x, t)))
    crit:forward(x, t)
    x:reshape(x:numel()):set(7, 3) -- through a view
    assert.is_true(same(fresh(x, t), crit:backward(x, t)))
    crit:forward(x, t)
    t:fill(0)
    assert.is_true(same(fresh(x, t), crit:backward(x, t)))
    local m = H.bin({ 2, 1, 40, 40 }, 0.5)
    crit:forward(x, t, m)
    m:fill(1)
    assert.is_true(same(fresh(x, t, m), crit:backward(x, t, m)))
    local g = crit:backward(x, t, m)
    g:fill(0) -- the user scribbles on the gradient: recomputed
    assert.is_true(same(fresh(x, t, m), crit:backward(x, t, m)))
    -- a schedule step changes the weights: recomputed
    local S = segloss.schedule
    local sc = S.linear(1, 3, 10) * segloss.Dice { activation = "sigmoid" }
    local g0 = sc:forward(x, t) and sc:backward(x, t):clone()
    sc:step(10)
    local d = g0 * 3 - sc:backward(x, t)
    assert.is_true(math.max(d:max(), -d:min()) <= 1e-6 * math.max(g0:max(), -g0:min()))
    assert.is_false(same(g0, sc:backward(x, t)))
  end)

  it("what Lua puts into its fields is never written into by C", function()
    local crit = segloss.Dice { activation = "sigmoid" } + segloss.IoU { activation = "sigmoid" }
    crit(x1, t1)
    local victim = T.full({ 64 }, 5)
    -- the criterion's state is out of reach; its internal table, reached
    -- anyway, still gets nothing written into what Lua puts there
    for k in pairs(crit) do assert.is_true(k == "gradInput" or k == "output", "a public field " .. k) end
    local last = state_of(crit).last
    last._buf = victim
    crit(x1, t1)
    assert.same(T.full({ 64 }, 5):totable(), victim:totable())
    crit.gradInput = "g" -- reassigned by the user: not read back
    local l, g = crit(x1, t1)
    assert.is_true(T.istensor(g) and l == l)
    assert.equal(g, crit.gradInput)
  end)

  it("its own gradient can be its next input", function()
    local crit = segloss.Dice { activation = "sigmoid" }
    local _, g = crit(x1, t1)
    local _, g2 = crit(crit.gradInput, t1)
    local _, want = segloss.dice(g, t1, { activation = "sigmoid" })
    assert.is_true(same(want, g2))
    -- again with the other buffer, and with views of them
    local _, g3 = crit(g2:reshape(2, 1, 1600), t1:reshape(2, 1, 1600))
    assert.equal(3200, g3:numel())
  end)

  it("last() gives each part's own value and its weighted value", function()
    local crit = 0.25 * segloss.BCE { activation = "sigmoid" } + 2 * segloss.Dice { activation = "sigmoid" }
    local l = crit(x1, t1)
    local last = crit:last()
    local lb = segloss.bce(x1, t1, { activation = "sigmoid" })
    local ld = segloss.dice(x1, t1, { activation = "sigmoid" })
    -- (bce's value comes from the statistics pass here, alone from its own)
    assert.near(lb, last.parts[1].value, 1e-6 * lb)
    assert.near(0.25 * last.parts[1].value, last.parts[1].weighted, 1e-15)
    assert.near(ld, last.parts[2].value, 1e-12)
    assert.near(2 * ld, last.parts[2].weighted, 1e-12)
    assert.equal(l, last.total)
    -- a preset's value is its own weighted sum
    local bd = 3 * segloss.BCEDice { activation = "sigmoid", bce_weight = 0.5, dice_weight = 2 }
    bd(x1, t1)
    local v = bd:last().parts[1]
    assert.near(segloss.bce_dice(x1, t1, { activation = "sigmoid", bce_weight = 0.5, dice_weight = 2 }), v.value, 1e-12)
    assert.near(3 * v.value, v.weighted, 1e-12)
  end)

  it("messages show a short description of a bad value, never a whole tensor", function()
    local crit = segloss.Dice()
    local big = T.zeros(100, 100)
    local err = H.errors("segloss.Criterion: ", { "got a segloss.Tensor {100,100}" }, function() return crit * big end)
    assert.is_true(#err < 200, err)
    err = H.errors("segloss.Criterion: ", { "got a segloss.Tensor {100,100}" }, function() return crit + big end)
    assert.is_true(#err < 200, err)
    H.errors("segloss.Criterion:set_weight: ", { "part must be an integer in 1..1, got a segloss.Tensor {100,100}" },
      crit.set_weight, crit, big, 1)
    H.errors("segloss.schedule.linear: ", { "from must be a number", "got a segloss.Tensor" }, segloss.schedule.linear, big, 1, 2)
  end)

  it("the step counter stops at 2^63 - 1 instead of wrapping", function()
    local crit = segloss.schedule.linear(0, 1, 10) * segloss.BCE()
    crit:step(math.maxinteger)
    H.errors("segloss.Criterion:step: ", { "the step counter (9223372036854775807) would pass 2^63 - 1" },
      crit.step, crit, 1)
    assert.equal(math.maxinteger, crit:steps())
    assert.equal(1, crit:parts()[1].weight)
  end)

  it("values in messages: NUL bytes escaped, tables named by their type", function()
    H.errors("segloss.Tensor:save: ", { 'path must not contain a NUL byte, got string "a\\0b.npy"' },
      function() T.zeros(2):save("a\0b.npy") end)
    H.errors("segloss.dice: ", { 'option reduction must be one of "mean", "sum", "none", got string "mean\\0x"' },
      segloss.dice, T.rand(1, 1, 2), T.zeros(1, 1, 2), { reduction = "mean\0x" })
    H.errors("segloss.dice: ", { 'unknown option "smooth\\0" (did you mean "smooth"?)' }, segloss.dice,
      T.rand(1, 1, 2), T.zeros(1, 1, 2), { ["smooth\0"] = 1 })
    H.errors("segloss.Tensor:__mul: ", { "operand must be a number", "got a segloss.Criterion" },
      function() return T.zeros(2) * segloss.Dice() end)
  end)

  it("schedules take step counts that are integers, also huge ones", function()
    local S = segloss.schedule
    H.errors("segloss.schedule.linear: ", { "steps must be an integer >= 1", "got 1e+300" }, S.linear, 0, 1, 1e300)
    H.errors("segloss.schedule.cosine: ", { "steps must be an integer >= 1", "got 2.5" }, S.cosine, 0, 1, 2.5)
    local s = S.linear(0, 1, 2 ^ 53)
    local crit = s * segloss.BCE { activation = "sigmoid" }
    crit:step(2 ^ 52)
    assert.near(0.5, crit:parts()[1].weight, 1e-12)
  end)

  it("a combo weight beyond float32, and a criterion multiplied by 1e300, are errors", function()
    H.errors("segloss.Criterion: ", { "got 1e+300" }, function() return 1e300 * segloss.Dice() end)
    H.errors("segloss.Criterion: ", { "got -1e+39" }, function() return segloss.Dice() * -1e39 end)
  end)
end)

describe("segloss.core.combo checks what Lua hands it", function()
  local x, t = T.rand(1, 1, 4), T.zeros(1, 1, 4)
  local cases = {
    { "a part that is not a table", { "part 1 must be a table {name, opts, weight}, got 42" }, "f", { 42 } },
    { "parts that are not a table", { "parts must be a list of {name, opts, weight}, got nil" }, "f", nil },
    { "an unknown loss", { 'part 1: unknown loss string "nope"' }, "f", { { "nope", {}, 1 } } },
    { "a loss name with a NUL", { "part 1: unknown loss" }, "f", { { "dice\0x", {}, 1 } } },
    { "a missing name", { "part 1: unknown loss nil" }, "f", { {} } },
    { "options that are not a table", { "part 1: options must be a table, got 3" }, "f", { { "dice", 3, 1 } } },
    { "a weight that is not a number", { "the weight of part 1 must be a finite number", 'got string "w"' }, "f", { { "dice", {}, "w" } } },
    { "a NaN weight", { "the weight of part 1 must be a finite number", "got nan" }, "f", { { "dice", {}, 0 / 0 } } },
    { "a weight beyond float32", { "the weight of part 2 must be a finite number within the float32 range" }, "f",
      { { "dice", {}, 1 }, { "bce", {}, 1e39 } } },
    { "too many parts", { "a combination takes 1 to 7 parts, got 8" }, "f",
      { { "dice" }, { "dice" }, { "dice" }, { "dice" }, { "dice" }, { "dice" }, { "dice" }, { "dice" } } },
    { "no parts", { "a combination takes 1 to 7 parts, got 0" }, "f", {} },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      H.errors(c[3] .. ": ", c[2], core.combo, c[3], c[4], x, t)
    end)
  end

  it("its other arguments", function()
    local p = { { "dice", {}, 1 } }
    H.errors("segloss.core.combo: ", { "parts must be a list" }, core.combo, 42, nil, x, t)
    H.errors("f: ", { "input must be a segloss.Tensor, got nil" }, core.combo, "f", p)
    H.errors("f: ", { "mask must be a segloss.Tensor, got 3" }, core.combo, "f", p, x, t, 3)
    H.errors("f: ", { "out must be a segloss.Tensor, got string" }, core.combo, "f", p, x, t, nil, "o")
    H.errors("f: ", { "want_grad must be a boolean, got 1" }, core.combo, "f", p, x, t, nil, nil, 1)
    H.errors("f: ", { "last must be a table or nil, got 5" }, core.combo, "f", p, x, t, nil, nil, true, true, nil, 5)
    H.errors("f: ", { "statistics must be a segloss.Tensor" }, core.combo, "f", p, x, t, nil, nil, true, true, {})
    H.errors("segloss.core.check_opts: ", { "fname must be a string, got nothing" }, core.check_opts)
    H.errors("f: ", { "unknown loss nothing" }, core.check_opts, "f")
  end)

  it("the checks of segloss.core.metrics_evaluate (behind metrics.evaluate)", function()
    local m = T.zeros(1, 1, 4, 4)
    local E = "segloss.metrics.evaluate: "
    local ev = core.metrics_evaluate
    H.errors(E, { "option threshold must be a number in (0, 1), got 2" }, ev, m, m, { threshold = 2 })
    H.errors(E, { "option tolerance must be a finite number >= 0, got nan" }, ev, m, m, { tolerance = 0 / 0 })
    H.errors(E, { "option empty_distance must be a finite number >= 0, got -1" }, ev, m, m, { empty_distance = -1 })
    H.errors(E, { "option activation must be one of" }, ev, m, m, { activation = "softmax\0" })
    H.errors(E, { "option include_background must be a boolean, got 1" }, ev, m, m, { include_background = 1 })
    H.errors(E, { "option distances must be a boolean, got string \"no\"" }, ev, m, m, { distances = "no" })
    H.errors(E, { "option classes must be an integer in 2..16777216, got 16777217" }, ev, m, m, { classes = 2 ^ 24 + 1 })
    H.errors(E, { "option names must be strings, got 1" }, ev, m, m, { 1 })
    H.errors(E, { "opts must be a table, got 3" }, ev, m, m, 3)
    H.errors(E, { "expected at most 3 arguments, got 4" }, ev, m, m, nil, 1)
    H.errors(E, { "target must be a segloss.Tensor, got nil" }, ev, m)
  end)
end)

describe("no leaks when filling the results raises", function()
  local function rss_kib()
    local f = io.open("/proc/self/statm")
    if not f then return nil end
    local _, res = f:read("n", "n")
    f:close()
    return res * 4
  end

  it("a metamethod that raises while last() is filled leaks nothing", function()
    if not rss_kib() then
      pending("no /proc/self/statm")
      return
    end
    -- under AddressSanitizer freed memory waits in quarantine (resident), and
    -- LeakSanitizer reports leaks at exit instead
    local check_rss = not (os.getenv("LD_PRELOAD") or ""):find("libasan")
    segloss.seed(1)
    local x, t = T.randn(2, 3, 12, 12), H.labels({ 2, 3, 12, 12 })
    local crit = segloss.Dice { activation = "softmax" } + segloss.CE { activation = "softmax" }
    crit(x, t)
    -- the part tables are filled with lua_setfield: a __newindex there raises
    -- after the passes ran (the internal table, reached through debug)
    local last = state_of(crit).last
    last.parts = { setmetatable({}, { __newindex = function() error("no") end }) }
    local function burst(n)
      for _ = 1, n do assert(not pcall(crit, x, t)) end
      collectgarbage()
      collectgarbage()
    end
    burst(2000)
    local before = rss_kib()
    burst(20000) -- 0.5 KiB each would be 10 MiB
    local grew = rss_kib() - before
    if check_rss then
      assert.is_true(grew < 2048, string.format("resident memory grew by %d KiB", grew))
    end
  end)
end)
