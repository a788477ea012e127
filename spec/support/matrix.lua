-- The capture2lua interop matrix (spec/interop/capture_matrix_spec.lua):
-- the peers that make the captures and drive the generated scripts, what
-- each one got (frames, messages), and the measured table.
--
--   local M = require "support.matrix"
--   local p = M.PLAYERS.rtmpdump(url, out)      -- a player saving an FLV to `out`
--   local q = M.PUBLISHERS.gst(url)             -- a publisher of M.fixture()
--   M.cell(capture, peer, fn)                   -- one cell: pass/fail, frames, reason
--   M.write_table(path, captures)               -- the Markdown table of every cell
--
-- Frames are counted by ffprobe (decoded frames) on what a player saved;
-- media messages a generated server took, from its trace. Tags of an FLV
-- are counted here with a parser of our own (a dozen lines), so that no
-- count depends on the code under test.
local H = require "support.helpers"

local M = {}

local fmt, q = string.format, H.shquote

-- The media of every capture: 2 s of H.264/AAC, 160x120 at 25 fps (50
-- video frames), one GOP a second, made once per build directory; also
-- spec/interop/capture2lua_spec.lua's.
M.FIXTURE_FRAMES = 50
function M.fixture()
  local path = "build/test-tmp/c2l-fixture-160x120-25fps-2s.flv"
  H.mkdir("build/test-tmp")
  if not H.file_size(path) then
    local tmp = path .. ".tmp" .. math.random(1e6)
    local rc, out = H.run(fmt("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x120:rate=25 " ..
      "-f lavfi -i sine=frequency=440:sample_rate=44100 -t 2 -c:v libx264 -preset veryfast " ..
      "-g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 64k -f flv %s && mv %s %s",
      q(tmp), q(tmp), q(path)), 60)
    assert(rc == 0, out)
  end
  return path
end

--- Tags of an FLV file by type: { audio = n, video = n, data = n }, or nil
--- and a reason. A file cut inside its last tag counts the whole tags.
function M.flv_tags(path)
  local s = H.read_file(path)
  if not s then return nil, "no file " .. path end
  if s:sub(1, 3) ~= "FLV" or #s < 9 then return nil, "not an FLV: " .. path end
  local n = { audio = 0, video = 0, data = 0 }
  local names = { [8] = "audio", [9] = "video", [18] = "data" }
  local pos = string.unpack(">I4", s, 6) + 5   -- header, then PreviousTagSize0
  while pos + 11 <= #s do
    local ttype, size = string.unpack(">B I3", s, pos)
    if pos + 11 + size > #s then break end
    local name = names[ttype & 0x1F]
    if name then n[name] = n[name] + 1 end
    pos = pos + 11 + size + 4
  end
  return n
end

--- Decoded frames in a saved file (ffprobe -count_frames): { video = n,
--- audio = n } (0 for a missing stream), or nil and ffprobe's output.
function M.frames(path)
  if (H.file_size(path) or 0) == 0 then return nil, "nothing saved in " .. path end
  local info, err = H.probe(path)
  if not info then return nil, err end
  return { video = info.video and info.video.frames or 0, audio = info.audio and info.audio.frames or 0 }
end

--- "50 v / 87 a" for the table.
function M.frames_text(f)
  if not f then return "-" end
  return fmt("%s v / %s a", tostring(f.video), tostring(f.audio))
end

---------------------------------------------------------------------------
-- Peers. A player saves what it got as FLV in `out` and ends by itself
-- when the stream ends; a publisher sends M.fixture() as fast as it can
-- (timing is not what the matrix tests).
---------------------------------------------------------------------------

