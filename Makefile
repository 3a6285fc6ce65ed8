# segloss — build, test and install.
#
#   make            build build/segloss/core.so in the tree
#   make test       install missing Debian packages, build, run the busted suite
#   make run        install missing packages, build, run the main example
#   make asan       the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fault      allocation fault injection and the full-disk spec (build-fault/,
#                   docs/reliability.md), a few minutes
#   make lint       luacheck, and the C build with warnings as errors
#   make test-arm   the NEON backend under qemu: the kernels and a C driver
#                   (test/arm/kernels.c) cross-compiled for AArch64, every kernel
#                   against the scalar reference (about 4 minutes on the 2-core
#                   dev VM, 200 s of it under qemu; KERNELS_POINTS=1e6 for 1.5)
#   make test-kernels  the same driver natively (SSE2 and AVX2 against scalar)
#   make valgrind   valgrind memcheck on tools/valgrind_run.lua (every layer, every
#                   backend, 1 and 2 threads) with a plain -O1 -g build in build-vg/:
#                   no error, no definite or indirect leak (about 2 minutes)
#   make test-threads  several Lua states in several OS threads at once
#                   (test/threads/two_states.c): every result bit-identical to one
#                   state alone (about 10 s)
#   make fuzz-c     the libFuzzer harnesses (fuzz/c: .npy, .npz, checkpoints, PNG,
#                   options), FUZZ_SECONDS (60) each under ASan + UBSan (clang)
#   make fuzz-lua   the Lua API fuzzer (fuzz/lua/api.lua) under ASan + UBSan for
#                   FUZZ_LUA_SECONDS (2 x FUZZ_SECONDS = 120) from FUZZ_SEED (a new seed each run unless
#                   given); a finding prints its repro, exit status 1
#   make memtest    the memory limit beyond the suite (tools/memtest.lua): big
#                   requests refused, a 2 GiB tensor through Dice and BCE,
#                   4 GiB of zeros left unwritten, 500 U-Net steps at a flat
#                   resident size; then the extra memory of every loss,
#                   metric and network step (tools/memory_figures.lua), about
#                   3 minutes and 7 GiB
#   make bench      the benchmarks, about 7.5 minutes on the 2-core dev VM, progress
#                   on stderr: vector math against libm and SLEEF; losses and
#                   combinations against the memory floor and PyTorch; the newer
#                   losses (Lovász, boundary, Hausdorff, clDice, ...) against
#                   their PyTorch peers; metrics against SciPy; a U-Net training
#                   step against PyTorch; the per-call overhead of criteria and
#                   functional losses
#   make bench-full the same with every PyTorch median of 7 calls (= make bench
#                   BENCH=full; 6.5 minutes there, more when busy); the quick
#                   default gives PyTorch's slow configurations (B, C) 3 calls
#   make bench-newer the newer losses against their PyTorch peers alone
#                   (tools/bench_torch_newer.py + bench/newer.lua, about 1 minute;
#                   a loss not yet in the registry is skipped with a line saying so)
#   make bench-unet the U-Net step alone (bench/unet.lua)
#   make bench-overhead  what a call costs beyond its kernels (bench/overhead.lua, about 3 s)
#   make bench-conv the convolutions layer by layer against PyTorch (6 minutes)
#   make bench-conv-choice  oneDNN against im2col + OpenBLAS (the choice)
#   make docs       regenerate what derives from the loss registry: docs/losses.lua,
#                   docs/criteria.lua and README.md's lists (tools/gen_docs.lua)
#   make doc        the API reference in doc/ (LDoc, config.ld), after make docs
#   make install    install through LuaRocks (offline, rockspec/)
#
# LuaRocks passes CFLAGS, LIBFLAG, LUA_INCDIR and SIMDE_INCDIR on the command
# line; the project's own flags live in SL_CFLAGS, which it does not touch.

LUA ?= lua5.4
LUA_INCDIR ?= /usr/include/lua5.4
SIMDE_INCDIR ?= /usr/include
CFLAGS ?= -O2
LIBFLAG ?= -shared
BUILD ?= build

