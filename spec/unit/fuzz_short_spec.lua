-- The short fuzz run of make test: each libFuzzer target (fuzz/, built
-- with clang, ASan and UBSan into build-fuzz/) for FUZZ_SHORT seconds
-- (default 10) over its seeds and regression inputs.  A finding fails
-- the test with the target's report; `make fuzz` runs the long campaigns
-- (docs/SECURITY.md).
local TARGETS = require "support.fuzz_targets"
local secs = tonumber(os.getenv("FUZZ_SHORT")) or 10

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

describe("fuzz targets, short run", function()
  setup(function()
    -- make test builds them first; this is then a no-op
    local rc, out = run("make -s --no-print-directory fuzz-build build-fuzz/seeds/.done")
    assert(rc == 0, "building the fuzz targets failed:\n" .. out)
  end)

  for _, t in ipairs(TARGETS) do
    it("fuzz_" .. t .. " finds nothing in " .. secs .. " s", function()
      local rc, out = run(string.format("fuzz/run.sh short %d %s", secs, t))
      assert.are.equal(0, rc, out)
      local execs = tonumber(out:match("fuzz_" .. t .. "%s+(%d+) execs"))
      assert.truthy(execs and execs > 0, out)
      assert.truthy(out:find(": ok\n", 1, true), out)
    end)
  end
end)
