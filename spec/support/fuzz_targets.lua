-- The libFuzzer targets, as fuzz/fuzz.mk's FUZZ_TARGETS names them (the
-- one list: the specs that run or replay them read it from there).
local f = assert(io.open("fuzz/fuzz.mk"))
local mk = f:read("a")
f:close()
local list = assert(mk:match("\nFUZZ_TARGETS%s*%?=%s*([^\n]+)"), "fuzz/fuzz.mk: no FUZZ_TARGETS line")
local targets = {}
for name in list:gmatch("%S+") do targets[#targets + 1] = name end
return targets
