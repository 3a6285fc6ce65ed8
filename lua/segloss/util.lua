--- What the Lua modules of segloss share (internal).
-- @module segloss.util
local T = require("segloss.core").tensor

local U = {}

--- A value as error messages show it: numbers and booleans as Lua prints
-- them (NaN as "nan"), strings quoted and cut at 40 bytes, tensors by their
-- shape, other values by the type their metatable names — never a whole
-- tensor or a long string.
function U.describe(v)
  if v ~= v then return "nan" end
  if type(v) == "number" or type(v) == "boolean" or v == nil then return tostring(v) end
  if type(v) == "string" then return string.format("string %q", #v > 40 and v:sub(1, 40) .. "..." or v) end
  if T.istensor(v) then return "a segloss.Tensor {" .. table.concat(v:shape(), ",") .. "}" end
  local mt = getmetatable(v)
  return "a " .. (type(mt) == "table" and type(mt.__name) == "string" and mt.__name or type(v))
end

return U
