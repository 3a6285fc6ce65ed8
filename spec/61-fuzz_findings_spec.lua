-- What the Lua API fuzzer (fuzz/lua/api.lua) found, one case per class of
-- bug: each failed before its fix.
local segloss = require "segloss"
local T, nn = segloss.tensor, segloss.nn

local function errors(pattern, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok, "no error")
  assert.is_string(msg)
  assert.truthy(msg:find(pattern, 1, true), msg)
end

describe("a method called on something that is not its object", function()
  it("is an error naming the method, for every method of a layer", function()
    local conv = nn.Conv2d(1, 1, 3)
    for _, m in ipairs { "forward", "backward", "parameters", "buffers", "zero_grad", "train", "evaluate",
      "nparams", "save", "load" } do
      for _, self in ipairs { 5, "x", {}, io.stdout, nn.Conv2d } do
        errors("segloss.nn.Module:" .. m .. ": self must be a segloss.nn module", conv[m], self, T.zeros(1, 1, 4, 4))
      end
    end
    local seq, cat = nn.Sequential { nn.ReLU() }, nn.Concat()
    errors("segloss.nn.Module:forward: self must be", seq.forward, 1, T.zeros(1, 1, 2, 2))
    errors("segloss.nn.Module:backward: self must be", seq.backward, 1, T.zeros(1, 1, 2, 2))
    errors("segloss.nn.Module:forward: self must be", cat.forward, nil, T.zeros(1, 1, 2, 2))
    errors("segloss.nn.Module:backward: self must be", cat.backward, nil, T.zeros(1, 1, 2, 2))
    -- and the methods still work on a module
    assert.equal(10, conv:nparams())
    assert.equal(conv, conv:train():evaluate():zero_grad())
  end)

  it("is an error naming the method, for an optimiser, a schedule and a dataset", function()
    local opt = segloss.optim.SGD({ T.zeros(1) }, { T.zeros(1) }, { lr = 0.1 })
    for _, m in ipairs { "lr", "set_lr", "step", "state", "load_state" } do
      errors("segloss.optim.Optimizer:" .. m .. ": self must be a segloss.optim optimiser", opt[m], 3, 0.1)
    end
    assert.equal(0.1, opt:lr())
    local s = segloss.schedule.linear(0, 1, 4)
    errors("segloss.schedule:value: self must be a segloss.schedule", s.value, {}, 1)
    local d = segloss.data.synthetic { n = 2, size = { 8, 8 } }
    errors("segloss.Dataset:batches: self must be a segloss.Dataset", d.batches, 1, 1)
    errors("segloss.Dataset:split: self must be a segloss.Dataset", d.split, "x", 0.5)
    errors("segloss.Dataset:subset: self must be a segloss.Dataset", d.subset, nil, { 1 })
  end)
end)

describe("an argument the Lua layer used without a check", function()
  it("segloss.schedule:value refuses a step that is not a number >= 0", function()
    local s = segloss.schedule.linear(0, 1, 4)
    for _, k in ipairs { "1", -1, 0 / 0 } do
      errors("segloss.schedule:value: k must be a number >= 0", s.value, s, k)
    end
    errors("segloss.schedule:value: k must be a number >= 0, got nil", s.value, s)
    assert.equal(0.5, s:value(2))
    assert.equal(1, s:value(math.huge))
  end)

  it("Conv:reset refuses a slope that is not a number in [0, 1e6] (NaN weights before)", function()
    local conv = nn.Conv2d(1, 2, 3)
    local before = conv.weight:clone()
    for _, a in ipairs { "x", 0 / 0, -1, 1 / 0, {} } do
      errors("segloss.nn.Conv2d:reset: a (the activation's negative slope) must be a number in [0, 1e6]", conv.reset,
        conv, a)
    end
    assert.equal(0, conv.weight:clone():sub(before):max())
    conv:reset(0.01)
    assert.is_true(conv.weight:max() == conv.weight:max())
  end)
end)

describe("the layers' public tables", function()
  it("hold no unchecked helper: Sequential's chain of entries is private (_chain)", function()
    -- nn.Sequential.chain(5) was a raw "attempt to index" error; it is the
    -- UNet's builder, nn.Sequential{...} the checked constructor
    assert.is_nil(nn.Sequential.chain)
    local s = nn.Sequential { nn.ReLU() }
    assert.equal(1, #s.modules)
    assert.equal(nn.UNet { base = 2, depth = 1 }:nparams(), nn.UNet { base = 2, depth = 1 }:nparams())
  end)
end)

describe("Conv:reset on something else", function()
  it("is an error naming the class, for another module too (was a raw error on a nil field)", function()
    local reset = nn.ConvTranspose2d(1, 1, 2).reset
    for _, self in ipairs { 5, nn.ReLU(), nn.Conv2d(1, 1, 3), {} } do
      errors("segloss.nn.ConvTranspose2d:reset: self must be a segloss.nn.ConvTranspose2d", reset, self)
    end
  end)
end)

describe("t:size(nil)", function()
  it("is t:size() (was an error naming segloss.Tensor:shape)", function()
    local t = T.zeros(2, 3, 4)
    assert.same({ 2, 3, 4 }, t:size(nil))
    assert.same(t:size(), t:size(nil))
    errors("segloss.Tensor:size: expected at most 1 argument, got 2", t.size, t, 1, 2)
  end)
end)

describe("segloss.core.criterion_new and criterion_join", function()
  it("take only a public name for their errors (the fuzzer: a name of 300 z's came back as the message)", function()
    local core = require("segloss").core
    local plan = core.criterion_new("segloss.Dice", "dice", {})
    -- the name the Lua layer passes still prefixes the errors
    errors("segloss.Criterion: criterion must be a compiled criterion",
      core.criterion_join, "segloss.Criterion", nil)
    local bads = { string.rep("z", 300), "Dice", "segloss.", "segloss.a b", "segloss." .. string.rep("x", 60) }
    for _, bad in ipairs(bads) do
      errors("segloss.core.criterion_join: fname must be a public name", core.criterion_join, bad, plan)
      errors("segloss.core.criterion_new: fname must be a public name", core.criterion_new, bad, "dice", {})
    end
    errors("segloss.core.criterion_new: fname must be a string", core.criterion_new, 5, "dice", {})
  end)
end)

describe("segloss.core.vmath_accuracy", function()
  it("takes Tensor:pow's exponents, [0, 2^24] (2^63 reported a result of the wrong class, inf)", function()
    local core = require("segloss").core
    errors("segloss.core.vmath_accuracy: exponent must be in [0, 2^24], got 9.2233720368548e+18",
      core.vmath_accuracy, "pow", 1657, math.maxinteger)
    errors("segloss.core.vmath_accuracy: exponent must be in [0, 2^24], got -1", core.vmath_accuracy, "pow", 100, -1)
    -- the bound itself is taken (its report may hold inf: at the overflow
    -- edge the kernel's and the reference's classes differ, within the
    -- 2 + g/2 ulp that spec 04 allows pow)
    assert.is_true(core.vmath_accuracy("pow", 1657, 2 ^ 24).points >= 1657)
  end)
end)
