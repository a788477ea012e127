-- rtmp.literal: AMF values and control message bodies as Lua literals, for
-- the scripts the capture tools write (scripts/tools/capture2lua.lua, the
-- profile generator lua/rtmp/profile.lua).
--
--   local literal = require "rtmp.literal"
--   literal.lit(value)        -> text | nil, why      one AMF value
--   literal.values(msg)       -> { text, ... } | nil, why
--                                a command/data message's values, checked:
--                                loaded, encoded and decoded again they give
--                                the recorded values, key order included
--   literal.standard_body(msg) -> bytes | nil        the body the message's
--                                fields would give: when it differs from the
--                                recorded body, the message is written as bytes
--
-- Literal syntax is the trace's (docs/TRACE.md, "Bodies") without its limits:
-- `null`, `undefined`, objects as obj{ {"k", v}, ... } and ECMA arrays as
-- ecma{ {"k", v}, ... } in wire order (rtmp.amf0.object / rtmp.amf0.ecma,
-- flow.obj / flow.ecma), `array{}` for an empty strict array, and
-- flow.date / flow.typed / flow.amf3 / flow.unsupported.

local rtmp = require "rtmp"

local fmt = string.format
local concat = table.concat
local pack = string.pack

local M = {}

-- Lua literals for AMF values (the rules of docs/TRACE.md, without limits)

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function quote(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    return fmt("\\x%02X", c:byte())
  end) .. '"'
end
M.quote = quote

local function number(v, amf3)
  if math.type(v) == "integer" then return fmt("%d", v) end
  if v ~= v then return "0/0" end
  if v == math.huge then return "1/0" end
  if v == -math.huge then return "-1/0" end
  if v == math.floor(v) and math.abs(v) < 2^53 then
    if v == 0 and 1 / v < 0 then return "-0.0" end
    -- an AMF3 double must stay a float; an AMF0 number is one anyway
    return fmt(amf3 and "%d.0" or "%d", math.tointeger(v))
  end
  for p = 14, 17 do
    local s = fmt("%." .. p .. "g", v)
    if tonumber(s) == v then return s end
  end
  return fmt("%.17g", v)
end

M.number = number

