-- rtmp.reload: load the scripts again in the running process, without
-- dropping a connection (docs/RELOAD.md).
--
--   rtmp.reload() -> true | nil, err     (luartmp: also on SIGHUP)
--   rtmp.keep(name [, init]) -> table    the same table on every load
--   reload.commit(fn)                    fn() once the load under way is kept
--
-- A reload runs the main script again (same path, same arguments) in the
-- same Lua state, after taking out of package.loaded the script modules:
-- those found in the scripts directory (<root>/scripts) or in the main
-- script's own.  The rtmp modules (lua/rtmp/) and the C binding are the
-- process's and stay.  Every file is compiled first: a syntax error
-- refuses the reload with nothing run.  A run that fails refuses it too:
-- package.loaded gets its entries back and what the load registered with
-- reload.commit is dropped, so the running handlers stay.  A refusal is
-- logged as "reload refused: <file>:<line>: <message>" (the message alone
-- for an rtmp.fail error).
--
-- State that must outlive a load lives in kept tables (rtmp.keep): the
-- connections' and streams' tables, the listening servers.  A module
-- redefines its functions on each load and switches to them in a commit
-- (rtmp.app does so for an app made with a kept state).
local rtmp = require "rtmp"

local log = rtmp.log
local type, pairs, error, tostring = type, pairs, error, tostring
local pack, unpack, sort, concat = table.pack, table.unpack, table.sort, table.concat

local _M = {}

local kept = {}   -- name -> the kept table
local main        -- the main script: { path, args (packed) }
local loading     -- the reload under way: { commits = { fn, ... } }

--- reload.keep(name [, init]) -> table: the table kept as name; the first
--- time, init's (a table, or a function returning one; default {}).
function _M.keep(name, init)
    if type(name) ~= "string" then error("rtmp.keep: name must be a string", 2) end
    local t = kept[name]
    if t ~= nil then return t end
    if init == nil then
        t = {}
    elseif type(init) == "function" then
        t = init()
    else
        t = init
    end
    if type(t) ~= "table" then error("rtmp.keep: init must be a table or return one", 2) end
    kept[name] = t
    return t
end

--- reload.commit(fn): fn() when the reload under way succeeds (after the
--- main script returned), never if it is refused; at once outside a reload.
function _M.commit(fn)
    if type(fn) ~= "function" then error("reload.commit: function expected", 2) end
    if loading then
        local q = loading.commits
        q[#q + 1] = fn
    else
        fn()
    end
end

--- reload.loading() -> whether a reload is running its scripts now.
function _M.loading() return loading ~= nil end

--- reload.main(path, ...): the script rtmp.reload runs again, with its
--- arguments (luartmp sets it); SIGHUP reloads from now on.
function _M.main(path, ...)
    if type(path) ~= "string" then error("reload.main: path must be a string", 2) end
    main = { path = path, args = pack(...) }
    rtmp.on_sighup(function() _M.reload() end)
end

-- ---- which modules are the scripts' ----

local function dirname(path)
    local d = path:match("^(.*)/[^/]*$")
    if d == nil then return "." end
    if d == "" then return "/" end
    return d
end

-- "./x" and "x" name the same file; a directory ends in "/".
local function norm(path)
    path = path:gsub("/%./", "/"):gsub("^%./", "")
    return path
end

local function script_dirs()
    local dirs = { norm(dirname(main.path)) }
    local root = rtmp.options.root
    if type(root) == "string" then dirs[#dirs + 1] = norm(root .. "/scripts") end
    return dirs
end

-- The loaded modules whose file is in a script directory: name -> file.
local function script_modules()
    local dirs, mods = script_dirs(), {}
    for name, v in pairs(package.loaded) do
        if type(name) == "string" and v ~= nil then
            local file = package.searchpath(name, package.path)
            if file then
                local d = norm(dirname(file))
                for i = 1, #dirs do
                    if d == dirs[i] then
                        mods[name] = file
                        break
                    end
                end
            end
        end
    end
    return mods
end

-- ---- the reload ----

-- Lua shortens a long file name in an error ("...end/of/it.lua:4: ..."):
-- the whole name again when one of files ends so.
local function full_name(err, files)
    local tail = err:match("^%.%.%.([^:]*):%d+:")
    if not tail then return err end
    for i = 1, #files do
        local f = files[i]
        if #f > #tail and f:sub(-#tail) == tail then return f .. err:sub(4 + #tail) end
    end
    return err
end

local function refuse(err, files, trace)
    err = full_name(tostring(err), files)
    log.error("reload refused: %s", err)
    if trace then log.debug("reload refused: %s", trace) end
    return nil, err
end

--- rtmp.reload() -> true | nil, err: run the main script again (see the
--- top of this file).  err: the syntax or run error, "<file>:<line>: ...".
function _M.reload()
    if not main then error("rtmp.reload: no main script (luartmp sets it: reload.main(path, ...))", 2) end
    if loading then return nil, "a reload is under way" end
    -- every file first: a syntax error leaves everything as it is
    local chunk, err = loadfile(main.path)
    if not chunk then return refuse(err, { main.path }) end
    local mods = script_modules()
    local names, files = {}, { main.path }
    for name, file in pairs(mods) do
        local f, ferr = loadfile(file)
        if not f then return refuse(ferr, { file }) end
        names[#names + 1] = name
        files[#files + 1] = file
    end
    sort(names)
    local saved = {}
    for name in pairs(mods) do
        saved[name] = package.loaded[name]
        package.loaded[name] = nil
    end
    -- the run, in a coroutine: the script may wait (rtmp.sleep, a
    -- request); the load is what it did up to its first wait
    local first = true
    local co = coroutine.create(function(...)
        local r = pack(xpcall(chunk, debug.traceback, ...))
        if not first and not r[1] then log.error("reloaded %s failed after waiting: %s", main.path, r[2]) end
        return r
    end)
    loading = { commits = {} }
    local ok, r = coroutine.resume(co, unpack(main.args, 1, main.args.n))
    first = false
    local commits = loading.commits
    loading = nil
    if not ok or (coroutine.status(co) == "dead" and not r[1]) then
        local trace = tostring(ok and r[2] or r)
        -- package.loaded as it was: the modules of this run go, the old ones come back
        for name, file in pairs(script_modules()) do
            package.loaded[name] = nil
            files[#files + 1] = file
        end
        for name, v in pairs(saved) do package.loaded[name] = v end
        return refuse(trace:match("^[^\n]*"), files, trace)
    end
    for i = 1, #commits do
        local cok, cerr = xpcall(commits[i], debug.traceback)
        if not cok then log.error("reload: a commit failed: %s", cerr) end
    end
    log.info("reloaded %s (modules again: %s)", main.path, #names > 0 and concat(names, ", ") or "none")
    return true
end

return _M