WARN = -Wall -Wextra -Wconversion -Wdouble-promotion -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wpointer-arith -Wno-psabi
# OPENMP= (empty) builds without OpenMP: the pragmas are ignored, one thread
# (the libFuzzer harnesses, built with clang, need no libomp that way)
OPENMP = -fopenmp
SL_CFLAGS = -std=c11 -fPIC $(OPENMP) -ffp-contract=off -fvisibility=hidden $(WARN) \
            -I$(LUA_INCDIR) -I$(SIMDE_INCDIR) $(EXTRA_CFLAGS)
ALL_CFLAGS = $(CFLAGS) $(SL_CFLAGS)
LDLIBS = -ldnnl -lzip -lpng -lm
# never unloaded: lua_close dlcloses C modules, and libgomp's idle worker
# threads must not outlive the code they sleep in
MODULE_LDFLAGS = -Wl,-z,nodelete

# The SIMD backends: each source of ISA_SRCS gives one object per ISA, ISA
# flags on those objects only.
MACHINE := $(shell $(CC) -dumpmachine)
ifneq (,$(filter x86_64% i686% i386%,$(MACHINE)))
ISAS = avx2 sse2
else
ISAS = neon
endif
ISA_SRCS = simd loss_simd
SIMD_OBJS = $(foreach s,$(ISA_SRCS),$(foreach i,$(ISAS),$(BUILD)/obj/$(s)_$(i).o))

