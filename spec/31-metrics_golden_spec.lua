-- segloss.metrics against SciPy (distance_transform_edt) and brute-force
-- references: tools/gen_metrics_golden.py writes spec/golden/metrics_*.json.
local segloss = require "segloss"
local H = require "helpers"
local T = segloss.tensor
local metrics = segloss.metrics

local edt = H.json("spec/golden/metrics_edt.json")
local surface = H.json("spec/golden/metrics_surface.json")

local function num(v) return v == "inf" and math.huge or v end

describe("metrics golden", function()
  it("has enough cases", function()
    assert.is_true(#edt.cases >= 20)
    assert.is_true(#surface.cases >= 25)
  end)

  describe("distance_transform equals SciPy's distance_transform_edt", function()
    for _, c in ipairs(edt.cases) do
      it(c.id, function()
        local m = T.from(c.mask, c.shape)
        local d = metrics.distance_transform(m, c.spacing)
        assert.same(c.shape, d:shape())
        local got = d:reshape(d:numel()):totable()
        for i, want in ipairs(c.dist) do
          want = num(want)
          local ok = want == math.huge and got[i] == math.huge
            or math.abs(got[i] - want) <= 1e-6 * want + 1e-6
          if not ok then error(string.format("%s: element %d: %.9g, want %.17g", c.id, i, got[i], want), 0) end
        end
      end)
    end
  end)

  describe("evaluate equals the reference metrics", function()
    local KEYS = { "dice", "iou", "precision", "sensitivity", "specificity", "hd", "hd95", "assd", "nsd" }
    for _, c in ipairs(surface.cases) do
      it(c.id, function()
        local shape = { 1, 1 }
        for i, v in ipairs(c.shape) do shape[i + 2] = v end
        local p, t = T.from(c.pred, shape), T.from(c.target, shape)
        local r = metrics.evaluate(p, t, { spacing = c.spacing, tolerance = c.tolerance })
        for _, k in ipairs(KEYS) do
          local want = num(c.expect[k])
          if not (math.abs(r[k] - want) <= 1e-9 * math.abs(want) + 1e-12) then -- luacheck: ignore 581
            error(string.format("%s: %s = %.17g, want %.17g", c.id, k, r[k], want), 0)
          end
        end
        local v = r.values[1]
        for _, k in ipairs { "tp", "fp", "fn", "tn", "pred_edges", "target_edges" } do
          assert.equal(c.expect[k], v[k], c.id .. " " .. k)
        end
      end)
    end
  end)
end)
