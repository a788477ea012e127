-- Seeded byte mutations for the AMF decoders' fuzz specs (amf0_spec,
-- amf3_spec): the same inputs on every run.
local M = {}

-- rnd(n) -> 0 .. n-1 from a linear congruential generator started at state.
function M.rng(state)
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n
  end
end

-- s with 1 + rnd(max_edits) edits, each overwriting, removing or inserting
-- one byte at a random place; an empty input gets a random byte before an
-- edit and, with keep_one, at the end.
function M.mutate(s, rnd, max_edits, keep_one)
  local bytes = { s:byte(1, -1) }
  for _ = 1, 1 + rnd(max_edits) do
    if #bytes == 0 then bytes[1] = rnd(256) end
    local at = 1 + rnd(#bytes)
    local op = rnd(3)
    if op == 0 then bytes[at] = rnd(256)
    elseif op == 1 then table.remove(bytes, at)
    else table.insert(bytes, at, rnd(256)) end
  end
  if keep_one and #bytes == 0 then bytes[1] = rnd(256) end
  return string.char(table.unpack(bytes))
end

return M
