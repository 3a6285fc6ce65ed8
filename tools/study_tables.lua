-- Markdown tables of an experiment's results, for docs/study.md: the
-- numbers there are printed by this script from summary.json and the runs'
-- run.json, never typed by hand.
--
--   lua5.4 tools/study_tables.lua results/ > tables.md
--
-- Per data setting, one row per loss: final-epoch Dice, IoU, sensitivity,
-- precision, false-positive rate on images without target, HD95 and ASSD
-- (mean ± sample std over seeds); the best checkpoint's Dice; how many
-- seeds ended "blind" (final mean sensitivity under 0.05: the network
-- predicts next to nothing on images that have targets); and the first
-- epoch whose validation Dice reached 0.5 (mean over seeds; "never" counts
-- the seeds that did not); and the jitter of the validation Dice over the
-- last 30 epochs (its standard deviation across those epochs, mean over
-- seeds): how unstable training stays once it has converged.
local cjson = require "cjson"

local dir = assert(arg[1], "usage: lua5.4 tools/study_tables.lua RESULTS_DIR")

local function read_json(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return cjson.decode(s)
end

local summary = read_json(dir .. "/summary.json")

local function pm(st, d)
  if st == nil or st == cjson.null then return "–" end
  local f = "%." .. d .. "f"
  return string.format(f .. " ± " .. f, st.mean, st.std)
end

-- the runs of (setting, loss), from their run.json
local function runs_of(e)
  local out = {}
  for _, s in ipairs(e.seeds) do
    local id = (e.data and e.data .. "." or "") .. e.loss .. "-s" .. math.tointeger(s)
    out[#out + 1] = read_json(dir .. "/runs/" .. id .. "/run.json")
  end
  return out
end

local last
for _, e in ipairs(summary.losses) do
  if e.data ~= last then
    last = e.data
    local about = ""
    for _, st in ipairs(summary.settings or {}) do
      if st.name == e.data then
        local dims = {}
        for i = 3, #st.data.shape do dims[#dims + 1] = string.format("%d", st.data.shape[i]) end
        about = string.format(" — %d training, %d validation images of %s", st.data.train, st.data.val,
          table.concat(dims, "×"))
      end
    end
    io.write(string.format("\n#### %s%s\n\n", e.data or "results", about))
    io.write("| loss | Dice | best Dice | IoU | sensitivity | precision | FP rate, empty | HD95 | ASSD | blind | " ..
      "Dice ≥ 0.5 at epoch | jitter |\n")
    io.write("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
  end
  local blind, first, never, jitter = 0, {}, 0, 0
  local runs = runs_of(e)
  for _, r in ipairs(runs) do
    local ys = {}
    for k = math.max(1, #r.curves - 29), #r.curves do ys[#ys + 1] = r.curves[k].dice or 0 end
    local m, q = 0, 0
    for _, y in ipairs(ys) do m = m + y / #ys end
    for _, y in ipairs(ys) do q = q + (y - m) ^ 2 end
    jitter = jitter + math.sqrt(q / (#ys - 1)) / #runs
    if r.final.sensitivity < 0.05 then blind = blind + 1 end
    local at
    for k, c in ipairs(r.curves) do
      if c.dice and c.dice >= 0.5 then at = k break end
    end
    if at then first[#first + 1] = at else never = never + 1 end
  end
  local reach = "never"
  if #first > 0 then
    local sum = 0
    for _, v in ipairs(first) do sum = sum + v end
    reach = string.format("%.0f", sum / #first) .. (never > 0 and string.format(" (%d never)", never) or "")
  end
  local f = e.final
  io.write(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d | %s | %.3f |\n", e.loss,
    pm(f.dice, 3), pm(e.best.dice, 3), pm(f.iou, 3), pm(f.sensitivity, 3), pm(f.precision, 3),
    pm(f.fp_rate_empty, 2), pm(f.hd95, 1), pm(f.assd, 1), blind, #runs, reach, jitter))
end
