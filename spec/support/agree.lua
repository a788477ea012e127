-- Our capture decoder (rtmp.capture) against tshark's RTMPT dissector.
--
--   local A = require "support.agree"
--   local diffs, ours, theirs = A.compare(path)   -- {} when they agree
--
-- For every RTMP connection in the capture, each direction's messages in
-- order: chunk stream id, message type, length, message stream id and,
-- for AMF0 commands and data, the first string (the command name).  The
-- dissector's limits, which the comparison respects:
-- - it prints a header field only when the message's first chunk header
--   carries it: no type or length for a fmt 2 or 3 first chunk, no message
--   stream id for fmt 1-3; those fields are compared where it shows them;
-- - its csid field shows the basic header's first 6 bits (0 or 1 for
--   ids of 64 and up); the whole id is read from the field's bytes;
-- - it reassembles messages up to rtmpt.max_packet_size (set here to the
--   protocol's 16 MiB limit);
-- - a connection from which the capture lost bytes (conn.gaps > 0: dumpcap
--   dropped packets) is compared on neither side: after a hole both
--   decoders can only guess;
-- - a connection that began before the capture (no SYN, no C0) is
--   compared on neither side: our decoder does not guess where chunks
--   start without the handshake and the Set Chunk Size before it;
-- - it decodes port 1935 only unless told (-d tcp.port==PORT,rtmpt, given
--   here for each connection's server port).
local H = require "support.helpers"
local capture = require "rtmp.capture"

local A = {}
local fmt, q = string.format, H.shquote

local function unxml(s)
  return (s:gsub("&#x(%x+);", function(h) return utf8.char(tonumber(h, 16)) end)
           :gsub("&#(%d+);", function(d) return utf8.char(tonumber(d)) end)
           :gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&apos;", "'")
           :gsub("&amp;", "&"))
end

-- Per "srcport>dstport", the messages tshark decoded, in order.  Read
-- from PDML, which keeps the order of fields: each "RTMP Header" starts a
-- message; the first amf.string after its "RTMP Body" is the name.
function A.tshark(path, ports)
  local d = {}
  for _, p in ipairs(ports) do d[#d + 1] = fmt("-d tcp.port==%d,rtmpt", p) end
  local cmd = fmt("tshark -r %s %s -o rtmpt.max_packet_size:16777215 -Y rtmpt -T pdml -J %s 2>/dev/null",
    q(path), table.concat(d, " "), q("tcp rtmpt"))
  local rc, out = H.run(cmd, 120)
  assert(rc == 0, "tshark failed: " .. out)
  local res = {}
  local sport, dport, cur, in_body
  local fields = {
    ["rtmpt.header.format"] = "fmt", ["rtmpt.header.csid"] = "csid", ["rtmpt.header.typeid"] = "type",
    ["rtmpt.header.bodysize"] = "length", ["rtmpt.header.streamid"] = "stream",
  }
  for line in out:gmatch("[^\n]+") do
    local name = line:match('<field name="([^"]*)"')
    if line:find("<packet>", 1, true) then
      sport, dport, cur, in_body = nil, nil, nil, false
    elseif name == "tcp.srcport" then
      sport = line:match('show="(%d+)"')
    elseif name == "tcp.dstport" then
      dport = line:match('show="(%d+)"')
    elseif name == "" and line:find('show="RTMP Header"', 1, true) then
      local key = sport .. ">" .. dport
      res[key] = res[key] or {}
      cur = {}
      res[key][#res[key] + 1] = cur
      in_body = false
    elseif name == "" and line:find('show="RTMP Body"', 1, true) then
      in_body = true
    elseif cur and name == "rtmpt.header.csid" and not in_body then
      -- the field shows the basic header's 6 bits (0 or 1 for the 2- and
      -- 3-byte forms); its bytes give the whole id
      local hex = line:match('unmaskedvalue="(%x+)"') or ""
      local b = {}
      for h in hex:gmatch("%x%x") do b[#b + 1] = tonumber(h, 16) end
      if #b == 2 then cur.csid = 64 + b[2]
      elseif #b == 3 then cur.csid = 64 + b[2] + 256 * b[3]
      else cur.csid = tonumber(line:match('show="([^"]*)"')) end
    elseif cur and fields[name] and not in_body then
      cur[fields[name]] = tonumber(line:match('show="([^"]*)"'))
    elseif cur and in_body and name == "amf.string" and not cur.name then
      cur.name = unxml(line:match('show="([^"]*)"') or "")
    end
  end
  return res
end

function A.ours(path)
  local cap = assert(capture.open(path))
  local res, ports = {}, {}
  -- connections that began before the capture: neither side is compared
  res.skip = {}
  for _, c in ipairs(cap.conns) do
    if c.midstream or c.handshake_missing or (c.rtmp and c.gaps > 0) then
      local cport, sport = c.client:match(":(%d+)$"), c.server:match(":(%d+)$")
      res.skip[cport .. ">" .. sport], res.skip[sport .. ">" .. cport] = true, true
    end
  end
  for _, c in ipairs(capture.rtmp_conns(cap)) do
    if c.gaps > 0 or c.midstream or c.handshake_missing then goto next end
    local cport = tonumber(c.client:match(":(%d+)$"))
    local sport = tonumber(c.server:match(":(%d+)$"))
    ports[#ports + 1] = sport
    local list_ = capture.messages(c)
    for _, e in ipairs(list_) do
      local key = e.dir == "c2s" and fmt("%d>%d", cport, sport) or fmt("%d>%d", sport, cport)
      res[key] = res[key] or {}
      local m = e.msg
      res[key][#res[key] + 1] = { fmt = m.fmt, csid = m.csid, type = m.type, length = m.length,
                                  stream = m.stream, name = (m.type == 20 or m.type == 18) and m.values
                                    and type(m.values[1]) == "string" and m.values[1] or nil }
    end
    res[#res + 1] = { conn = c.id, error = list_.error }
    ::next::
  end
  return res, ports
end

local function describe(m)
  return fmt("csid=%s type=%s len=%s stream=%s%s", m.csid, m.type, m.length, m.stream,
    m.name and (" name=" .. m.name) or "")
end

-- Differences between our list and tshark's, as readable lines.
function A.compare(path)
  local ours, ports = A.ours(path)
  local theirs = A.tshark(path, ports)
  local diffs = {}
  local function add(...) diffs[#diffs + 1] = fmt(...) end
  for _, info in ipairs(ours) do
    if info.error then add("conn %d: our decoder stopped: %s", info.conn, info.error) end
  end
  local keys = {}
  for k in pairs(ours) do if type(k) == "string" and k ~= "skip" then keys[k] = true end end
  for k in pairs(theirs) do if not ours.skip[k] then keys[k] = true end end
  for k in pairs(keys) do
    local a, b = ours[k] or {}, theirs[k] or {}
    if #a ~= #b then add("%s: %d messages here, %d in tshark", k, #a, #b) end
    for i = 1, math.min(#a, #b) do
      local x, y = a[i], b[i]
      local bad = x.csid ~= y.csid or (y.type and x.type ~= y.type) or
        (y.length and x.length ~= y.length) or (y.stream and x.stream ~= y.stream)
      if x.name and y.name then bad = bad or x.name ~= y.name end
      if bad then
        add("%s #%d: ours %s; tshark %s", k, i, describe(x), describe(y))
        if #diffs > 20 then return diffs, ours, theirs end
      end
    end
  end
  return diffs, ours, theirs
end

-- Assert that both decoders agree on a capture with at least `min`
-- messages (default 1); returns the number of messages compared.
function A.check(path, min)
  local diffs, ours, theirs = A.compare(path)
  assert(#diffs == 0, "decoder and tshark disagree on " .. path .. ":\n  " .. table.concat(diffs, "\n  "))
  local n, named = A.count(ours), 0
  for k, v in pairs(theirs) do
    for i, m in ipairs(v) do if m.name and ours[k] and ours[k][i] and ours[k][i].name then named = named + 1 end end
  end
  assert(n >= (min or 1), "only " .. n .. " messages in " .. path)
  return n, named
end

-- Count of messages compared (both directions, every connection).
function A.count(ours)
  local n = 0
  for k, v in pairs(ours) do if type(k) == "string" and k ~= "skip" then n = n + #v end end
  return n
end

return A
