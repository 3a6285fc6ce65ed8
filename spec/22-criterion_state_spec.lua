-- A criterion's state: what a failed call, an in-place change of an input,
-- or Lua code reaching into its fields can and cannot do to it; its
-- compiled form, which only C makes, and the checks of the entry points
-- behind criteria.
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

  it("its compiled form is out of Lua's reach and cannot be forged", function()
    local crit = segloss.Dice { activation = "sigmoid" } + segloss.IoU { activation = "sigmoid" }
    crit(x1, t1)
    for k in pairs(crit) do assert.is_true(k == "gradInput" or k == "output", "a public field " .. k) end
    -- the compiled criterion, reached anyway (debug): its metatable is hidden
    local plan = state_of(crit).plan
    assert.equal("userdata", type(plan))
    assert.is_false(getmetatable(plan))
    -- nothing else passes for one: not a table, a tensor, another userdata,
    -- nor a userdata given its metatable through debug
    local E = { "criterion must be a compiled criterion" }
    for _, fake in ipairs { {}, T.zeros(4), io.stdout, "plan", 3 } do
      H.errors("segloss.core.criterion_call: ", E, core.criterion_call, fake, x1, t1, nil, true)
    end
    local forged = T.zeros(4096)
    debug.setmetatable(forged, debug.getmetatable(plan))
    H.errors("segloss.core.criterion_call: ", E, core.criterion_call, forged, x1, t1, nil, true)
    H.errors("segloss.core.criterion_last: ", E, core.criterion_last, forged)
    debug.setmetatable(forged, debug.getmetatable(T.zeros(1)))
    crit.gradInput = "g" -- reassigned by the user: not read back
    local l, g = crit(x1, t1)
    assert.is_true(T.istensor(g) and l == l)
    assert.equal(g, crit.gradInput)
  end)

  it("keeps working when garbage is collected in the middle of use", function()
    local m = H.bin({ 2, 1, 40, 40 }, 0.7)
    local _, want = segloss.bce_dice(x1, t1, { activation = "sigmoid", mask = m })
    local kept = {}
    for i = 1, 30 do
      -- the mask given at construction lives only in the criterion now
      local crit = segloss.BCEDice { activation = "sigmoid", mask = H.bin({ 2, 1, 40, 40 }, 1) }
        + 0.5 * segloss.Dice { activation = "sigmoid" }
      collectgarbage()
      local _, g = crit(x1, t1, m)
      collectgarbage()
      local _, g2 = crit(x2, t1, m)
      collectgarbage()
      assert.is_true(rawequal(g2, crit:backward(x2, t1, m)))
      kept[i] = g -- a gradient that outlives its criterion
      if i % 3 == 0 then crit = nil end -- luacheck: ignore 311
      collectgarbage()
    end
    collectgarbage()
    collectgarbage()
    local crit = segloss.BCEDice { activation = "sigmoid" }
    for i = 1, 30 do
      assert.is_true(kept[i]:numel() == 3200 and kept[i]:max() == kept[i]:max())
      local l, g = crit(x1, t1, m)
      assert.is_true(same(g, want) and l == l)
    end
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

describe("the compiled criterion's entry points check what Lua hands them", function()
  local x, t = T.rand(1, 1, 4), T.zeros(1, 1, 4)
  it("criterion_new and criterion_join", function()
    H.errors("segloss.core.criterion_new: ", { "fname must be a string, got nothing" }, core.criterion_new)
    -- the name the errors start with is the caller's, a public segloss name
    H.errors("segloss.core.criterion_new: ", { 'fname must be a public name "segloss.<name>"', 'got string "f"' },
      core.criterion_new, "f", "dice", {})
    H.errors("segloss.F: ", { "unknown loss nothing" }, core.criterion_new, "segloss.F")
    H.errors("segloss.F: ", { 'unknown loss string "nope"' }, core.criterion_new, "segloss.F", "nope")
    H.errors("segloss.F: ", { "unknown loss" }, core.criterion_new, "segloss.F", "dice\0x")
    H.errors("segloss.F: ", { "opts must be a table, got 3" }, core.criterion_new, "segloss.F", "dice", 3)
    H.errors("segloss.F: ", { 'unknown option "smoth" (did you mean "smooth"?)' }, core.criterion_new, "segloss.F", "dice",
      { smoth = 1 })
    local d = core.criterion_new("segloss.F", "dice", {})
    local n = core.max_parts
    H.errors("segloss.G: ", { string.format("a combination takes 1 to %d parts, got 0", n) }, core.criterion_join, "segloss.G")
    H.errors("segloss.G: ", { "criterion must be a compiled criterion", "got a table" }, core.criterion_join, "segloss.G", d, {})
    local all = {}
    for i = 1, n do all[i] = d end
    assert.equal("userdata", type(core.criterion_join("segloss.G", table.unpack(all))))
    all[n + 1] = d
    H.errors("segloss.G: ", { string.format("a combination takes at most %d parts, got %d", n, n + 1) },
      core.criterion_join, "segloss.G", table.unpack(all))
  end)

  it("criterion_weights, and the weights at the call", function()
    local d = core.criterion_new("segloss.Dice", "dice", {})
    H.errors("segloss.core.criterion_weights: ", { "expected 1 argument, got 0" }, core.criterion_weights, d)
    H.errors("segloss.core.criterion_weights: ", { 'weight must be a number, got string "w"' },
      core.criterion_weights, d, "w")
    core.criterion_weights(d, 0 / 0)
    H.errors("segloss.Dice: ", { "the weight of part 1 must be a finite number within the float32 range",
      "got nan" }, core.criterion_call, d, x, t, nil, true)
    local j = core.criterion_join("segloss.Criterion", d, core.criterion_new("segloss.BCE", "bce", {}))
    core.criterion_weights(j, 1, 1e39)
    H.errors("segloss.Criterion: ", { "the weight of part 2 must be a finite number", "got 1e+39" },
      core.criterion_call, j, x, t, nil, true)
  end)

  it("the tensors of a call", function()
    local d = core.criterion_new("segloss.Dice", "dice", {})
    core.criterion_weights(d, 1)
    H.errors("segloss.Dice: ", { "input must be a segloss.Tensor, got nil" }, core.criterion_call, d)
    H.errors("segloss.Dice: ", { "target must be a segloss.Tensor, got a table {1, 2}" }, core.criterion_call, d, x,
      { 1, 2 })
    H.errors("segloss.Dice: ", { "mask must be a segloss.Tensor or nil, got 3" }, core.criterion_call, d, x, t, 3)
    H.errors("segloss.Criterion:from_stats: ", { "statistics must be a segloss.Tensor, got a table" },
      core.criterion_from_stats, d, {}, x, t)
    H.errors("segloss.Criterion:stats: ", { "input must be a segloss.Tensor, got 1" }, core.criterion_stats, d, 1, t)
    assert.is_nil(core.criterion_last(d))
    local l = core.criterion_call(d, x, t, nil, false)
    assert.equal(l, core.criterion_last(d).total)
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

describe("no leaks", function()
  local function rss_kib()
    local f = io.open("/proc/self/statm")
    if not f then return nil end
    local _, res = f:read("n", "n")
    f:close()
    return res * 4
  end

  it("criteria built, run, failing and dropped by the thousand leak nothing", function()
    if not rss_kib() then
      pending("no /proc/self/statm")
      return
    end
    -- under AddressSanitizer freed memory waits in quarantine (resident), and
    -- LeakSanitizer reports leaks at exit instead
    local check_rss = not (os.getenv("LD_PRELOAD") or ""):find("libasan")
    segloss.seed(1)
    local x, t = T.randn(2, 3, 12, 12), H.labels({ 2, 3, 12, 12 })
    local bad = x:clone()
    bad:reshape(bad:numel()):set(5, 0 / 0)
    local function burst(n)
      for _ = 1, n do
        local crit = segloss.Dice { activation = "softmax", weight = { 1, 2, 3 } }
          + segloss.CE { activation = "softmax" }
        crit(x, t)
        assert(not pcall(crit, bad, t))
        crit:last()
      end
      collectgarbage()
      collectgarbage()
    end
    burst(500)
    local before = rss_kib()
    burst(5000)
    local grew = rss_kib() - before
    if check_rss then
      assert.is_true(grew < 2048, string.format("resident memory grew by %d KiB", grew))
    end
  end)
end)
