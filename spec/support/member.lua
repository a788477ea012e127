-- spec/support/member.lua: a group member without sockets, for the specs
-- of core/group.c: a server session (the member) and the client session
-- that decodes what the group sent it, their handshake done.
--
--   local member = require "support.member"
--   local m = member()
--   group:add(m.server, 1)
--   group:send(msg)
--   m.received()       -- the messages the client decoded since the last call
local rtmp = require "rtmp"

return function()
  local cli = rtmp.session{ role = "client", plain_handshake = true }
  local srv = rtmp.session{ role = "server", plain_handshake = true }
  local got = {}
  local function pump()
    for _ = 1, 8 do
      local a = cli:output()
      if #a > 0 then assert(srv:feed(a)) end
      local b = srv:output()
      if #b > 0 then for _, m in ipairs(assert(cli:feed(b))) do got[#got + 1] = m end end
    end
  end
  pump()
  return {
    server = srv,
    client = cli,
    received = function()
      pump()
      local out = got
      got = {}
      return out
    end,
  }
end