M.PLAYERS = {
  ffmpeg = function(url, out)
    return H.ffmpeg_play(url, out, 2)
  end,
  rtmpdump = function(url, out)
    return H.rtmpdump_play(url, out)
  end,
  -- rtmp2src hands out the stream as FLV: saved as it came.
  gst = function(url, out)
    return H.spawn(fmt("gst-launch-1.0 -q rtmp2src location=%s ! filesink location=%s",
      q(url), q(out)), { name = "gst-play" })
  end,
  ["play.lua"] = function(url, out)
    return H.spawn(fmt("%s scripts/client/play.lua --timeout 5 %s %s", q(H.luartmp), q(url), q(out)),
      { name = "luartmp-play" })
  end,
}
M.PLAYER_NAMES = { "ffmpeg", "rtmpdump", "gst", "play.lua" }

M.PUBLISHERS = {
  ffmpeg = function(url)
    return H.ffmpeg_publish(url, M.fixture(), { fast = true })
  end,
  gst = function(url)
    return H.spawn(fmt("gst-launch-1.0 -q filesrc location=%s ! flvdemux name=d " ..
      "d.video ! queue ! h264parse ! mux. d.audio ! queue ! aacparse ! mux. " ..
      "flvmux name=mux streamable=true ! rtmp2sink sync=false location=%s",
      q(M.fixture()), q(url)), { name = "gst-publish" })
  end,
  ["publish.lua"] = function(url)
    return H.spawn(fmt("%s scripts/client/publish.lua --fast %s %s", q(H.luartmp), q(M.fixture()), q(url)),
      { name = "luartmp-publish" })
  end,
}
M.PUBLISHER_NAMES = { "ffmpeg", "gst", "publish.lua" }

