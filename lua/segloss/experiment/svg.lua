--- SVG plots written by hand (internal): line plots of curves per epoch and
-- grouped bars with error bars. Plain SVG 1.1, no script, no external
-- resource; every series carries data-loss="<loss>" so that it can be found.
-- @module segloss.experiment.svg

local V = {}

-- colour-blind-safe palette (Okabe–Ito), then Tableau's for more losses
V.COLOURS = { "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
  "#8c564b", "#7f7f7f", "#bcbd22", "#17becf" }

function V.colour(i) return V.COLOURS[(i - 1) % #V.COLOURS + 1] end

function V.escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end
local esc = V.escape

local function f2(v) return string.format("%.2f", v) end

--- "Nice" ticks covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
function V.ticks(lo, hi, n)
  n = n or 5
  if hi <= lo or hi ~= hi then hi = lo + 1 end
  local raw = (hi - lo) / n
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p
  for _, m in ipairs { 1, 2, 5, 10 } do
    if m * p >= raw then step = m * p break end
  end
  local a, b = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
  local t = {}
  for i = 0, math.floor((b - a) / step + 0.5) do t[#t + 1] = a + i * step end
  return t, step
end

local function label(v, step)
  local d = math.max(0, -math.floor(math.log(step, 10) + 1e-9))
  return string.format("%." .. d .. "f", v)
end

local W, H = 640, 380
local ML, MR, MT, MB = 64, 170, 36, 48 -- margins; the legend sits on the right

-- frame, title, axis labels and ticks; returns the mapping functions
local function axes(out, title, xlabel, ylabel, xt, xstep, yt, ystep)
  local x0, x1, y0, y1 = ML, W - MR, H - MB, MT
  local xlo, xhi, ylo, yhi = xt[1], xt[#xt], yt[1], yt[#yt]
  local function X(v) return x0 + (v - xlo) / (xhi - xlo) * (x1 - x0) end
  local function Y(v) return y0 - (v - ylo) / (yhi - ylo) * (y0 - y1) end
  out[#out + 1] = string.format('<text class="title" x="%s" y="20">%s</text>', f2((x0 + x1) / 2), esc(title))
  for _, v in ipairs(yt) do
    out[#out + 1] = string.format('<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>', x0, f2(Y(v)), x1, f2(Y(v)))
    out[#out + 1] = string.format('<text class="ytick" x="%s" y="%s">%s</text>', x0 - 6, f2(Y(v) + 4),
      label(v, ystep))
  end
  if xt.labels then
    for i, s in ipairs(xt.labels) do
      out[#out + 1] = string.format('<text class="xtick" x="%s" y="%s">%s</text>', f2(X(i)), y0 + 18, esc(s))
    end
  else
    for _, v in ipairs(xt) do
      out[#out + 1] = string.format('<line class="tick" x1="%s" y1="%s" x2="%s" y2="%s"/>', f2(X(v)), y0, f2(X(v)),
        y0 + 5)
      out[#out + 1] = string.format('<text class="xtick" x="%s" y="%s">%s</text>', f2(X(v)), y0 + 18,
        label(v, xstep))
    end
  end
  out[#out + 1] = string.format('<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>', x0, y0, x1, y0)
  out[#out + 1] = string.format('<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/>', x0, y0, x0, y1)
  out[#out + 1] = string.format('<text class="xlabel" x="%s" y="%s">%s</text>', f2((x0 + x1) / 2), H - 8,
    esc(xlabel))
  out[#out + 1] = string.format('<text class="ylabel" transform="translate(16 %s) rotate(-90)">%s</text>',
    f2((y0 + y1) / 2), esc(ylabel))
  return X, Y
end

local STYLE = "<style>text{font-family:sans-serif;font-size:12px;fill:#222}" ..
  ".title{font-size:14px;font-weight:bold;text-anchor:middle}.xtick,.xlabel{text-anchor:middle}" ..
  ".ytick{text-anchor:end}.ylabel{text-anchor:middle}.axis{stroke:#222;stroke-width:1}" ..
  ".tick{stroke:#222}.grid{stroke:#ddd;stroke-width:1}.series{fill:none;stroke-width:2}" ..
  ".err{stroke:#222;stroke-width:1}</style>"

local function open(out, title)
  out[#out + 1] = string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" ' ..
    'viewBox="0 0 %d %d" role="img" aria-label="%s">', W, H, W, H, esc(title))
  out[#out + 1] = STYLE
  out[#out + 1] = string.format('<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>', W, H)
end

local function legend(out, names)
  for i, name in ipairs(names) do
    local y = MT + 6 + (i - 1) * 18
    out[#out + 1] = string.format('<g class="legend" data-loss="%s"><rect x="%d" y="%d" width="14" height="10" ' ..
      'fill="%s"/><text x="%d" y="%d">%s</text></g>', esc(name), W - MR + 14, y, V.colour(i), W - MR + 34, y + 9,
      esc(name))
  end
end

local function range(lo, hi, v)
  if v == nil or v ~= v or v == math.huge or v == -math.huge then return lo, hi end
  return math.min(lo, v), math.max(hi, v)
end

--- A line plot: series = { {loss = id, y = {per epoch}}, ... }, one polyline
-- per series (gaps where y is nil).
function V.lines(title, xlabel, ylabel, series, opts)
  opts = opts or {}
  local out = {}
  open(out, title)
  local n, lo, hi = 1, math.huge, -math.huge
  for _, s in ipairs(series) do
    n = math.max(n, #s.y)
    for e = 1, #s.y do lo, hi = range(lo, hi, s.y[e]) end
  end
  if lo > hi then lo, hi = 0, 1 end
  if opts.ymin then lo = math.min(lo, opts.ymin) end
  if opts.ymax then hi = math.max(hi, opts.ymax) end
  local yt, ystep = V.ticks(lo, hi, 5)
  local xt, xstep = {}, 1
  if n <= 10 then
    for e = 1, math.max(n, 2) do xt[e] = e end
  else
    xt, xstep = V.ticks(0, n, 8)
    xt[1] = 1 -- epochs count from 1
  end
  local X, Y = axes(out, title, xlabel, ylabel, xt, xstep, yt, ystep)
  local names = {}
  for i, s in ipairs(series) do
    names[i] = s.loss
    local pts = {}
    for e = 1, #s.y do
      local v = s.y[e]
      if v ~= nil and v == v and v > -math.huge and v < math.huge then
        pts[#pts + 1] = f2(X(e)) .. "," .. f2(Y(v))
      end
    end
    out[#out + 1] = string.format('<polyline class="series" data-loss="%s" stroke="%s" points="%s"/>',
      esc(s.loss), V.colour(i), table.concat(pts, " "))
  end
  legend(out, names)
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

--- Grouped bars with error bars: groups = metric names; series = { {loss =
-- id, mean = {per group}, std = {per group}}, ... }.
function V.bars(title, ylabel, groups, series, opts)
  opts = opts or {}
  local out = {}
  open(out, title)
  local lo, hi = 0, -math.huge
  for _, s in ipairs(series) do
    for g = 1, #groups do
      local m, sd = s.mean[g], s.std[g] or 0
      if m then lo, hi = range(lo, hi, m + sd); lo, hi = range(lo, hi, m - sd) end
    end
  end
  if hi <= lo then hi = lo + 1 end
  if opts.ymax then hi = math.max(hi, opts.ymax) end
  local yt, ystep = V.ticks(lo, hi, 5)
  local xt = { 0.5, #groups + 0.5, labels = groups }
  local X, Y = axes(out, title, opts.xlabel or "", ylabel, xt, 1, yt, ystep)
  local ns = math.max(1, #series)
  local gw = X(2) - X(1)
  local bw = gw * 0.8 / ns
  local names = {}
  for i, s in ipairs(series) do
    names[i] = s.loss
    local parts = {}
    for g = 1, #groups do
      local m = s.mean[g]
      if m and m == m then
        local sd = s.std[g] or 0
        local x = X(g) - gw * 0.4 + (i - 1) * bw
        local ya, yb = Y(math.max(m, 0)), Y(math.min(m, 0))
        parts[#parts + 1] = string.format('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>', f2(x), f2(ya),
          f2(bw * 0.9), f2(yb - ya), V.colour(i))
        if sd > 0 then
          local cx = x + bw * 0.45
          parts[#parts + 1] = string.format('<path class="err" d="M%s %sV%sM%s %sH%sM%s %sH%s"/>', f2(cx),
            f2(Y(m - sd)), f2(Y(m + sd)), f2(cx - 3), f2(Y(m - sd)), f2(cx + 3), f2(cx - 3), f2(Y(m + sd)),
            f2(cx + 3))
        end
      end
    end
    out[#out + 1] = string.format('<g class="series" data-loss="%s">%s</g>', esc(s.loss), table.concat(parts))
  end
  legend(out, names)
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

return V
