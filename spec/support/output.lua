-- A busted output handler whose last line is always the summary.
--
-- busted's terminal handlers print the summary before the failure details,
-- so a failing run ends with a stack trace; CI logs and `make test` want the
-- counts last. Progress is one character per test, as usual.

return function()
  local busted = require "busted"
  local handler = require "busted.outputHandlers.base"()

  local marks = { success = "+", failure = "-", error = "*", pending = "." }

  local function plural(n, one, many)
    return n .. " " .. (n == 1 and one or many)
  end

  local function describe(item, kind)
    local where = ""
    local trace = item.trace or (item.element and item.element.trace)
    if trace and trace.short_src then
      where = trace.short_src .. ":" .. tostring(trace.currentline) .. ": "
    end
    local msg = item.message
    if type(msg) ~= "string" then msg = tostring(msg) end
    return kind .. " → " .. where .. item.name .. "\n" .. (msg or "")
  end

  handler.testEnd = function(_, _, status)
    io.write(marks[status] or "?")
    io.flush()
    return nil, true
  end

  handler.fileError = function()
    io.write("*")
    io.flush()
    return nil, true
  end

  handler.suiteEnd = function()
    io.write("\n")
    for _, p in ipairs(handler.pendings) do
      io.write("\nPending → " .. p.name .. (p.message and (": " .. tostring(p.message)) or "") .. "\n")
    end
    for _, f in ipairs(handler.failures) do
      io.write("\n" .. describe(f, "Failure") .. "\n")
    end
    for _, e in ipairs(handler.errors) do
      io.write("\n" .. describe(e, "Error") .. "\n")
    end
    io.write(string.format("\n%s / %s / %s / %s : %.2f seconds\n",
      plural(handler.successesCount, "success", "successes"),
      plural(handler.failuresCount, "failure", "failures"),
      plural(handler.errorsCount, "error", "errors"),
      plural(handler.pendingsCount, "pending", "pending"),
      handler.getDuration()))
    io.flush()
    return nil, true
  end

  busted.subscribe({ "test", "end" }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ "suite", "end" }, handler.suiteEnd)
  busted.subscribe({ "error", "file" }, handler.fileError)
  busted.subscribe({ "failure", "file" }, handler.fileError)
  busted.subscribe({ "error", "describe" }, handler.fileError)
  busted.subscribe({ "failure", "describe" }, handler.fileError)

  return handler
end