--- The last `n` lines of a text (for failure messages).
function M.tail(text, n)
  local lines = {}
  for l in (text or ""):gmatch("[^\n]+") do lines[#lines + 1] = l end
  return table.concat(lines, "\n", math.max(1, #lines - (n or 12) + 1))
end

--- What a process printed, labelled: its exit status and last line
--- first (the reason in the table), then its last `n` lines.
function M.said(p, n)
  local text = H.output(p)
  local last = M.tail(text, 1)
  return fmt("%s (exit %s): %s\n--- %s:\n%s", p.name, tostring(H.exited(p)), last, p.name, M.tail(text, n))
end

---------------------------------------------------------------------------
-- capture2lua and the scripts it writes
---------------------------------------------------------------------------

--- Run capture2lua with `args` (a shell-quoted string); exit code, output.
function M.c2l(args)
  return H.run(fmt("%s scripts/tools/capture2lua.lua %s", q(H.luartmp), args), 60)
end

--- The id of the connection in `capture` whose client sent the command
--- `cmd` (from --list), or nil and the listing.
function M.connection(capture, cmd)
  local rc, out = M.c2l(q(capture) .. " --list")
  if rc ~= 0 then return nil, out end
  for line in out:gmatch("[^\n]+") do
    local id = line:match("^(%d+) ")
    if id and line:find(" RTMP ", 1, true) and (" " .. line .. " "):find(" " .. cmd .. " ", 1, true) then
      return tonumber(id), line
    end
  end
  return nil, "no connection with " .. cmd .. " in:\n" .. out
end

--- Write the `side` script of connection `id` of `capture` to `path`;
--- the path, or nil and capture2lua's output.
function M.generate(capture, id, side, path)
  local rc, out = M.c2l(fmt("%s %s--side %s -o %s", q(capture), id and ("--connection " .. id .. " ") or "",
    side, q(path)))
  if rc ~= 0 then return nil, fmt("capture2lua exited %d:\n%s", rc, out) end
  local f, err = loadfile(path)
  if not f then return nil, "the generated script does not load: " .. tostring(err) end
  return path
end

--- Media messages a trace shows received ("in"): { audio = n, video = n }.
--- Aggregates count as their sub-messages' types are not known here: they
--- are counted apart (aggregate = n).
function M.trace_media(path)
  local n = { audio = 0, video = 0, aggregate = 0 }
  for typ in (H.read_file(path) or ""):gmatch(" in csid=%S+ fmt=%S+ type=(%a+) ") do
    if n[typ] then n[typ] = n[typ] + 1 end
  end
  return n
end

--- Cut connection `id` of `capture` so that it starts right after the RTMP
--- handshake: only that connection's packets from the first one carrying
--- bytes past C0+C1+C2 (client) or S0+S1+S2 (server), in `out` (tshark -w
--- with a frame filter). The path, or nil and why.
function M.cut_after_handshake(capture, port, client_port, out)
  local HS = 1 + 1536 + 1536   -- C0 C1 C2, and S0 S1 S2
  local rc, text = H.run(fmt("tshark -r %s -o tcp.relative_sequence_numbers:TRUE -Y %s " ..
    "-T fields -e frame.number -e tcp.srcport -e tcp.seq -e tcp.len",
    q(capture), q(fmt("tcp.port == %d && tcp.len > 0", client_port))), 60)
  if rc ~= 0 then return nil, "tshark: " .. text end
  local first
  for num, sport, seq, len in text:gmatch("(%d+)\t(%d+)\t(%d+)\t(%d+)") do
    num, seq, len = tonumber(num), tonumber(seq), tonumber(len)
    local s0 = seq - 1                          -- stream offset of the segment's first byte
    if s0 + len > HS then
      if s0 < HS then
        return nil, fmt("frame %d (from port %s) holds both handshake and RTMP bytes: cannot cut there", num, sport)
      end
      first = num
      break
    end
  end
  if not first then return nil, "no bytes after the handshake in the connection from port " .. client_port end
  rc, text = H.run(fmt("tshark -r %s -Y %s -w %s", q(capture),
    q(fmt("tcp.port == %d && tcp.port == %d && frame.number >= %d", client_port, port, first)), q(out)), 60)
  if rc ~= 0 then return nil, "tshark -w: " .. text end
  return out
end

---------------------------------------------------------------------------
-- The table
---------------------------------------------------------------------------

local cells = {}

--- Run `fn(rec)` as the cell (capture, peer): its result is recorded
--- (pass, or fail with the first line of the error), then any error is
--- raised again. fn may set rec.frames ({ video, audio }) and rec.note.
function M.cell(capture, peer, fn)
  local rec = { capture = capture, peer = peer }
  cells[#cells + 1] = rec
  local ok, err = pcall(fn, rec)
  rec.pass = ok
  if not ok then
    local msg = type(err) == "table" and (err.message or err[1]) or err
    msg = tostring(msg)
    -- the first line, without the spec's file:line
    msg = (msg:match("[^\n]+") or msg):gsub("^[%w_./-]+%.lua:%d+: ", "")
    rec.reason = msg:gsub("|", "\\|")
    error(err, 0)
  end
end

--- The cells so far.
function M.cells() return cells end

--- Write the table of every cell as Markdown to `path`, after the list
--- of `captures` ({ key, about } each); returns its text.
function M.write_table(path, captures)
  local out = { "# capture2lua interop matrix", "",
    fmt("Measured by spec/interop/capture_matrix_spec.lua (%s).", os.date("!%Y-%m-%d %H:%M UTC")), "" }
  for _, c in ipairs(captures or {}) do
    out[#out + 1] = fmt("- %s: %s", c.key, c.about)
  end
  out[#out + 1] = ""
  out[#out + 1] = "| capture | peer | result | frames | reason |"
  out[#out + 1] = "|---|---|---|---|---|"
  local passed = 0
  for _, c in ipairs(cells) do
    if c.pass then passed = passed + 1 end
    out[#out + 1] = fmt("| %s | %s | %s | %s | %s |", c.capture, c.peer, c.pass and "pass" or "FAIL",
      M.frames_text(c.frames), c.pass and (c.note or "") or (c.reason or ""))
  end
  out[#out + 1] = ""
  out[#out + 1] = fmt("%d of %d cells pass.", passed, #cells)
  local text = table.concat(out, "\n") .. "\n"
  H.mkdir(path:match("^(.*)/[^/]*$") or ".")
  H.write_file(path, text)
  return text
end

return M
