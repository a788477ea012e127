-- rtmp.caps: the Enhanced RTMP v2 capabilities of `connect` ("Enhancing
-- NetConnection connect Command", veovera E-RTMP v2): what luartmp
-- announces, made from the one table of what it can do with each codec,
-- and what a peer announced, read into plain fields.
--
--   local caps = require "rtmp.caps"
--   caps.announce{ encode = { "hvc1", "Opus" } }
--     -> { fourCcList = { "hvc1", "Opus" }, videoFourCcInfoMap = { hvc1 = 2 },
--          audioFourCcInfoMap = { Opus = 2 }, capsEx = 6 }       (AMF-ready)
--   caps.parse(msg.args[1])
--     -> { fourccs = { "hvc1", "Opus" }, video = { hvc1 = { encode = true, ... } },
--          audio = { ... }, caps_ex = { multitrack = true, modex = true, ... },
--          caps_ex_mask = 6 }, or nil when the object announces none of it
--
-- docs/ENHANCED.md has the fields and the table.
local rtmp = require "rtmp"

local _M = {}

local type, pairs, ipairs, next, error, tostring = type, pairs, ipairs, next, error, tostring
local tointeger, floor = math.tointeger, math.floor
local amf0 = rtmp.amf0

--- FourCcInfoMask: what a peer can do with a codec.
_M.MASK = { decode = 1, encode = 2, forward = 4 }
--- CapsExMask: the extended capabilities.
_M.CAPS_EX = { reconnect = 1, multitrack = 2, modex = 4, timestamp_nano_offset = 8 }

local MASK_NAMES = { "decode", "encode", "forward" }
local CAPS_EX_NAMES = { "reconnect", "multitrack", "modex", "timestamp_nano_offset" }

-- ---- what luartmp can do ----

-- FourCC -> { fourcc, kind, decode, encode, forward }, and the FourCCs in
-- the media model's order.  From rtmp.media.codecs (core/media.h and
-- rtmp.mp4's codec table), never a list of its own:
--   forward  every codec with a FourCC: the live server passes any message
--            on unchanged, whatever its form (the media model reads them all);
--   decode   those rtmp.mp4 writes: play.lua and record.lua turn their
--            configuration and frames into an MP4 track;
--   encode   those rtmp.mp4 reads: publish.lua makes their messages from an MP4.
local TABLE, ORDER = {}, {}
for _, c in ipairs(rtmp.media.codecs) do
    if c.fourcc then
        TABLE[c.fourcc] = { fourcc = c.fourcc, kind = c.kind, decode = c.mp4, encode = c.mp4, forward = true }
        ORDER[#ORDER + 1] = c.fourcc
    end
end

--- caps.luartmp: FourCC -> { fourcc, kind ("video"/"audio"), decode, encode,
--- forward } (booleans), luartmp's own; caps.fourccs: its FourCCs in order.
_M.luartmp = TABLE
_M.fourccs = ORDER

--- The capsEx luartmp's media path handles, by name: multitrack messages,
--- ModEx and its TimestampOffsetNano (the media model reads them, the group
--- and the MP4 writer pass or apply them).  Reconnect is added by
--- caps.reconnect.
_M.caps_ex = { "multitrack", "modex", "timestamp_nano_offset" }

--- Whether announce() adds Reconnect to capsEx: luartmp sends
--- NetConnection.Connect.ReconnectRequest (app.reconnect_request, the
--- drain: docs/DRAIN.md) and its client API follows one.  A script that
--- does neither may set it to false.
_M.reconnect = true

local function caps_ex_mask(names)
    local mask = 0
    for _, name in ipairs(names) do
        mask = mask | (_M.CAPS_EX[name] or error("caps: no capsEx flag " .. tostring(name), 3))
    end
    return mask
end

--- caps.announce(t) -> the connect (or _result) properties, AMF-ready:
--- fourCcList, videoFourCcInfoMap, audioFourCcInfoMap (ordered objects;
--- each left out when it would be empty) and capsEx.  t.decode, t.encode, t.forward: true (every FourCC luartmp can
--- do that with) or a list of FourCCs (those of them it can: a FourCC
--- luartmp cannot do that with is left out); t.caps_ex: a list of names
--- (default caps.caps_ex, plus "reconnect" when caps.reconnect).  A FourCC
--- in no list is not announced.
function _M.announce(t)
    if type(t) ~= "table" then error("caps.announce: table expected", 2) end
    local masks = {}
    for bit, what in ipairs(MASK_NAMES) do
        local want = t[what]
        local set
        if want == true then
            set = TABLE
        elseif type(want) == "table" then
            set = {}
            for _, fcc in ipairs(want) do set[fcc] = true end
        elseif want ~= nil and want ~= false then
            error("caps.announce: " .. what .. " must be true or a list of FourCCs", 2)
        end
        if set then
            for fcc in pairs(set) do
                local row = TABLE[fcc]
                if row and row[what] then masks[fcc] = (masks[fcc] or 0) | (1 << (bit - 1)) end
            end
        end
    end
    local list, video, audio = {}, {}, {}
    for _, fcc in ipairs(ORDER) do
        local mask = masks[fcc]
        if mask then
            list[#list + 1] = fcc
            local map = TABLE[fcc].kind == "video" and video or audio
            map[#map + 1] = { fcc, mask + 0.0 }
        end
    end
    local names = t.caps_ex
    if names == nil then
        names = {}
        for i, name in ipairs(_M.caps_ex) do names[i] = name end
        if _M.reconnect then names[#names + 1] = "reconnect" end
    end
    return {
        fourCcList = #list > 0 and amf0.array(list) or nil,
        videoFourCcInfoMap = #video > 0 and amf0.object(video) or nil,
        audioFourCcInfoMap = #audio > 0 and amf0.object(audio) or nil,
        capsEx = caps_ex_mask(names) + 0.0,
    }
end

-- ---- what a peer announced ----

-- A number a peer sent as an integer in 0 .. 2^31, or nil.
local function int(v)
    if type(v) ~= "number" or v ~= v or v < 0 or v > 2147483647 then return nil end
    return tointeger(floor(v))
end

-- A FourCC a peer sent: a string of four bytes, or "*".
local function is_fourcc(v)
    return type(v) == "string" and (#v == 4 or v == "*")
end

-- flags { decode = bool, ... } of a FourCcInfoMask
local function mask_flags(mask)
    local f = {}
    for bit, what in ipairs(MASK_NAMES) do f[what] = mask & (1 << (bit - 1)) ~= 0 end
    return f
end

-- An info map a peer sent: FourCC -> flags; nil when absent.  Entries
-- that are no FourCC or no mask are left out, and said in problems.
local function parse_map(v, name, problems)
    if v == nil or v == rtmp.null or v == rtmp.undefined then return nil end
    if type(v) ~= "table" then
        problems[#problems + 1] = name .. " is not an object"
        return nil
    end
    local map = {}
    for k, mask in pairs(v) do
        local m = int(mask)
        if is_fourcc(k) and m then
            map[k] = mask_flags(m)
        elseif k ~= "n" then
            problems[#problems + 1] = name .. ": entry " .. tostring(k) .. " is no FourCC with a mask"
        end
    end
    return map
end

--- caps.parse(obj) -> caps, problems: what a connect command object (or a
--- _result's properties) announced, or nil when it holds none of the four
--- fields.  caps: fourccs (fourCcList: the FourCC strings, "*" included, in
--- order), video and audio (the info maps: FourCC or "*" -> { decode,
--- encode, forward }), caps_ex (name -> true for each flag set),
--- caps_ex_mask (the number, 0 when absent).  What a peer sent wrong (an
--- entry that is no FourCC, a map that is no object) is left out and
--- described in problems (a list of strings, empty when none): never an
--- error.
function _M.parse(obj)
    local problems = {}
    if type(obj) ~= "table" then return nil, problems end
    local list, maps = obj.fourCcList, {}
    maps.video = parse_map(obj.videoFourCcInfoMap, "videoFourCcInfoMap", problems)
    maps.audio = parse_map(obj.audioFourCcInfoMap, "audioFourCcInfoMap", problems)
    local caps_ex = obj.capsEx
    local announced = maps.video or maps.audio
    local c = { video = maps.video or {}, audio = maps.audio or {}, caps_ex = {}, caps_ex_mask = 0 }
    if list ~= nil and list ~= rtmp.null and list ~= rtmp.undefined then
        announced = true
        local fourccs = {}
        if type(list) ~= "table" then
            problems[#problems + 1] = "fourCcList is not an array"
        else
            for i = 1, tointeger(list.n) or #list do
                if is_fourcc(list[i]) then
                    fourccs[#fourccs + 1] = list[i]
                else
                    problems[#problems + 1] = "fourCcList: entry " .. i .. " is no FourCC"
                end
            end
        end
        c.fourccs = fourccs
    end
    if caps_ex ~= nil and caps_ex ~= rtmp.null and caps_ex ~= rtmp.undefined then
        announced = true
        local m = int(caps_ex)
        if not m then
            problems[#problems + 1] = "capsEx is not a number"
        else
            c.caps_ex_mask = m
            for bit, name in ipairs(CAPS_EX_NAMES) do
                if m & (1 << (bit - 1)) ~= 0 then c.caps_ex[name] = true end
            end
        end
    end
    if not announced then return nil, problems end
    c.fourccs = c.fourccs or {}
    return c, problems
end

--- caps.can(c, fourcc [, what]) -> boolean: whether parsed caps c say the
--- peer supports fourcc; with what ("decode", "encode", "forward"), that
--- flag in its info map (or the "*" entry's).  Without what, any of them,
--- or fourcc (or "*") in its fourCcList.  false for nil c (a peer that
--- announced nothing: a legacy peer).
function _M.can(c, fourcc, what)
    if not c then return false end
    if what ~= nil and not _M.MASK[what] then error("caps.can: no capability " .. tostring(what), 2) end
    for _, map in ipairs({ c.video, c.audio }) do
        for _, key in ipairs({ fourcc, "*" }) do
            local f = map[key]
            if f and (what and f[what] or not what and (f.decode or f.encode or f.forward)) then return true end
        end
    end
    if what then return false end
    for _, v in ipairs(c.fourccs) do
        if v == fourcc or v == "*" then return true end
    end
    return false
end

--- caps.legacy(c) -> true when parsed caps c name no FourCC at all (nil
--- included): the peer announced no Enhanced RTMP codec, a legacy peer.
function _M.legacy(c)
    if not c then return true end
    return #c.fourccs == 0 and next(c.video) == nil and next(c.audio) == nil
end

return _M
