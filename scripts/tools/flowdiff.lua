-- tools/flowdiff.lua: one client flow against several servers, and how
-- their answers differ, message by message.
--
--   luartmp scripts/tools/capture2lua.lua play.pcapng --side client -o play_flow.lua
--   luartmp scripts/tools/flowdiff.lua play_flow.lua \
--       luartmp=rtmp://127.0.0.1:1935/live nginx=rtmp://127.0.0.1:1936/live \
--       ffmpeg=rtmp://127.0.0.1:1937/live
--
-- Each server in turn: the flow (a client script written by
-- capture2lua.lua, or any client script that takes the URL as its first
-- argument) runs in its own luartmp process with --trace; what the server
-- sent (the trace's "in" lines, until the flow ends: --linger and
-- --duration are passed on) becomes one line per message: type, chunk
-- stream, message stream and decoded body.  Runs of media are folded into
-- one line (counts per type) unless --media.  Every server after the first
-- is compared with the first (a longest-common-subsequence diff, printed
-- with "-" for the first server's lines and "+" for the other's).
--
-- The flow may also be a capture (pcap/pcapng, or --raw CLIENT_FILE
-- SERVER_FILE for the two raw files of Wireshark's "Follow TCP Stream"):
-- then capture2lua.lua writes the client flow of its RTMP connection
-- (--connection N) into a temporary file, and the recorded server's
-- answers come first, as the server named "recorded": every live server
-- is compared with the recording.
--
-- Media messages with the same timestamp are compared as a set: a server
-- may send the audio and video of one instant in either order.
--
-- Exit status as diff(1): 0 when every server answered the same, 1 when
-- some differ, 2 for a usage error or a run that produced no trace.
--
-- Used as a module (require "tools.flowdiff") it returns
-- { lines_of = function(trace_text, { media, timing }) -> lines, diff }.
local fmt = string.format

local M = {}

-- The command line (rtmp.argv); the --raw option is the capture's.
local function command(capture)
  return require("rtmp.argv").new{
    usage = [[
usage: luartmp scripts/tools/flowdiff.lua FLOW.lua [NAME=]URL [NAME=]URL... [options]
       luartmp scripts/tools/flowdiff.lua CAPTURE [NAME=]URL... [--connection N] [options]
       luartmp scripts/tools/flowdiff.lua --raw CLIENT_FILE SERVER_FILE [NAME=]URL... [options]

Run a client flow against each server and print how their answers differ.
From a capture, the flow is its client side and the recording is the
first server ("recorded").
]],
    options = {
      capture.RAW_OPTION,
      { "connection", "integer", arg = "N", help = "the capture's connection (default: the first RTMP one)" },
      { "media", help = "one line per audio/video message instead of folded runs" },
      { "timing", help = "also compare message timestamps and chunk header formats" },
      { "linger", "number", arg = "S", help = "passed to the flow (strict flows only): close once the server is\n" ..
                                               "quiet S seconds (their default: 2)" },
      { "duration", "number", arg = "S", help = "passed to the flow: close S seconds after connecting (default 5; a\n" ..
                                                 "server that streams media is never quiet)" },
      { "timeout", "number", arg = "S", help = "give each run at most S seconds (default 30)" },
      { "context", "integer", arg = "N", help = "unchanged lines shown around each difference (default 3)" },
      { "keep", "string", arg = "DIR", help = "keep each server's trace in DIR/NAME.trace" },
    },
  }
end

-- One message line of a trace, reduced to what the comparison looks at.
local function parse(line)
  local ts, csid, f, typ, stream, tsv, len, body = line:match(
    "^(%S+) conn=%d+ in csid=(%S+) fmt=(%S+) type=(%S+) stream=(%S+) ts=(%S+) len=(%d+) body=(.*)$")
  if not ts then return nil end
  return { csid = csid, fmt = f, type = typ, stream = stream, ts = tsv, len = tonumber(len), body = body }
end

local MEDIA = { audio = true, video = true, aggregate = true }

-- The server's answers as comparable lines.  Media messages with the
-- same timestamp are a set, not a sequence: a server may send the audio
-- and the video of one instant in either order.
local function lines_of(trace, o)
  o = o or {}
  local out, run, same = {}, nil, nil
  -- a run of media: its types ordered by the timestamp each first
  -- appears at, then by name (how many arrive depends on timing, so
  -- counts are left out)
  local function close_run()
    if run then
      table.sort(run, function(a, b)
        if run.first[a] ~= run.first[b] then return run.first[a] < run.first[b] end
        return a < b
      end)
      out[#out + 1] = "media " .. table.concat(run, " ")
      run = nil
    end
  end
  -- with --media: consecutive media lines of one timestamp, sorted
  local function close_same()
    if same then
      table.sort(same)
      for _, l in ipairs(same) do out[#out + 1] = l end
      same = nil
    end
  end
  for line in trace:gmatch("[^\n]+") do
    local m = parse(line)
    if m then
      local timing = o.timing and fmt(" fmt=%s ts=%s", m.fmt, m.ts) or ""
      local ts = tonumber(m.ts) or 0
      if MEDIA[m.type] and not o.media then
        run = run or { first = {} }
        if not run.first[m.type] then
          run.first[m.type] = ts
          run[#run + 1] = m.type
        end
      else
        close_run()
        if MEDIA[m.type] then
          if same and same.ts ~= ts then close_same() end
          same = same or { ts = ts }
          same[#same + 1] = fmt("%s csid=%s stream=%s%s len=%d %s", m.type, m.csid, m.stream, timing, m.len, m.body)
        else
          close_same()
          out[#out + 1] = fmt("%s csid=%s stream=%s%s %s", m.type, m.csid, m.stream, timing, m.body)
        end
      end
    end
  end
  close_run()
  close_same()
  return out
end
M.lines_of = lines_of

local function shquote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The luartmp executable running this script (lowest arg index).
local function executable()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i] or "luartmp"
end

-- Run the flow against one target; returns its lines or nil, why.
local function run(t, o, flow)
  local trace = o.keep and (o.keep .. "/" .. t.name .. ".trace") or os.tmpname()
  os.remove(trace)
  if o.keep then os.execute("mkdir -p " .. shquote(o.keep)) end
  -- --linger only when asked for: strict (expect) flows linger 2 s by
  -- default, handler flows have per-step timeouts instead and no --linger
  local cmd = fmt("timeout %d %s --log-level error --trace=%s %s %s%s --duration %s >/dev/null 2>%s.err",
    math.floor(o.timeout or 30), shquote(executable()), shquote(trace), shquote(flow), shquote(t.url),
    o.linger and (" --linger " .. tostring(o.linger)) or "", tostring(o.duration or 5), shquote(trace))
  local ok, _, code = os.execute(cmd)
  local fh = io.open(trace, "rb")
  local text = fh and fh:read("a") or ""
  if fh then fh:close() end
  local ef = io.open(trace .. ".err", "rb")
  local err = ef and ef:read("a") or ""
  if ef then ef:close() end
  os.remove(trace .. ".err")
  if not o.keep then os.remove(trace) end
  t.status = ok and 0 or code
  if text == "" then
    return nil, fmt("no trace (exit status %s)%s", tostring(code), err ~= "" and (": " .. err:gsub("%s+$", "")) or "")
  end
  return lines_of(text, o)
end

-- Longest common subsequence diff of a and b: a list of { op, line },
-- op " " (both), "-" (a only), "+" (b only).
local function diff(a, b)
  local n, m = #a, #b
  local L = {}
  for i = n + 1, 1, -1 do
    L[i] = {}
    for j = m + 1, 1, -1 do
      if i > n or j > m then L[i][j] = 0
      elseif a[i] == b[j] then L[i][j] = L[i + 1][j + 1] + 1
      else L[i][j] = math.max(L[i + 1][j], L[i][j + 1]) end
    end
  end
  local out, i, j = {}, 1, 1
  while i <= n or j <= m do
    if i <= n and j <= m and a[i] == b[j] then
      out[#out + 1] = { " ", a[i] }
      i, j = i + 1, j + 1
    elseif i <= n and (j > m or L[i + 1][j] >= L[i][j + 1]) then
      out[#out + 1] = { "-", a[i] }
      i = i + 1
    else
      out[#out + 1] = { "+", b[j] }
      j = j + 1
    end
  end
  return out
end

M.diff = diff

-- The recording's server messages, as trace lines a flow run would give.
local function recorded_trace(conn)
  local rtmp = require "rtmp"
  local capture = require "rtmp.capture"
  local list = capture.messages(conn)
  local out = {}
  for _, e in ipairs(list) do
    if e.dir == "s2c" then
      if e.msg.type == 22 and e.msg:split() then
        for _, m in ipairs(e.msg:split()) do out[#out + 1] = rtmp.trace_line(m, { dir = "in", conn = 1, time = e.t }) end
      else
        out[#out + 1] = rtmp.trace_line(e.msg, { dir = "in", conn = 1, time = e.t })
      end
    end
  end
  return table.concat(out, "\n"), list.error
end

local function main(argv)
  local capture = require "rtmp.capture"
  local cmd = command(capture)
  local o, pos = cmd:run(argv)
  local raw = o.raw
  local from_capture = raw or (pos[1] and not pos[1]:match("%.lua$"))
  if #pos < (from_capture and (raw and 1 or 2) or 3) then
    cmd:fail(from_capture and "a capture and at least one server expected"
      or "a flow script and at least two servers expected")
  end
  local context = o.context or 3
  local flow, recorded, tmpflow
  if from_capture then
    local path = not raw and table.remove(pos, 1) or nil
    local cap, err = capture.open_input{ path = path, raw = raw }
    if not cap then
      io.stderr:write("flowdiff.lua: ", err, "\n")
      os.exit(2)
    end
    local conn = o.connection and cap.conns[o.connection] or capture.rtmp_conns(cap)[1]
    if conn and conn.tls then
      io.stderr:write(fmt("flowdiff.lua: connection %d: %s\n", conn.id, capture.tls_reason(conn)))
      os.exit(2)
    end
    if not conn or not conn.rtmp then
      io.stderr:write("flowdiff.lua: no RTMP connection", o.connection and (" " .. o.connection) or "", " in ",
        cap.path, "\n")
      os.exit(2)
    end
    local text, derr = recorded_trace(conn)
    if derr then
      io.stderr:write(fmt("flowdiff.lua: connection %d: %s\n", conn.id, derr))
      os.exit(2)
    end
    recorded = { name = "recorded", url = cap.path, lines = lines_of(text, o) }
    local base = os.tmpname()
    os.remove(base)
    tmpflow = base .. ".lua"
    local tool = ((arg and arg[0] or ""):match("^(.*)/") or "scripts/tools") .. "/capture2lua.lua"
    local input = raw and fmt("--raw %s %s", shquote(raw[1]), shquote(raw[2])) or shquote(path)
    local cmd = fmt("%s %s %s --connection %d --side client -o %s >/dev/null 2>%s.err",
      shquote(executable()), shquote(tool), input, conn.id, shquote(tmpflow), shquote(tmpflow))
    local ok = os.execute(cmd)
    local ef = io.open(tmpflow .. ".err", "rb")
    local etext = ef and ef:read("a") or ""
    if ef then ef:close() end
    os.remove(tmpflow .. ".err")
    if not ok then
      os.remove(tmpflow)
      io.stderr:write("flowdiff.lua: capture2lua.lua could not write the client flow: ", etext, "\n")
      os.exit(2)
    end
    flow = tmpflow
  else
    flow = table.remove(pos, 1)
  end

  local targets = { recorded }
  for _, p in ipairs(pos) do
    local name, url = p:match("^([%w_.%-]+)=(rtmps?://.*)$")
    if not name then name, url = p:match("^rtmps?://([^/]+)"), p end
    if not name then cmd:fail("not an RTMP URL: " .. p) end
    targets[#targets + 1] = { name = name, url = url }
  end

  local status = 0
  for _, t in ipairs(targets) do
    if t.lines then print(fmt("== %s %s: %d lines", t.name, t.url, #t.lines)) goto next end
    local lines, why = run(t, o, flow)
    if not lines then
      io.stderr:write(fmt("flowdiff.lua: %s (%s): %s\n", t.name, t.url, why))
      if tmpflow then os.remove(tmpflow) end
      os.exit(2)
    end
    t.lines = lines
    print(fmt("== %s %s: %d lines", t.name, t.url, #lines))
    ::next::
  end

  local ref = targets[1]
  for k = 2, #targets do
    local t = targets[k]
    local d = diff(ref.lines, t.lines)
    local changed = 0
    for _, e in ipairs(d) do if e[1] ~= " " then changed = changed + 1 end end
    print("")
    if changed == 0 then
      print(fmt("%s answered as %s", t.name, ref.name))
    else
      status = 1
      print(fmt("--- %s", ref.name))
      print(fmt("+++ %s", t.name))
      -- print the differences with `context` unchanged lines around them
      local show = {}
      for i, e in ipairs(d) do
        if e[1] ~= " " then
          for j = math.max(1, i - context), math.min(#d, i + context) do show[j] = true end
        end
      end
      local gap = false
      for i, e in ipairs(d) do
        if show[i] then
          if gap then print("  ...") end
          gap = false
          print(e[1] .. " " .. e[2])
        else
          gap = true
        end
      end
      print(fmt("%s: %d lines differ from %s", t.name, changed, ref.name))
    end
  end

  if tmpflow then os.remove(tmpflow) end
  os.exit(status)
end

if ... == "tools.flowdiff" then return M end
main(arg or { ... })
