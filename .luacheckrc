-- luacheck configuration (make lint)
std = "lua54"
max_line_length = 120
files["spec"] = { std = "+busted" }
exclude_files = { "build", "build-asan", "build-lint" }
-- one case per line reads best in the table of error cases
files["spec/06-errors_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/15-loss_errors_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/11-finite_diff_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/21-algebra_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/22-criterion_state_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/23-generic_spec.lua"] = { std = "+busted", max_line_length = false }
files["spec/44-nn_api_spec.lua"] = { std = "+busted", max_line_length = false }
-- the fuzzer's generators write Lua source in format strings (fuzz/lua),
-- and take the generator state each call whether they use it or not
files["fuzz"] = { max_line_length = 160, unused_args = false }
