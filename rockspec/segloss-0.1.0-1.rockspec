rockspec_format = "3.0"
package = "segloss"
version = "0.1.0-1"

source = {
  url = "git+https://example.invalid/segloss.git",
  tag = "v0.1.0",
}

description = {
  summary = "Exact, fast segmentation losses for small targets, from Lua",
  detailed = [[
segloss computes the losses used to train segmentation networks on small
targets (weighted BCE, focal, Dice, IoU, Tversky, generalized Dice and their
combinations) with their gradients, in fused float32 SIMD kernels (AVX2,
SSE2/NEON, and a scalar reference chosen at run time), plus tensors with
NumPy .npy input/output, segmentation metrics, and 2-D/3-D U-Nets with
optimisers and .npz checkpoints to compare the losses by training.
]],
  license = "MIT",
  labels = { "machine-learning", "segmentation", "simd" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  SIMDE = { header = "simde/x86/avx2.h" },
  -- Debian libdnnl-dev (the convolutions) and libzip-dev (.npz checkpoints)
  DNNL = { header = "oneapi/dnnl/dnnl.h", library = "dnnl" },
  LIBZIP = { header = "zip.h", library = "zip" },
}

build = {
  type = "make",
  -- The Makefile owns the flags: simd.c is built once per ISA with its own.
  build_target = "all",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    SIMDE_INCDIR = "$(SIMDE_INCDIR)",
  },
  install_target = "rock-install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
    SIMDE_INCDIR = "$(SIMDE_INCDIR)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
  },
}

test = {
  -- busted cannot be fetched offline; the suite runs through the Makefile
  type = "command",
  command = "make test",
}
