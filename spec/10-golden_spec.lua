-- Every loss of the registry against the independent float64 reference of tools/gen_golden.py
-- (PyTorch autograd), on every backend the CPU has.
--   loss: |Δ| <= 1e-5 |ref| + 1e-6
--   grad: |Δ| <= 1e-4 |ref| + 1e-5 max|ref|, and exactly 0 where the zero is
--   structural: masked elements, clamped logs, means over nothing (with
--   softmax, a reference 0 can also be the cancellation of p (g - Σ p g) in
--   float64, where segloss' stable form keeps a tiny nonzero value)
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local cjson = require "cjson"

local function tensor(spec) return T.from(spec.data, spec.shape) end

local function flat(t) return t:reshape(t:numel()):totable() end

local function check_case(name, c)
  local opts = {}
  for k, v in pairs(c.opts) do opts[k] = v end
  if c.mask then opts.mask = tensor(c.mask) end
  local loss, grad = segloss[name](tensor(c.x), tensor(c.t), opts)
  if type(c.loss) == "number" then
    local tol = 1e-5 * math.abs(c.loss) + 1e-6
    if not (math.abs(loss - c.loss) <= tol) then -- luacheck: ignore 581 (NaN must fail)
      error(string.format("%s: loss %.9g, reference %.9g", c.id, loss, c.loss), 0)
    end
  else
    assert(T.istensor(loss), c.id .. ": reduction none gives a tensor")
    assert.same(c.loss.shape, loss:shape())
    local got = flat(loss)
    for i, v in ipairs(c.loss.data) do
      if not (math.abs(got[i] - v) <= 1e-5 * math.abs(v) + 1e-6) then -- luacheck: ignore 581
        error(string.format("%s: loss[%d] %.9g, reference %.9g", c.id, i, got[i], v), 0)
      end
    end
  end
  if c.grad == cjson.null or c.grad == nil then
    assert(grad == nil, c.id .. ": no gradient expected")
    return
  end
  assert.same(c.grad.shape, grad:shape())
  local g, mx = flat(grad), 0
  for _, v in ipairs(c.grad.data) do mx = math.max(mx, math.abs(v)) end
  local masked = {}
  if c.mask then
    -- the mask is (N,1,S...) or x's shape: map every element of x to its entry
    local C = c.x.shape[2]
    local per = #c.grad.data // (c.x.shape[1] * C)
    local full = #c.mask.data == #c.grad.data
    for i = 1, #c.grad.data do
      local n, r = (i - 1) // (C * per), (i - 1) % per
      masked[i] = (full and c.mask.data[i] or c.mask.data[n * per + r + 1]) == 0
    end
  end
  local exact_zeros = mx == 0 or c.opts.activation ~= "softmax"
  for i, v in ipairs(c.grad.data) do
    local ok
    if v == 0 and (exact_zeros or masked[i]) then
      ok = g[i] == 0
    else
      ok = math.abs(g[i] - v) <= 1e-4 * math.abs(v) + 1e-5 * mx
    end
    if not ok then
      error(string.format("%s: grad[%d] %.9g, reference %.9g (max|ref| %.3g)", c.id, i, g[i], v, mx), 0)
    end
  end
end

-- every loss of the registry has its golden file
for _, d in ipairs(H.losses()) do
  local name = d.name
  local golden = H.json("spec/golden/" .. name .. ".json")
  describe("golden " .. name .. " (" .. #golden.cases .. " cases)", function()
    it("has at least 15 cases", function()
      assert.is_true(#golden.cases >= 15)
    end)
    H.backend_it(it, pending, "matches the reference", function()
      for _, c in ipairs(golden.cases) do check_case(name, c) end
    end)
  end)
end
