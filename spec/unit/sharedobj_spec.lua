-- Shared-object messages (types 19 and 16): bodies built by hand, fed
-- through a socket-free session at every split size, decoded into msg.so;
-- rebuilt with rtmp.shared_object byte for byte; every truncation and
-- wrong length gives a clear error, never a crash.
local T = require "support.msgs"
local rtmp = require "rtmp"
local pack = string.pack

local function event(etype, data) return pack(">B I4", etype, #data) .. data end

local header = T.key("chat") .. pack(">I4 I4 I4", 7, 0, 0)
local events = {
  event(1, ""),                                                   -- use
  event(4, T.key("color") .. T.str("red")),                        -- change
  event(4, T.key("a") .. T.num(1) .. T.key("b") .. T.bool(true)), -- change, two pairs
  event(6, T.str("say") .. T.str("hi") .. T.num(2)),               -- send_message
  event(7, T.key("SharedObject.NoWriteAccess") .. T.key("error")), -- status
  event(5, T.key("color")),                                        -- success
  event(9, T.key("x")),                                            -- remove
  event(10, T.key("y")),                                           -- request_remove
  event(3, T.key("k") .. T.null),                                  -- request_change
  event(8, ""),                                                    -- clear
  event(11, ""),                                                   -- use_success
  event(2, ""),                                                    -- release
  event(42, "\1\2"),                                               -- unknown
}
local body = header .. table.concat(events)

local expected_events = {
  { type = 1, type_name = "use" },
  { type = 4, type_name = "change", key = "color", value = "red" },
  { type = 4, type_name = "change", key = "a", value = 1.0,
    pairs = { { key = "a", value = 1.0 }, { key = "b", value = true } } },
  { type = 6, type_name = "send_message", name = "say", args = { "hi", 2.0, n = 2 } },
  { type = 7, type_name = "status", code = "SharedObject.NoWriteAccess", level = "error" },
  { type = 5, type_name = "success", key = "color" },
  { type = 9, type_name = "remove", key = "x" },
  { type = 10, type_name = "request_remove", key = "y" },
  { type = 3, type_name = "request_change", key = "k", value = rtmp.null },
  { type = 8, type_name = "clear" },
  { type = 11, type_name = "use_success" },
  { type = 2, type_name = "release" },
  { type = 42, data = "\1\2" },
}

-- msg.so as plain tables (events and their args lose nothing).
local function plain(so)
  local t = { name = so.name, version = so.version, flags = so.flags, persistent = so.persistent,
              reserved = so.reserved, events = {} }
  for i, e in ipairs(so.events) do
    local c = {}
    for k, v in pairs(e) do c[k] = v end
    t.events[i] = c
  end
  return t
end

local function so_message(mtype, payload, ts)
  return { csid = 3, type = mtype, stream = 0, timestamp = ts or 0, payload = payload }
end

describe("shared-object messages", function()
  it("decode at every split size into name, version, flags and each event's fields", function()
    local bytes = T.chunked{ so_message(19, body, 5), so_message(16, "\0" .. body, 6) }
    local want = { name = "chat", version = 7, flags = 0, persistent = false, reserved = 0,
                   events = expected_events }
    T.every_split(bytes, function(msgs, size)
      assert.are.equal(2, #msgs, "split size " .. size)
      assert.are.equal("shared_object", msgs[1].type_name)
      assert.are.equal("shared_object3", msgs[2].type_name)
      for _, m in ipairs(msgs) do
        assert.is_nil(m.decode_error, "split size " .. size)
        assert.are.same(want, plain(m.so), "split size " .. size)
      end
    end)
  end)

  it("rebuild the same bytes from what was decoded (types 19 and 16)", function()
    local m = T.feed_split(T.chunked{ so_message(19, body) }, 4096)[1]
    assert.are.equal(T.hex(body), T.hex(rtmp.shared_object(m.so)))
    local so = m.so
    local t = { amf3 = true, name = so.name, version = so.version, flags = so.flags,
                reserved = so.reserved, events = so.events }
    assert.are.equal(T.hex("\0" .. body), T.hex(rtmp.shared_object(t)))
  end)

  it("builds from names and the persistent flag, as Red5 writes them", function()
    local b = rtmp.shared_object{ name = "room", version = 1, persistent = true, events = {
      { type = "use_success" },
      { type = "change", key = "n", value = 3 },
      { type = "status", code = "c", level = "warning" },
      { type = "send_message", name = "m", args = { "x" } },
    } }
    assert.are.equal(T.hex(T.key("room") .. pack(">I4 I4 I4", 1, 2, 0) .. event(11, "")
      .. event(4, T.key("n") .. T.num(3)) .. event(7, T.key("c") .. T.key("warning"))
      .. event(6, T.str("m") .. T.str("x"))), T.hex(b))
    local m = T.feed_split(T.chunked{ so_message(19, b) }, 4096)[1]
    assert.is_true(m.so.persistent)
    assert.are.equal(2, m.so.flags)
  end)

  it("reports every truncation of the body: header cuts on the message, event cuts likewise", function()
    -- event boundaries, as offsets into body
    local bounds, off = { [#header] = 0 }, #header
    for i, e in ipairs(events) do off = off + #e; bounds[off] = i end
    for cut = 0, #body - 1 do
      local m = T.feed_split(T.chunked{ so_message(19, body:sub(1, cut)) }, 4096)[1]
      if bounds[cut] then
        assert.is_nil(m.decode_error, "cut " .. cut)
        assert.are.equal(bounds[cut], #m.so.events, "cut " .. cut)
      else
        assert.are.equal("shared object message truncated", m.decode_error, "cut " .. cut)
        assert.is_nil(m.so)
      end
    end
  end)

  it("keeps a malformed event's raw data with its own decode_error and decodes the rest", function()
    local short_status = pack(">B I4", 7, 5) .. T.key("abc")    -- code only, no level
    local bad_amf = event(4, T.key("k") .. "\2\0\9ab")            -- string longer than the data
    local b = header .. short_status .. bad_amf .. event(5, T.key("z"))
    local m = T.feed_split(T.chunked{ so_message(19, b) }, 4096)[1]
    assert.is_nil(m.decode_error)
    local ev = m.so.events
    assert.are.equal(3, #ev)
    assert.are.equal("shared object message truncated", ev[1].decode_error)
    assert.are.equal(T.key("abc"), ev[1].data)
    assert.are.equal("AMF value truncated", ev[2].decode_error)
    assert.are.equal("z", ev[3].key)
  end)

  it("refuses an event length past the end, and an AMF3 encoding byte other than 0", function()
    local m = T.feed_split(T.chunked{ so_message(19, header .. pack(">B I4", 4, 1000) .. "xx") }, 4096)[1]
    assert.are.equal("shared object message truncated", m.decode_error)
    m = T.feed_split(T.chunked{ so_message(16, "\3" .. body) }, 4096)[1]
    assert.are.equal("unsupported shared object encoding byte", m.decode_error)
    m = T.feed_split(T.chunked{ so_message(16, "") }, 4096)[1]
    assert.are.equal("shared object message truncated", m.decode_error)
  end)

  it("is sent as given: conn:send with type shared_object puts the body on the wire", function()
    local s = T.session()
    assert(s:send({ type = "shared_object" }, body))
    assert(s:send({ type = "shared_object3", csid = 4 }, "\0" .. body))
    local out = s:output()
    local msgs = assert(rtmp.reader{}:feed(out))
    assert.are.equal(2, #msgs)
    assert.are.equal(19, msgs[1].type)
    assert.are.equal(body, msgs[1].payload)
    assert.are.equal(16, msgs[2].type)
    assert.are.equal(4, msgs[2].csid)
    assert.are.equal("\0" .. body, msgs[2].payload)
  end)

  it("raises on misuse when building", function()
    assert.has_error(function() rtmp.shared_object{ name = "x", events = { { type = "nope" } } } end)
    assert.has_error(function() rtmp.shared_object{ name = ("n"):rep(70000) } end)
    assert.has_error(function() rtmp.shared_object{ name = "x", events = { { type = "status" } } } end)
    assert.has_error(function() rtmp.shared_object{ name = "x", events = { { type = "change", key = "k", value = print } } } end)
  end)
end)

describe("shared-object decoding of mutated bodies", function()
  it("gives msg.so or a decode_error for 3000 mutations, never a crash", function()
    math.randomseed(19)
    local msgs = {}
    for i = 1, 3000 do
      local b = { body:byte(1, -1) }
      for _ = 1, math.random(1, 4) do b[math.random(#b)] = math.random(0, 255) end
      msgs[#msgs + 1] = so_message(i % 2 == 0 and 19 or 16, (i % 2 == 0 and "" or "\0") .. string.char(table.unpack(b)))
    end
    local s = T.session()
    local w = rtmp.writer()
    local n = 0
    for _, m in ipairs(msgs) do
      for _, got in ipairs(assert(s:feed(w:write(m)))) do
        n = n + 1
        assert.is_true((got.so ~= nil) ~= (got.decode_error ~= nil))
        if got.so then rtmp.shared_object(got.so) end -- what decodes, rebuilds
      end
    end
    assert.are.equal(#msgs, n)
  end)
end)