SRCS = src/core.c src/ops.c src/rng.c src/mem.c src/npy.c src/npz.c src/outfile.c src/shape.c \
       src/bind/check.c src/bind/opts.c src/bind/tensor.c src/bind/print.c src/bind/loss.c src/bind/criterion.c src/bind/metrics.c \
       src/bind/npz.c src/bind/conv.c src/bind/nn.c src/bind/data.c src/bind/kernels.c \
       $(sort $(wildcard src/loss/*.c)) src/metrics/edt.c src/nn/conv.c src/nn/layers.c src/nn/norm.c \
       src/data/augment.c src/data/synth.c src/data/png.c \
       src/kern/scalar.c src/kern/nn_scalar.c src/kern/loss_scalar.c src/kern/dispatch.c src/kern/vmcheck.c
# The fault build (make fault, FAULT=1): src/bind/fault.c and the module
# linked with --wrap for each allocating call, so that segloss's own calls
# go through the counters of fault.c; nothing of it in any other build.
FAULT_WRAPPED = malloc calloc realloc aligned_alloc posix_memalign strdup realpath fopen fdopen opendir
ifdef FAULT
SRCS += src/bind/fault.c
MODULE_LDFLAGS += $(foreach f,$(FAULT_WRAPPED),-Wl,--wrap=$(f))
endif
OBJS = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS)) $(SIMD_OBJS)
HDRS = $(wildcard src/*.h src/*/*.h src/*/*.inc)
MODULE = $(BUILD)/segloss/core.so

# Debian packages: what the tests need, and what the extras need.
PKGS_TEST = lua5.4 liblua5.4-dev libsimde-dev lua-busted lua-cjson lua-argparse gcc make libc6-dev \
            libzip-dev libdnnl-dev libpng-dev insighttoolkit5-examples
PKGS_RUN = insighttoolkit5-examples
PKGS_LINT = lua-check
PKGS_BENCH = libsleef-dev lua-system lua-cjson
PKGS_INSTALL = luarocks
PKGS_DOC = lua-ldoc
PKGS_ARM = gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libsimde-dev gcc libc6-dev make

PKGS_VALGRIND = valgrind

.PHONY: all test test-arm test-kernels run asan memtest fault fuzz fuzz-lua fuzz-c fuzz-c-bins lint valgrind test-threads test-threads-asan bench bench-full bench-newer bench-unet bench-overhead bench-conv bench-conv-choice docs doc install rock-install deps deps-% clean FORCE
PKGS_FUZZ = clang libclang-rt-14-dev

BUSTED = $(LUA) /usr/bin/busted --ignore-lua


all: $(MODULE)

# Rebuild everything when the flags change (e.g. LuaRocks' CFLAGS after a dev build).
$(BUILD)/.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(LIBFLAG) $(MODULE_LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS) $(LIBFLAG) $(MODULE_LDFLAGS)' > $@

$(BUILD)/obj/%.o: src/%.c $(HDRS) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The flags of each ISA's objects (simd_<isa>.o, loss_simd_<isa>.o, and the
# benchmark's sleef_<isa>.o): the 128-bit path is one source for SSE2 and NEON.
ISA_FLAGS_avx2 = -DSL_ISA_AVX2 -mavx2 -mfma
ISA_FLAGS_sse2 = -DSL_ISA_128
ISA_FLAGS_neon = -DSL_ISA_128

$(BUILD)/obj/simd_%.o: src/kern/simd.c $(HDRS) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ISA_FLAGS_$*) -c $< -o $@

$(BUILD)/obj/loss_simd_%.o: src/kern/loss_simd.c $(HDRS) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ISA_FLAGS_$*) -c $< -o $@

$(MODULE): $(OBJS) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) $(MODULE_LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

# Install what is missing (Debian; we may be root on a fresh machine).
deps: deps-test
deps-test: ; @sh tools/deps.sh $(PKGS_TEST)
deps-lint: ; @sh tools/deps.sh $(PKGS_LINT)
deps-bench: ; @sh tools/deps.sh $(PKGS_BENCH)
deps-install: ; @sh tools/deps.sh $(PKGS_INSTALL)
deps-doc: ; @sh tools/deps.sh $(PKGS_DOC)
deps-fuzz: ; @sh tools/deps.sh $(PKGS_FUZZ)
deps-run: ; @sh tools/deps.sh $(PKGS_RUN)
deps-arm: ; @sh tools/deps.sh $(PKGS_ARM)
deps-valgrind: ; @sh tools/deps.sh $(PKGS_VALGRIND)

test: deps-test
	@$(MAKE) --no-print-directory all
	@$(BUSTED)

# Every SIMD backend against the scalar reference without Lua: the Lua-free
# kernels, the loss driver and the nn drivers linked with test/arm/kernels.c
# (vector math accuracy and special values, every loss kernel variant, bad
# inputs, the network's kernels; the specs' tolerances). make test-kernels
# runs it natively; make test-arm cross-compiles it for AArch64 into
# $(ARM_BUILD)/ (the Makefile then picks ISAS = neon from the compiler),
# counts the NEON instructions in the neon objects, and runs it under qemu;
# on an x86-64 host it first runs the native driver for sse2 and then
# requires neon's results to hash to the same bits (one 128-bit source).
# KERNELS_POINTS: inputs per function of the accuracy sweeps (spec 04's 1e7).
KERNELS_POINTS ?= 10000000
KTEST_SRCS = src/ops.c src/mem.c src/loss/driver.c src/loss/region.c src/nn/layers.c src/nn/norm.c \
             src/kern/scalar.c src/kern/nn_scalar.c src/kern/loss_scalar.c src/kern/dispatch.c \
             src/kern/vmcheck.c
KTEST_OBJS = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(KTEST_SRCS)) $(SIMD_OBJS)
$(BUILD)/test_kernels: test/arm/kernels.c $(KTEST_OBJS) $(HDRS)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ test/arm/kernels.c $(KTEST_OBJS) -lm

test-kernels: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/test_kernels
	@$(BUILD)/test_kernels --points $(KERNELS_POINTS)

ARM_CC ?= aarch64-linux-gnu-gcc
ARM_OBJDUMP ?= aarch64-linux-gnu-objdump
ARM_BUILD ?= build-arm
QEMU_ARM ?= qemu-aarch64 -L /usr/aarch64-linux-gnu
test-arm: deps-arm
	@echo "test-arm: cross-compiling the kernels and test/arm/kernels.c for AArch64 ($(ARM_CC), $(ARM_BUILD)/)" >&2
	@$(MAKE) --no-print-directory CC=$(ARM_CC) BUILD=$(ARM_BUILD) $(ARM_BUILD)/test_kernels
	@n=$$($(ARM_OBJDUMP) -d $(ARM_BUILD)/obj/simd_neon.o $(ARM_BUILD)/obj/loss_simd_neon.o | grep -cE '\bv[0-9]+\.4s'); \
	echo "test-arm: $$n NEON instructions on 4 float lanes in simd_neon.o and loss_simd_neon.o" >&2; \
	[ "$$n" -ge 1000 ] || { echo "test-arm: the neon objects hold no NEON code" >&2; exit 1; }
	@set -e; same=; \
	case "$$(gcc -dumpmachine 2>/dev/null)" in x86_64*) \
		echo "test-arm: the same driver natively for sse2, whose bits neon must reproduce" >&2; \
		$(MAKE) --no-print-directory $(BUILD)/test_kernels; \
		$(BUILD)/test_kernels --only sse2 --points $(KERNELS_POINTS) --hashes $(ARM_BUILD)/sse2.hashes >/dev/null; \
		same="--same-bits $(ARM_BUILD)/sse2.hashes";; \
	esac; \
	echo "test-arm: running under $(QEMU_ARM)" >&2; \
	$(QEMU_ARM) $(ARM_BUILD)/test_kernels --points $(KERNELS_POINTS) --expect neon $$same

# The main job: the built-in study (docs/study.md) — every loss trained on
# synthetic small targets and lesions in MRI slices — in one process per
# core; the summary on the terminal, the report in results/report.html.
# Extra flags of segloss compare: make run RUN_ARGS="--quick".
RUN_ARGS ?=
run: deps-test deps-run
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) $(LUA) bin/segloss compare --out results --jobs $(shell nproc 2>/dev/null || echo 1) $(RUN_ARGS)

# The suite under ASan + UBSan, built apart in build-asan/.
# intercept_tls_get_addr=0: LeakSanitizer (gcc 12) crashes at exit reading the
# dynamic TLS of libdnnl in OpenMP worker threads (a garbage DTLS range); this
# leaves dynamic TLS out of the leak scan, nothing else.
ASAN_LIBS = $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so)
asan: deps-test
	@$(MAKE) --no-print-directory all BUILD=build-asan CFLAGS="-O1 -g" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
	@LD_PRELOAD="$(ASAN_LIBS)" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:intercept_tls_get_addr=0 \
		LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(BUSTED) --run=asan

# valgrind memcheck on a representative script (tools/valgrind_run.lua) with
# a plain build in build-vg/ (valgrind cannot run an ASan build); the
# suppressions, each for third-party code, in spec/support/valgrind.supp.
# VALGRIND_SECONDS (600) bounds the run; tools/valgrind.sh prints the summary.
VALGRIND_SECONDS ?= 600
valgrind: deps-test deps-valgrind
	@$(MAKE) --no-print-directory all BUILD=build-vg CFLAGS="-O1 -g"
	@VALGRIND_SECONDS=$(VALGRIND_SECONDS) sh tools/valgrind.sh build-vg

# Lua states in OS threads at once (test/threads/two_states.c, linked with
# liblua5.4 and pthread, loading segloss from $(BUILD)/): THREADS_STATES
# states, THREADS_ITERS iterations each, every result compared bit for bit
# with one state alone. With BUILD=build-asan it runs under ASan (make
# test-threads-asan).
THREADS_STATES ?= 2
THREADS_ITERS ?= 8
$(BUILD)/test/two_states: test/threads/two_states.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=c11 -g $(WARN) $(EXTRA_CFLAGS) -I$(LUA_INCDIR) -o $@ $< -llua5.4 -pthread
test-threads: deps-test
	@$(MAKE) --no-print-directory all $(BUILD)/test/two_states
	@$(LUA_ENV) $(THREADS_ENV) $(BUILD)/test/two_states test/threads/workload.lua $(THREADS_STATES) $(THREADS_ITERS)
test-threads-asan: deps-test
	@$(MAKE) --no-print-directory test-threads BUILD=build-asan CFLAGS="-O1 -g" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
		THREADS_ENV="ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:intercept_tls_get_addr=0 LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"

# Allocation fault injection (tools/fault.lua, docs/reliability.md): the
# module built apart in build-fault/ with src/bind/fault.c and --wrap, under
# ASan+UBSan+LSan; for each scenario every k up to FAULT_MAX (then a seeded
# sample of FAULT_SAMPLE) makes the k-th allocation fail. Then the full-disk
# spec (58) on the same build. Exit non-zero on any finding or leak.
FAULT_MAX ?= 250
FAULT_SAMPLE ?= 100
FAULT_ENV = LD_PRELOAD="$(ASAN_LIBS)" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:intercept_tls_get_addr=0 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan-fault.supp \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fault: deps-test
	@echo "fault: building build-fault/ (ASan+UBSan, -DSL_FAULT_INJECT, --wrap)" >&2
	@$(MAKE) --no-print-directory all FAULT=1 BUILD=build-fault CFLAGS="-O1 -g" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DSL_FAULT_INJECT"
	@echo "fault: the full-disk and unwritable-place spec (spec/58-disk_spec.lua)" >&2
	@$(FAULT_ENV) $(BUSTED) --cpath='build-fault/?.so' spec/58-disk_spec.lua >&2
	@echo "fault: allocation failures (tools/fault.lua --max $(FAULT_MAX) --sample $(FAULT_SAMPLE))" >&2
	@$(FAULT_ENV) LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="build-fault/?.so;;" \
		$(LUA) tools/fault.lua --max $(FAULT_MAX) --sample $(FAULT_SAMPLE)

# The Lua API fuzzer under the sanitizers of make asan (the same module in
# build-asan/), in a scratch directory (garbage taken for a path writes
# there), bounded by FUZZ_LUA_SECONDS, progress on stderr, a per-function
# table and the summary line on stdout. The source of the call running goes
# to $(BUILD)/fuzz-last-call.lua first: when the process dies (a signal, a
# sanitizer's report) that file is the repro and is printed here.
FUZZ_SECONDS ?= 60
FUZZ_LUA_SECONDS ?= $(shell echo $$(( 2 * $(FUZZ_SECONDS) )))
FUZZ_CALLS ?= 100000000
FUZZ_SEED ?= $(shell date +%s)
# max_allocation_size_mb: an allocation above 2 GiB fails (the library must
# say so cleanly) instead of taking the machine's memory; SEGLOSS_FUZZ_BIG=1
# lets the generators ask for such sizes.
ASAN_FUZZ_ENV = OMP_WAIT_POLICY=passive SEGLOSS_FUZZ_BIG=1 LD_PRELOAD="$(ASAN_LIBS)" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:intercept_tls_get_addr=0:max_allocation_size_mb=2048 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/spec/support/lsan.supp \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fuzz-lua: deps-test
	@$(MAKE) --no-print-directory all BUILD=build-asan CFLAGS="-O1 -g" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
	@dir=$$(mktemp -d); last=$(CURDIR)/build-asan/fuzz-last-call.lua; rm -f $$last; \
	cd $$dir && SEGLOSS_FUZZ_DIR=$$dir $(ASAN_FUZZ_ENV) \
		LUA_PATH_5_4="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH_5_4="$(CURDIR)/build-asan/?.so;;" \
		$(LUA) $(CURDIR)/fuzz/lua/api.lua --seed $(FUZZ_SEED) --calls $(FUZZ_CALLS) --seconds $(FUZZ_LUA_SECONDS) --last $$last; \
	rc=$$?; rm -rf $$dir; \
	if [ -s $$last ]; then echo "fuzz-lua: the process died (exit $$rc) in this call:" >&2; cat $$last >&2; \
		echo "fuzz-lua: seed $(FUZZ_SEED): the process died (exit $$rc); repro above and in $$last"; exit 1; fi; \
	exit $$rc

# Both fuzzers for a bounded time: FUZZ_LUA_SECONDS (2 x FUZZ_SECONDS) for
# the Lua API fuzzer, FUZZ_SECONDS for each libFuzzer harness (5 of them).
fuzz: fuzz-lua fuzz-c
# MEMTEST_SIZE: the side of the images memory_figures measures at.
MEMTEST_SIZE ?= 512
memtest: deps-test
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) $(LUA) tools/memory_figures.lua --size $(MEMTEST_SIZE) --md $(BUILD)/memory_figures.md
	@$(LUA_ENV) $(LUA) tools/memtest.lua

lint: deps-test deps-lint
	luacheck --no-color -q lua spec bench examples tools bin test fuzz
	@$(MAKE) --no-print-directory all build-lint/test_kernels BUILD=build-lint EXTRA_CFLAGS=-Werror
	@$(CC) $(ALL_CFLAGS) -Werror -DSL_FAULT_INJECT -c src/bind/fault.c -o build-lint/obj/bind/fault.o

# Vector math (C), then the losses against the memory floor and, when
# python3-torch is installed, against PyTorch in the same run; then the newer
# losses against their PyTorch peers (tools/peers.py), 1 thread; then the
# metrics against SciPy; then a U-Net training step and inference against
# PyTorch (bench/unet.lua, also alone as make bench-unet). Each stage says on stderr what it does and how far it
# is ("bench: ... [seconds since the start]"); the tables go to stdout and to
# $(BUILD)/bench_*.md. BENCH=quick (default): PyTorch gets 3-7 interleaved
# rounds per shape and thread count, as many as fit in 10 s after the first;
# the newer losses' peers 2-5 rounds within 8 s per shape, a peer slower than
# 3 s a call (clDice at shapes B and D3) two calls; BENCH=full: 7 rounds
# everywhere, 5 for the newer losses' peers.
LUA_ENV = LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="$(BUILD)/?.so;;"
BENCH ?= quick
ifeq ($(BENCH),full)
BENCH_TORCH_ARGS = --runs 7
BENCH_NEWER_ARGS = --runs 5
BENCH_UNET_ROUNDS = 3
else ifeq ($(BENCH),quick)
BENCH_TORCH_ARGS = --runs 7 --budget 10 --min-runs 3
BENCH_NEWER_ARGS = --runs 5 --budget 8 --min-runs 2 --slow 3
BENCH_UNET_ROUNDS = 2
else
$(error BENCH=$(BENCH): use BENCH=quick (default) or BENCH=full)
endif
# The newer losses (stage 5, and make bench-newer): the PyTorch peers write
# the inputs and their times (numpy alone: the inputs, no times), then
# segloss runs on the same .npy files; the table in $(BUILD)/bench_newer.md.
BENCH_NEWER = if /usr/bin/python3 -c "import numpy" 2>/dev/null; then \
		/usr/bin/python3 tools/bench_torch_newer.py --dir $(BUILD) $(BENCH_NEWER_ARGS) && \
		$(LUA_ENV) $(LUA) bench/newer.lua --dir $(BUILD) --md $(BUILD)/bench_newer.md; \
	else echo "(python3-numpy is not installed: no newer-loss benchmark)"; fi
bench: deps-test deps-bench
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory $(BUILD)/bench_vmath
	@set -e; BENCH_T0=$$(date +%s); export BENCH_T0; \
	stage() { echo "bench: ($$1/9) $$2 [$$(( $$(date +%s) - BENCH_T0 )) s]" >&2; }; \
	stage 1 "vector math against libm and SLEEF, 7 functions x each backend ($(BUILD)/bench_vmath)"; \
	$(BUILD)/bench_vmath; \
	echo; \
	rm -f $(BUILD)/bench_torch.json; torch=; \
	if /usr/bin/python3 -c "import torch" 2>/dev/null; then \
		stage 2 "PyTorch losses and combinations, BENCH=$(BENCH) (tools/bench_torch.py)"; \
		/usr/bin/python3 tools/bench_torch.py --out $(BUILD)/bench_torch.json $(BENCH_TORCH_ARGS); \
		torch="--torch $(BUILD)/bench_torch.json"; \
	else \
		stage 2 "(python3-torch is not installed: no PyTorch column)"; \
	fi; \
	stage 3 "segloss losses against the memory floor (bench/losses.lua)"; \
	$(LUA_ENV) $(LUA) bench/losses.lua $$torch --md $(BUILD)/bench_losses.md; \
	echo; \
	stage 4 "segloss combinations (bench/combos.lua)"; \
	$(LUA_ENV) $(LUA) bench/combos.lua $$torch --md $(BUILD)/bench_combos.md; \
	echo; \
	stage 5 "newer losses against their PyTorch peers, 1 thread (tools/bench_torch_newer.py, bench/newer.lua)"; \
	$(BENCH_NEWER); \
	echo; \
	if /usr/bin/python3 -c "import scipy" 2>/dev/null; then \
		stage 6 "SciPy metrics (tools/bench_scipy_metrics.py)"; \
		/usr/bin/python3 tools/bench_scipy_metrics.py --dir $(BUILD); \
		stage 7 "segloss metrics (bench/metrics.lua)"; \
		$(LUA_ENV) $(LUA) bench/metrics.lua --dir $(BUILD) --md $(BUILD)/bench_metrics.md; \
	else \
		echo "(python3-scipy is not installed: no metrics benchmark against SciPy)"; \
	fi; \
	echo; \
	stage 8 "U-Net training step and inference against PyTorch, $(BENCH_UNET_ROUNDS) rounds (bench/unet.lua)"; \
	$(LUA_ENV) $(LUA) bench/unet.lua --rounds $(BENCH_UNET_ROUNDS) --md $(BUILD)/bench_unet.md; \
	echo; \
	stage 9 "per-call overhead of criteria and functional losses on small tensors (bench/overhead.lua)"; \
	$(LUA_ENV) $(LUA) bench/overhead.lua --md $(BUILD)/bench_overhead.md; \
	echo "bench: done in $$(( $$(date +%s) - BENCH_T0 )) s (BENCH=$(BENCH))" >&2

bench-full:
	@$(MAKE) --no-print-directory bench BENCH=full

bench-newer: deps-test deps-bench
	@$(MAKE) --no-print-directory all
	@BENCH_T0=$$(date +%s); export BENCH_T0; $(BENCH_NEWER); \
	echo "bench: newer losses done in $$(( $$(date +%s) - BENCH_T0 )) s (BENCH=$(BENCH))" >&2

bench-unet: deps-test deps-bench
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) $(LUA) bench/unet.lua --rounds $(BENCH_UNET_ROUNDS) --md $(BUILD)/bench_unet.md

bench-overhead: deps-test deps-bench
	@$(MAKE) --no-print-directory all
	@$(LUA_ENV) $(LUA) bench/overhead.lua --md $(BUILD)/bench_overhead.md

# bench_vmath links the Lua-free kernels and SLEEF, built per ISA like simd.c
KERN_OBJS = $(filter-out $(BUILD)/obj/core.o $(BUILD)/obj/bind/%,$(OBJS))
$(BUILD)/bench/sleef_%.o: bench/vmath_sleef.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc $(ISA_FLAGS_$*) -c $< -o $@
$(BUILD)/bench_vmath: bench/vmath.c $(KERN_OBJS) $(BUILD)/bench/sleef_avx2.o $(BUILD)/bench/sleef_sse2.o
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $^ -lsleef $(LDLIBS)

# Convolutions layer by layer against PyTorch (tools/bench_torch_conv.py runs
# $(BUILD)/bench_conv and PyTorch in interleaved rounds, best against best).
$(BUILD)/bench_conv: bench/conv.c $(BUILD)/obj/nn/conv.o $(BUILD)/obj/ops.o
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $^ $(LDLIBS)
bench-conv: deps-test
	@$(MAKE) --no-print-directory $(BUILD)/bench_conv
	@/usr/bin/python3 tools/bench_torch_conv.py --conv $(BUILD)/bench_conv $(BENCH_CONV_ARGS)

# Why oneDNN: its convolution forward against im2col + OpenBLAS SGEMM, one
# thread, the 2-D benchmark U-Net's 3x3 layers (README, Networks).
$(BUILD)/bench_conv_openblas: bench/conv_openblas.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=c11 -Wall -o $@ $< -lopenblas
bench-conv-choice: deps-test deps-bench
	@sh tools/deps.sh libopenblas-dev
	@$(MAKE) --no-print-directory all $(BUILD)/bench_conv_openblas
	@$(LUA_ENV) $(LUA) bench/conv_choice.lua $(BUILD)/bench_conv_openblas 3

# libFuzzer harnesses (fuzz/c, docs/reliability.md): the .npy reader, the
# .npz reader, checkpoints through segloss.nn.load, the PNG reader and the
# option parser, built with Debian's clang under ASan + UBSan in build-fuzz/
# (the module's objects too, without OpenMP) and run FUZZ_SECONDS each from
# a working corpus in build-fuzz/corpus/<h> seeded from fuzz/c/corpus/<h>.
# FUZZ_C picks harnesses. The last line: runs per harness; a crash stops
# with its input saved under build-fuzz/crash/ and the exit status 1.
FUZZ_C ?= npy npz png opts checkpoint
FUZZ_SAN = -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CC = clang -O1 -g -std=c11 -Wall -Wextra -fsanitize=fuzzer,address,undefined $(FUZZ_SAN) -Isrc -Ifuzz/c \
          -I$(LUA_INCDIR) -DSL_FUZZ_ROOT='"$(CURDIR)"'
fuzz-c: deps-test deps-fuzz
	@$(MAKE) --no-print-directory fuzz-c-bins BUILD=build-fuzz CC=clang OPENMP= CFLAGS="-O1 -g" \
		EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined $(FUZZ_SAN)"
	@sh tools/fuzz_c.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_C)

fuzz-c-bins: $(patsubst %,$(BUILD)/fuzz_%,$(FUZZ_C))
FUZZ_DEPS = fuzz/c/common.h $(BUILD)/obj/outfile.o
$(BUILD)/fuzz_npy: fuzz/c/fuzz_npy.c $(FUZZ_DEPS) $(BUILD)/obj/npy.o $(BUILD)/obj/shape.o
	$(FUZZ_CC) -o $@ $< $(filter %.o,$^)
$(BUILD)/fuzz_npz: fuzz/c/fuzz_npz.c $(FUZZ_DEPS) $(BUILD)/obj/npz.o $(BUILD)/obj/npy.o $(BUILD)/obj/shape.o
	$(FUZZ_CC) -o $@ $< $(filter %.o,$^) -lzip
$(BUILD)/fuzz_png: fuzz/c/fuzz_png.c $(FUZZ_DEPS) $(BUILD)/obj/data/png.o $(BUILD)/obj/mem.o
	$(FUZZ_CC) -o $@ $< $(filter %.o,$^) -lpng -lm
# the Lua drivers: the whole module linked in, liblua5.4 underneath
$(BUILD)/fuzz_%: fuzz/c/fuzz_%.c fuzz/c/lua_harness.h $(FUZZ_DEPS) $(OBJS)
	$(FUZZ_CC) -o $@ $< $(OBJS) -llua5.4 $(LDLIBS)

# The pages that derive from the loss registry (spec 17 checks they are current).
docs: deps-test
	@$(MAKE) --no-print-directory all
	@$(LUA) tools/gen_docs.lua write

# The reference of the criteria (LDoc, config.ld) in doc/index.html.
doc: deps-doc docs
	ldoc .

install: deps-test deps-install
	luarocks --lua-version=5.4 make rockspec/segloss-0.1.0-1.rockspec

# Called by LuaRocks (rockspec install_target) with INST_LIBDIR, INST_LUADIR
# and INST_BINDIR (the command line, bin/segloss).
rock-install: $(MODULE)
	mkdir -p $(INST_LIBDIR)/segloss $(INST_LUADIR)/segloss
	cp $(MODULE) $(INST_LIBDIR)/segloss/core.so
	cp -R lua/segloss/. $(INST_LUADIR)/segloss/
	if [ -n "$(INST_BINDIR)" ]; then mkdir -p $(INST_BINDIR) && cp bin/segloss $(INST_BINDIR)/segloss; fi

clean:
	rm -rf build build-asan build-lint build-arm build-vg build-fault build-fuzz doc