local function key_lit(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  if type(k) == "string" then return "[" .. quote(k) .. "]" end
  return nil
end

-- The keys of an object in wire order (__keys), then the others sorted
-- (a decoded object whose keys came sorted has no __keys).
local function object_keys(t)
  local mt = getmetatable(t) or {}
  local out, seen = {}, {}
  for _, k in ipairs(mt.__keys or {}) do
    if rawget(t, k) ~= nil and not seen[k] then out[#out + 1] = k; seen[k] = true end
  end
  local rest = {}
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(rest) do out[#out + 1] = k end
  return out
end
M.object_keys = object_keys

-- lit(v) -> text, or nil and why when the value has no literal here.
local lit
lit = function(v, depth, amf3)
  depth = depth or 0
  if depth > 32 then return nil, "nested too deep" end
  local tv = type(v)
  if v == nil then return "nil" end
  if v == rtmp.null then return "null" end
  if v == rtmp.undefined then return "undefined" end
  if v == rtmp.amf0.unsupported then return "flow.unsupported" end
  if tv == "boolean" then return tostring(v) end
  if tv == "number" then return number(v, amf3) end
  if tv == "string" then return quote(v) end
  if tv ~= "table" then return nil, "a " .. tv end
  local mt = getmetatable(v) or {}
  local kind = mt.__amf or rtmp.amf0.type(v)
  local sw = mt.__amf3 or {}
  local function item(x, k)
    local s, why = lit(x, depth + 1, amf3 or sw[k])
    if s and sw[k] and not amf3 then s = "flow.amf3(" .. s .. ")" end
    return s, why
  end
  if kind == "array" then
    local n = v.n or mt.__n or #v
    for k in pairs(v) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) and k ~= "n" then
        return nil, "an array with named keys"
      end
    end
    if n == 0 then return "array{}" end
    local parts = {}
    for k = 1, n do
      local s, why = item(v[k], k)
      if not s then return nil, why end
      parts[k] = s
    end
    return "{" .. concat(parts, ", ") .. "}"
  elseif kind == "object" or kind == "ecma" then
    if mt.__count ~= nil or mt.__noend then return nil, "an ECMA array with an odd count or end" end
    local parts = {}
    for _, k in ipairs(object_keys(v)) do
      if type(k) ~= "string" then return nil, "a non-string key" end
      local s, why = item(v[k], k)
      if not s then return nil, why end
      parts[#parts + 1] = "{" .. quote(k) .. ", " .. s .. "}"
    end
    return (kind == "ecma" and "ecma" or "obj") .. "{" .. concat(parts, ", ") .. "}"
  elseif kind == "typed" then
    if mt.__sealed or mt.__dynamic == false or amf3 then
      return nil, "an AMF3 object with traits"
    end
    -- flow.typed takes a plain table (keys sorted): the check below keeps
    -- the message as bytes when the recorded order differs
    local parts = {}
    for _, k in ipairs(object_keys(v)) do
      local kl = key_lit(k)
      if not kl then return nil, "a non-string key" end
      local s, why = item(v[k], k)
      if not s then return nil, why end
      parts[#parts + 1] = kl .. "=" .. s
    end
    return fmt("flow.typed(%s, {%s})", quote(mt.__class or ""), concat(parts, ", "))
  elseif kind == "date" then
    return fmt("flow.date(%s, %s)", number(v.time or 0), number(v.tz or 0))
  end
  return nil, "an AMF value of kind " .. tostring(kind)
end
M.lit = lit

-- Deep equality of decoded AMF values: by value, kind and key order.
local function same(a, b, depth)
  if depth > 40 then return false end
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return a == b or (a ~= a and b ~= b) end
  if type(a) ~= "table" then return a == b end
  if rtmp.amf0.type(a) ~= rtmp.amf0.type(b) then return false end
  local ka, kb = object_keys(a), object_keys(b)
  if #ka ~= #kb then return false end
  for i, k in ipairs(ka) do
    if kb[i] ~= k then return false end
    if not same(a[k], b[k], depth + 1) then return false end
  end
  return true
end
M.same = same

-- What the literals of a script are loaded with here (the runtime's
-- flow.obj/flow.ecma are rtmp.amf0.object/ecma, docs/FLOW.md).
local function lit_env()
  local function array(t) t.n = t.n or #t; return setmetatable(t, { __amf = "array" }) end
  local function typed(class, t) return setmetatable(t, { __amf = "typed", __class = class }) end
  local flowlike = { amf3 = rtmp.amf3.value, date = rtmp.amf0.date, typed = typed,
                     unsupported = rtmp.amf0.unsupported }
  return { null = rtmp.null, undefined = rtmp.undefined, obj = rtmp.amf0.object,
           ecma = rtmp.amf0.ecma, array = array, flow = flowlike }
end

-- The values of a command/data message as Lua literals, checked: the
-- literals, loaded and encoded again, decode to the same values (key
-- order included).
local function values_lit(msg)
  local vals = msg.values
  if msg.decode_error or not vals then return nil, msg.decode_error or "no values" end
  local n = vals.n or #vals
  local top = (getmetatable(vals) or {}).__amf3 or {}
  local parts = {}
  for i = 1, n do
    local s, why = lit(vals[i], 0, false)
    if not s then return nil, why end
    if top[i] then s = "flow.amf3(" .. s .. ")" end
    parts[i] = s
  end
  local chunk = load("return {" .. concat(parts, ", ") .. "}", "values", "t", lit_env())
  local ok, back = pcall(chunk)
  if not ok then return nil, "does not load: " .. tostring(back) end
  local okenc, bytes = pcall(rtmp.amf0.encode, table.unpack(back, 1, n))
  if not okenc then return nil, "does not encode: " .. tostring(bytes) end
  local a = rtmp.amf0.decode(bytes)
  local body = msg.payload
  if msg.type == 17 or msg.type == 15 then body = body:sub(2) end
  local b = rtmp.amf0.decode(body)
  if not a or not b or (a.n or #a) ~= (b.n or #b) then return nil, "values do not survive a round trip" end
  for i = 1, (a.n or #a) do
    if not same(a[i], b[i], 0) then return nil, "values do not survive a round trip" end
  end
  return parts
end
M.values = values_lit

-- The standard body of a control message, to tell whether the recorded
-- one can be written with fields (else it goes out as its bytes).
local UC_FIELDS = { stream_begin = 1, stream_eof = 1, stream_dry = 1, set_buffer_length = 2,
  stream_is_recorded = 1, ping_request = 1, ping_response = 1, buffer_empty = 1, buffer_ready = 1 }
local function standard_body(msg)
  local tn = msg.type_name
  if tn == "set_chunk_size" then return msg.chunk_size and pack(">I4", msg.chunk_size)
  elseif tn == "window_ack_size" then return msg.window and pack(">I4", msg.window)
  elseif tn == "ack" then return msg.sequence and pack(">I4", msg.sequence)
  elseif tn == "abort" then return msg.abort_csid and pack(">I4", msg.abort_csid)
  elseif tn == "set_peer_bandwidth" then
    return msg.window and (pack(">I4", msg.window) .. (msg.limit and pack("B", msg.limit) or ""))
  elseif tn == "user_control" then
    local nf = UC_FIELDS[msg.event_name or ""]
    local v = msg.stream_id or msg.ping_time
    if not nf or v == nil then return nil end
    if nf == 2 then
      return msg.buffer_length and pack(">I2 I4 I4", msg.event, v, msg.buffer_length)
    end
    return pack(">I2 I4", msg.event, v)
  end
end
M.standard_body = standard_body

return M
