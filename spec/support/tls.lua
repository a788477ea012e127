-- TLS for the integration specs: certificates made at test time with the
-- openssl command line, and luartmp started with a plain and an rtmps://
-- listener side by side.
--
--   local T = require "support.tls"
--   local c = T.certs()            -- { ca, cert, key, expired, wrong, self_signed, ... }
--   local srv = T.luartmp_start()  -- H.luartmp_start plus srv.tls_port, srv.tls_url(path)
--   local front = T.stunnel_start(nginx.port)  -- TLS in front of a plain server

local H = require "support.helpers"

local T = {}
local q = H.shquote
local fmt = string.format

local certs
--- The test PKI, made once per run in the run directory:
---   ca, ca_key        a CA ("luartmp test CA")
---   cert, key         a server certificate signed by it for localhost and
---                     127.0.0.1 (subjectAltName DNS and IP)
---   expired           the same names and key, signed by the CA, expired
---                     (notAfter a day before notBefore)
---   wrong             signed by the CA for wrong.example only (same key)
---   self_signed       for localhost and 127.0.0.1, signed by its own key
---                     (same key), so no CA vouches for it
function T.certs()
  if certs then return certs end
  local dir = H.mkdir(H.tmpname("pki"))
  local c = {
    dir = dir, ca = dir .. "/ca.pem", ca_key = dir .. "/ca.key", key = dir .. "/server.key",
    cert = dir .. "/server.pem", expired = dir .. "/expired.pem", wrong = dir .. "/wrong.pem",
    self_signed = dir .. "/self.pem",
  }
  local san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
  local steps = {
    fmt("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 30 -subj '/CN=luartmp test CA'",
      q(c.ca_key), q(c.ca)),
    fmt("openssl req -newkey rsa:2048 -nodes -keyout %s -out %s/server.csr -subj /CN=localhost",
      q(c.key), q(dir)),
    fmt("printf '%%s\\n' %s > %s/san.cnf", q(san), q(dir)),
    fmt("openssl x509 -req -in %s/server.csr -CA %s -CAkey %s -set_serial 1 -days 30 -extfile %s/san.cnf -out %s",
      q(dir), q(c.ca), q(c.ca_key), q(dir), q(c.cert)),
    fmt("openssl x509 -req -in %s/server.csr -CA %s -CAkey %s -set_serial 2 -days -1 -extfile %s/san.cnf -out %s",
      q(dir), q(c.ca), q(c.ca_key), q(dir), q(c.expired)),
    fmt("openssl req -new -key %s -out %s/wrong.csr -subj /CN=wrong.example", q(c.key), q(dir)),
    fmt("printf '%%s\\n' subjectAltName=DNS:wrong.example > %s/wrong.cnf", q(dir)),
    fmt("openssl x509 -req -in %s/wrong.csr -CA %s -CAkey %s -set_serial 3 -days 30 -extfile %s/wrong.cnf -out %s",
      q(dir), q(c.ca), q(c.ca_key), q(dir), q(c.wrong)),
    fmt("openssl req -x509 -key %s -out %s -days 30 -subj /CN=localhost -addext %s",
      q(c.key), q(c.self_signed), q(san)),
  }
  for _, cmd in ipairs(steps) do
    local rc, out = H.run(cmd .. " 2>&1", 60)
    assert(rc == 0, "openssl failed: " .. cmd .. "\n" .. out)
  end
  certs = c
  return c
end

--- H.luartmp_start with a second listener, rtmps://127.0.0.1:TLS_PORT,
--- serving opts.cert/opts.key (default: the test server certificate);
--- opts as H.luartmp_start's (opts.extra is appended). Returns its
--- server object plus tls_port and tls_url(path [, host]) (host defaults
--- to localhost, the certificate's name).
function T.luartmp_start(opts)
  opts = opts or {}
  local c = T.certs()
  local tls_port = H.free_port()
  local extra = { "--listen", "rtmps://127.0.0.1:" .. tls_port, "--tls-cert", opts.cert or c.cert,
                  "--tls-key", opts.key or c.key }
  for _, o in ipairs(opts.extra or {}) do extra[#extra + 1] = o end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.extra = extra
  local srv = H.luartmp_start(o)
  local ok, why = H.wait_port(tls_port, 10, srv.proc)
  assert(ok, why)
  srv.tls_port = tls_port
  function srv.tls_url(path, host)
    return fmt("rtmps://%s:%d/%s", host or "localhost", tls_port, path or "live")
  end
  return srv
end

--- A TLS front (stunnel4) on 127.0.0.1: it accepts TLS with opts.cert and
--- opts.key (default: the test server certificate) and relays the bytes
--- in the clear to 127.0.0.1:`port` (nginx-rtmp, say). Returns { port,
--- proc, url(path [, host]) (rtmps://, host localhost by default), log() }.
function T.stunnel_start(port, opts)
  opts = opts or {}
  local c = T.certs()
  local front = H.free_port()
  local conf = H.tmpname("stunnel.conf")
  H.write_file(conf, table.concat({
    "foreground = yes", "pid =", "debug = info",
    "[rtmps]",
    fmt("accept = 127.0.0.1:%d", front),
    fmt("connect = 127.0.0.1:%d", port),
    "cert = " .. (opts.cert or c.cert),
    "key = " .. (opts.key or c.key), "" }, "\n"))
  local proc = H.spawn("stunnel4 " .. q(conf), { name = "stunnel" })
  local ok, why = H.wait_port(front, 10, proc)
  assert(ok, why)
  local st = { port = front, proc = proc }
  function st.url(path, host) return fmt("rtmps://%s:%d/%s", host or "localhost", front, path or "live") end
  function st.log() return H.output(proc) end
  return st
end

return T
