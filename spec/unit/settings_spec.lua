-- The one settings table (lua/l_settings.c): rtmp.settings, the Lua
-- parser every rtmp.listen / rtmp.connect / rtmp.session / rtmp.reader uses,
-- rtmp.options under them; and how the module is put together (rtmp.core,
-- lua/rtmp.lua).
package.cpath = "build/?.so;" .. package.cpath
local rtmp = require "rtmp"

local H = require "support.helpers"
local convo = require "support.convo"

-- A server session after its handshake, made with rtmp.options as they are.
local function server()
  local _, s = convo.pair()
  return s
end

-- The header of a video message of `len` bytes on csid 6 (fmt 0), no payload.
local function header(len)
  return string.pack(">B I3 I3 B <I4", 6, 0, len, 9, 1)
end

-- The error a call raises (its message), or nil.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  return not ok and tostring(err) or nil
end

describe("rtmp.settings", function()
  it("describes every setting with its type, help and default, numbers with their bounds", function()
    local n = 0
    for name, s in pairs(rtmp.settings) do
      n = n + 1
      assert.is_string(s.type, name)
      assert.is_string(s.help, name)
      assert.truthy(#s.help > 10, name)
      if s.type == "seconds" or s.type == "count" or s.type == "bytes" then
        assert.is_number(s.min, name)
        assert.is_number(s.max, name)
        assert.truthy(s.default >= s.min and s.default <= s.max, name)
      end
      if s.type == "choice" then
        assert.is_table(s.choices, name)
        local found = false
        for _, c in ipairs(s.choices) do found = found or c == s.default end
        assert.truthy(found, name)
      end
      -- a dotted name is a field of a table setting: tls.cert is --tls-cert
      if s.cli then assert.are.equal("--" .. name:gsub("[_.]", "-"), s.cli) end
    end
    -- every setting a connection reads today, the command line's among them
    for _, name in ipairs({ "listen", "handshake_timeout", "connect_timeout", "idle_timeout", "max_per_address",
        "linger", "merge_window", "max_output", "max_queue_bytes", "max_queue_time", "max_queue_stall",
        "send_buffer", "recv_buffer", "max_message", "max_amf_message", "max_chunk_streams", "min_chunk_size",
        "max_chunk_size", "ext_ts_fmt3", "accept_fresh_fmt", "ack_window", "max_amf_depth", "bytes_in_start",
        "plain_handshake", "handshake_seed", "auto", "passthrough", "script_instructions", "on_error",
        "trace", "gop_max_bytes", "tls.cert", "tls.key", "tls.ciphersuites", "tls.ciphers", "tls.ca", "tls.insecure",
        "tls.sni", "tls.openssl_records", "drain_to",
        "drain_timeout", "http_timeout", "http_max_body", "http", "notify", "cluster_redis", "cluster_node",
        "cluster_ttl" }) do
      assert.is_table(rtmp.settings[name], name)
    end
    assert.are.equal(48, n)
  end)

  it("gives the defaults a session applies", function()
    local d = rtmp.settings
    assert.are.equal(60, d.idle_timeout.default)
    assert.are.equal(10, d.handshake_timeout.default)
    assert.are.equal("1935", d.listen.default)
    -- a listener's ciphers, AES-128-GCM first; no default certificate
    assert.truthy(d["tls.ciphersuites"].default:find("^TLS_AES_128_GCM_SHA256:"), d["tls.ciphersuites"].default)
    assert.truthy(d["tls.ciphers"].default:find("AES128", 1, true), d["tls.ciphers"].default)
    assert.is_nil(d["tls.cert"].default)
    local s = rtmp.session{ role = "server" }
    assert.are.equal(d.ack_window.default, s.ack_window)
    for name, on in pairs(d.auto.default) do
      assert.are.equal(on, s:auto(name), name)
    end
    -- a message of exactly max_message bytes is accepted when its header is
    -- read, one byte more is refused
    assert(server():feed(header(d.max_message.default)))
    local msgs, err, code = server():feed(header(d.max_message.default + 1))
    assert.is_nil(msgs)
    assert.are.equal("MSG_TOO_LONG", code, err)
  end)
end)

describe("settings from Lua tables", function()
  after_each(function()
    for k in pairs(rtmp.options) do rtmp.options[k] = nil end
  end)

  it("apply over rtmp.options, which apply over the defaults", function()
    rtmp.options.ack_window = 1000
    assert.are.equal(1000, rtmp.session({ role = "server" }).ack_window)
    assert.are.equal(2000, rtmp.session({ role = "server", ack_window = 2000 }).ack_window)
    rtmp.options.max_message = 100
    local msgs, _, code = server():feed(header(101))
    assert.is_nil(msgs)
    assert.are.equal("MSG_TOO_LONG", code)
    rtmp.options.max_message = 101
    assert(server():feed(header(101)))
  end)

  it("are refused outside their bounds, naming the setting, what it takes and the value", function()
    local function session(opts) return rtmp.session(opts) end
    assert.are.equal('merge_window must be a number of seconds, 0 to 5, not 6',
      raised(session, { merge_window = 6 }):match("merge_window.*"))
    assert.truthy(raised(session, { idle_timeout = -1 }):find("idle_timeout must be a number of seconds >= 0, not -1", 1, true))
    assert.truthy(raised(session, { idle_timeout = "soon" }):find('idle_timeout must be a number of seconds >= 0, not "soon"', 1, true))
    assert.truthy(raised(session, { max_per_address = 1.5 }):find("max_per_address must be a whole number >= 0, not 1.5", 1, true))
    assert.truthy(raised(session, { max_amf_depth = 513 }):find("max_amf_depth must be a whole number, 1 to 512, not 513", 1, true))
    assert.truthy(raised(session, { ext_ts_fmt3 = "sometimes" }):find(
      'ext_ts_fmt3 must be "detect", "spec" or "never", not "sometimes"', 1, true))
    assert.truthy(raised(session, { auto = { pong = false } }):find("unknown automatic behaviour 'pong'", 1, true))
    assert.truthy(raised(session, { auto = true }):find("auto must be a table, not true", 1, true))
    -- the same in rtmp.options, read when a session is made
    rtmp.options.linger = -2
    assert.truthy(raised(session, {}):find("linger must be a number of seconds >= 0, not -2", 1, true))
    rtmp.options.linger = nil
    -- and for rtmp.listen, before it listens, its containment settings too
    assert.truthy(raised(rtmp.listen, { listen = "127.0.0.1:0", max_chunk_streams = -1 }):find(
      "max_chunk_streams must be a whole number, 0 to 4294967295, not -1", 1, true))
    assert.truthy(raised(rtmp.listen, { listen = "127.0.0.1:0", on_error = "ignore" }):find(
      'on_error must be "close" or "drop", not "ignore"', 1, true))
    assert.truthy(raised(rtmp.listen, { listen = "127.0.0.1:0", script_instructions = -5 }):find(
      "script_instructions must be a whole number >= 0, not -5", 1, true))
  end)

  it("are read by rtmp.reader from the same descriptions", function()
    assert.are.equal(raised(rtmp.session, { ext_ts_fmt3 = "sometimes" }):match("ext_ts_fmt3.*"),
      raised(rtmp.reader, { ext_ts_fmt3 = "sometimes" }):match("ext_ts_fmt3.*"))
    local r = rtmp.reader{ max_message = 100 }
    local msgs, _, code = r:feed(header(101))
    assert.is_nil(msgs)
    assert.are.equal("MSG_TOO_LONG", code)
    -- not rtmp.options: a reader is no connection
    rtmp.options.max_message = 10
    assert(rtmp.reader():feed(header(101)))
  end)

  it("name the same choices in conn:option", function()
    local s = rtmp.session{ role = "server" }
    assert.are.equal("detect", s:option("ext_ts_fmt3"))
    assert.are.equal("never", s:option("ext_ts_fmt3", "never"))
    assert.truthy(raised(s.option, s, "ext_ts_fmt3", "sometimes"):find(
      'ext_ts_fmt3 must be "detect", "spec" or "never", not "sometimes"', 1, true))
  end)
end)

describe("the module", function()
  it("is one table under rtmp and rtmp.core, with the Lua part added", function()
    assert.are.equal(rtmp, require "rtmp.core")
    assert.is_function(rtmp.spawn)
    assert.is_function(rtmp.sleep)
    assert.is_function(rtmp.connect)
    -- opening the C part again (replay empties package.loaded) gives the
    -- same table: one loop per Lua state
    local loaded = package.loaded["rtmp.core"]
    package.loaded["rtmp.core"] = nil
    local again = require "rtmp.core"
    package.loaded["rtmp.core"] = loaded
    assert.are.equal(rtmp, again)
  end)

  it("loads its C part alone from rtmp.so when lua/rtmp.lua is not on the path", function()
    if H.asan then
      pending("lua5.4 cannot load an ASan build's rtmp.so (the ASan runtime must come first)")
      return
    end
    local cpath = H.luartmp:match("^(.*)/[^/]*$") .. "/?.so"
    local script = H.tmpname("core") .. ".lua"
    H.write_file(script, [[
      local rtmp = require "rtmp"
      print(type(rtmp.amf0.encode), type(rtmp.session), type(rtmp.spawn), rtmp == require "rtmp.core")
    ]])
    local rc, out = H.run("LUA_PATH='' LUA_CPATH=" .. H.shquote(cpath) .. " lua5.4 " .. H.shquote(script))
    assert.are.equal(0, rc, out)
    assert.are.equal("function\tfunction\tnil\ttrue\n", out)
    rc, out = H.run("LUA_PATH='lua/?.lua' LUA_CPATH=" .. H.shquote(cpath) .. " lua5.4 " .. H.shquote(script))
    assert.are.equal(0, rc, out)
    assert.are.equal("function\tfunction\tfunction\ttrue\n", out)
  end)
end)
