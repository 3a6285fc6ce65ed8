-- The loss registry (src/loss/registry.c, segloss.losses()) drives every
-- list of losses: for each entry, the functional form and the criterion
-- class exist, the golden generator has its cases and the golden file
-- exists, the generated reference pages and the README list it, the
-- benchmark times it; and no other file holds a list of losses of its own.
-- (A loss removed from any of these lists fails this spec.)
local segloss = require "segloss"
local H = require "helpers"
local core = require "segloss.core"
local criterion = require "segloss.criterion"

local ENV = string.format("LUA_PATH_5_4=%q LUA_CPATH_5_4=%q ", package.path, package.cpath)

local function lines_of(cmd)
  local p = assert(io.popen(ENV .. cmd .. " 2>&1"))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  local ok = p:close()
  return out, ok
end

local KINDS = { pixel = true, region = true, preset = true, generic = true }
local TYPES = { boolean = true, enum = true, number = true, integer = true, tensor = true, list = true,
  ["number|auto"] = true, ["number|false|list"] = true, numbers = true }

describe("the loss registry", function()
  local losses = segloss.losses()

  it("describes each loss: name, class, kind, paper, activations, typed options with defaults", function()
    assert.is_true(#losses >= 1)
    local names, classes = {}, {}
    for _, d in ipairs(losses) do
      assert.is_string(d.name)
      assert.is_nil(names[d.name], "two entries named " .. d.name)
      assert.is_nil(classes[d.class], "two entries of class " .. tostring(d.class))
      names[d.name], classes[d.class] = true, true
      assert.is_true(d.name:match("^[a-z][a-z_]*$") ~= nil, d.name)
      assert.is_true(d.class:match("^[A-Z]%w*$") ~= nil, d.class)
      assert.is_true(KINDS[d.kind], d.name .. ": kind " .. tostring(d.kind))
      assert.is_true(#d.paper > 0 and #d.summary > 0 and #d.doc > 0, d.name)
      assert.is_true(#d.activations >= 1, d.name)
      for k, o in pairs(d.options) do
        assert.is_true(TYPES[o.type], d.name .. "." .. k .. ": type " .. tostring(o.type))
        if o.type == "enum" then
          local found = o.default == nil
          for _, c in ipairs(o.choices) do found = found or c == o.default end
          assert.is_true(found, d.name .. "." .. k .. ": default among the choices")
        elseif o.type == "boolean" then
          assert.is_true(type(o.default) == "boolean" or o.default == nil, d.name .. "." .. k)
        elseif o.type == "number" and o.default ~= nil then
          assert.is_true(o.default >= o.min and (o.max == nil or o.default <= o.max), d.name .. "." .. k)
        end
        if o.default_from then assert.is_table(d.options[o.default_from], d.name .. "." .. k) end
      end
      for _, shared in ipairs { "activation", "reduction", "mask", "weight", "eps" } do
        assert.is_table(d.options[shared], d.name .. " takes " .. shared)
      end
      if d.kind == "preset" then
        assert.is_true(#d.parts >= 2, d.name)
        for _, p in ipairs(d.parts) do
          assert.is_true(names[p.name] or false, d.name .. ": part " .. p.name .. " comes earlier in the registry")
          if p.weight then assert.is_table(d.options[p.weight], d.name .. ": weight option " .. p.weight) end
        end
      end
    end
  end)

  it("is a fresh table each call", function()
    local a = segloss.losses()
    a[1].name = "changed"
    a[1].options.smooth = nil
    a[2] = nil
    local b = segloss.losses()
    assert.equal(losses[1].name, b[1].name)
    assert.equal(#losses, #b)
    assert.same(losses[1].options, b[1].options)
    assert.are_not.equal(losses, b)
  end)

  local bench = lines_of("lua5.4 bench/losses.lua --list")
  local newer = H.readfile("tools/bench_torch_newer.py")
  local benched = {}
  for _, n in ipairs(bench) do benched[n] = true end
  local pages = {
    losses = H.readfile("docs/losses.lua"),
    criteria = H.readfile("docs/criteria.lua"),
    math = H.readfile("docs/losses.md"),
    readme = H.readfile("README.md"),
  }

  for _, d in ipairs(losses) do
    it(d.name .. " / " .. d.class .. ": in every list that derives from the registry", function()
      assert.is_function(segloss[d.name], "segloss." .. d.name)
      assert.equal(core[d.name], segloss[d.name])
      assert.is_function(segloss[d.class], "segloss." .. d.class)
      assert.equal(d.name, criterion.classes[d.class])
      -- the golden generator's cases and the golden file of spec 10
      local f = io.open("tools/golden/cases/" .. d.name .. ".py")
      assert.is_truthy(f, "tools/golden/cases/" .. d.name .. ".py")
      f:close()
      assert.is_true(#H.json("spec/golden/" .. d.name .. ".json").cases >= 15, "spec/golden/" .. d.name .. ".json")
      -- the reference pages, the mathematical reference and the README
      assert.is_truthy(pages.losses:find("\n-- @function segloss." .. d.name .. "\n", 1, true), "docs/losses.lua")
      assert.is_truthy(pages.criteria:find("\n-- @function " .. d.class .. "\n", 1, true), "docs/criteria.lua")
      assert.is_truthy(pages.math:find("\n### " .. d.name .. "\n", 1, true), "a section in docs/losses.md")
      assert.is_truthy(pages.readme:find("`" .. d.name .. "`", 1, true), "README.md")
      -- the benchmark: bench/losses.lua for the fused engine's losses, the
      -- PyTorch peers of bench/newer.lua for the generic ones
      if d.kind == "generic" then
        assert.is_truthy(newer:find('"' .. d.name .. '"', 1, true), "tools/bench_torch_newer.py")
      else
        assert.is_true(benched[d.name] or false, "bench/losses.lua --list")
      end
    end)
  end

  it("the generated pages are current (make docs)", function()
    local gen = assert(loadfile("tools/gen_docs.lua"))("module")
    for path, text in pairs(gen.render()) do
      assert.is_true(H.readfile(path) == text, path .. " is stale: run make docs")
    end
  end)

  it("the limit of parts of a combination comes from the C core", function()
    local n = core.max_parts
    assert.is_true(math.type(n) == "integer" and n >= 2)
    local c = segloss.Dice()
    for _ = 2, n do c = c + segloss.Dice() end
    H.errors("segloss.Criterion: ", { string.format("at most %d parts, got %d", n, n + 1) },
      function() return c + segloss.Dice() end)
  end)

  -- The places whose lists derive from the registry (the Lua modules, the
  -- bindings, the loss benchmark, the docs generator, the golden generator
  -- but each loss's own cases, the specs that run every loss) hold no list
  -- of losses of their own: no line with three or more names or classes of
  -- the registry (as quoted strings, or as table keys `Dice =`). Chosen
  -- subsets elsewhere (a test's losses, the built-in study's) are content,
  -- not lists that a new loss must join.
  local EXEMPT = { ["lua/segloss/experiment/study.lua"] = true } -- the study's chosen losses
  it("no place that derives from it lists the losses itself", function()
    local known = {}
    for _, d in ipairs(losses) do
      known[d.name] = true
      known[d.class] = true
    end
    local files = lines_of("ls lua/segloss/*.lua lua/segloss/*/*.lua src/core.c src/bind/*.c bench/losses.lua "
      .. "tools/gen_docs.lua tools/golden/*.py spec/1[0-5]-*_spec.lua spec/20-*_spec.lua")
    assert.is_true(#files > 30)
    local found = {}
    for _, path in ipairs(files) do
      if not EXEMPT[path] then
        local n = 0
        for line in io.lines(path) do
          n = n + 1
          local seen, count = {}, 0
          for word in line:gmatch("[\"']([%w_]+)[\"']") do
            if known[word] and not seen[word] then seen[word], count = true, count + 1 end
          end
          for word in line:gmatch("([%w_]+)%s*=") do
            if known[word] and not seen[word] then seen[word], count = true, count + 1 end
          end
          if count >= 3 then found[#found + 1] = path .. ":" .. n .. ": " .. line end
        end
      end
    end
    assert.is_true(#found == 0, "lists of losses outside the registry:\n" .. table.concat(found, "\n"))
  end)
end)
