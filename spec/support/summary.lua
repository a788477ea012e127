-- busted output handler for luartmp (tools/test.sh runs `busted -o
-- spec/support/summary.lua`).
--
-- Prints one line per test as it ends ("ok", "FAIL", "ERROR", "skip", with
-- the test's full name and duration; failures with their message right
-- away), then a recap of every failure and error with its location, and
-- ENDS with exactly one line:
--
--   N passed, N failed[, N skipped]
--
-- Errors (a test that raised, a setup/teardown that failed, a spec file that
-- does not load) count as failed. A run in which no test ran is an error of
-- its own: it is reported loudly and counted as one failure, so that a
-- wrong path or a broken pattern can never look like a green run. (With
-- LUARTMP_TEST_PER_FILE set, as tools/test.sh runs busted once per file,
-- that check is test.sh's, over the whole run.)

local io_write, io_flush = io.write, io.flush
local string_format = string.format

return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.base'()

  -- Render a failure message (a string, or any value raised).
  local function message_text(msg)
    if msg == nil then return 'nil error' end
    if type(msg) == 'string' then return msg end
    local ok, pretty = pcall(require, 'pl.pretty')
    if ok then return pretty.write(msg) end
    return tostring(msg)
  end

  -- "file.lua:123" for an element's trace, or nil.
  local function where(trace)
    if trace and trace.short_src then
      return string_format('%s:%s', trace.short_src, tostring(trace.currentline))
    end
  end

  local function indent(text)
    return '    ' .. text:gsub('\n', '\n    ')
  end

  local function duration(element)
    if element.duration then return string_format(' (%.2fs)', element.duration) end
    return ''
  end

  -- Every test, as it ends.
  handler.testEnd = function(element, parent, status, debug)
    local name = handler.getFullName(element)
    if status == 'success' then
      io_write('ok    ', name, duration(element), '\n')
    elseif status == 'pending' then
      local p = handler.pendings[#handler.pendings]
      local msg = p and p.name == name and p.message or nil
      io_write('skip  ', name, msg and (': ' .. message_text(msg)) or '', '\n')
    else
      local list = status == 'failure' and handler.failures or handler.errors
      local last = list[#list]
      io_write(status == 'failure' and 'FAIL  ' or 'ERROR ', name, duration(element), '\n')
      if last and last.name == name then
        io_write(indent(message_text(last.message)), '\n')
      end
    end
    io_flush()
    return nil, true
  end

  -- Errors outside a test: a spec file that does not load, a failing
  -- setup/teardown/before_each/after_each.
  handler.outsideError = function(element, parent, message, debug)
    if element.descriptor == 'it' then return nil, true end
    io_write('ERROR ', element.descriptor or '?', ' ', handler.getFullName(element), '\n')
    io_write(indent(message_text(message)), '\n')
    io_flush()
    return nil, true
  end

  handler.suiteEnd = function(suite, count, total)
    local passed = handler.successesCount
    local failed = handler.failuresCount + handler.errorsCount
    local skipped = handler.pendingsCount
    local recap = {}
    for _, f in ipairs(handler.failures) do recap[#recap + 1] = { 'failure', f } end
    for _, e in ipairs(handler.errors) do recap[#recap + 1] = { 'error', e } end
    if #recap > 0 then
      io_write('\n', string_format('%d failure(s) and error(s):\n', #recap))
      for i, r in ipairs(recap) do
        local kind, f = r[1], r[2]
        local loc = where(f.element.trace)
        io_write(string_format('\n%d) %s: %s%s\n', i, kind, f.name, loc and (' [' .. loc .. ']') or ''))
        io_write(indent(message_text(f.message)), '\n')
        if options.verbose and f.trace and f.trace.traceback then
          io_write(indent(f.trace.traceback), '\n')
        end
      end
    end
    io_write(string_format('\ntime: %.1fs\n', handler.getDuration()))
    -- tools/test.sh runs busted once per file and checks the whole run:
    -- there a file none of whose tests match a --filter is no error.
    if passed + failed + skipped == 0 and not os.getenv('LUARTMP_TEST_PER_FILE') then
      io_write('ERROR: no tests ran: check the spec paths and the pattern (files must end in _spec.lua)\n')
      failed = 1
    end
    local line = string_format('%d passed, %d failed', passed, failed)
    if skipped > 0 then line = line .. string_format(', %d skipped', skipped) end
    io_write(line, '\n')
    io_flush()
    return nil, true
  end

  busted.subscribe({ 'test', 'end' }, handler.testEnd, { predicate = handler.cancelOnPending })
  busted.subscribe({ 'suite', 'end' }, handler.suiteEnd)
  busted.subscribe({ 'error' }, handler.outsideError)
  busted.subscribe({ 'failure' }, handler.outsideError)

  return handler
end
