# PAIO — top-level build. `make help` lists the targets.
#
# The two commands a newcomer needs: `make run` and `make test`. Both install
# what is missing first (`make deps`), so they work on a fresh Debian 12 machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BUN        := node_modules/.bin/bun
OUT        := out
BUILD      := $(OUT)/build

# The architecture to build for: x86_64 (UEFI PCs, QEMU q35) or arm64 (arm64
# UEFI machines and QEMU virt, Raspberry Pi 3/4). BOARD picks what `make run`
# boots: pc (x86_64), virt or rpi3 (arm64). The JavaScript bundles and models
# are the same for both; PID 1, the exec helper, the kernel and the image are
# per architecture (arm64's under out/arm64/).
ARCH ?= x86_64
ifeq ($(ARCH),x86_64)
  ARCH_OUT   := $(OUT)
  ARCH_BUILD := $(BUILD)
  ARCH_CC    := gcc
  BOARD      ?= pc
  BOARDS     := pc
else ifeq ($(ARCH),arm64)
  ARCH_OUT   := $(OUT)/arm64
  ARCH_BUILD := $(BUILD)/arm64
  ARCH_CC    := aarch64-linux-gnu-gcc
  BOARD      ?= virt
  # rpi4: the Buildroot tree's Pi 4 build (QEMU 7.2 has no Pi 4 model to run it on)
  BOARDS     := virt rpi3 rpi4
else
  $(error unknown ARCH '$(ARCH)'; the architectures PAIO builds: x86_64, arm64)
endif
ifeq ($(filter $(BOARD),$(BOARDS)),)
  $(error unknown BOARD '$(BOARD)' for ARCH=$(ARCH); the boards: $(BOARDS))
endif
export PAIO_ARCH := $(ARCH)
CC_STATIC  := $(ARCH_CC) -static -Os -Wall -Wextra -Werror -std=gnu11

# Inputs the image assembler can be pointed elsewhere:
#   PAIO_KERNEL=DIR  a kernel directory (vmlinuz, config, optional lib/modules) instead of Debian's
#   PAIO_BUN=FILE    the Bun binary to put in the image
#   PAIO_STOCK_KERNEL=1  Debian's kernel instead of the patched one (make kernel)
export PAIO_KERNEL
export PAIO_BUN
# onnxruntime (training, tests, paio ask) must not try to upload telemetry.
export ORT_DISABLE_TELEMETRY := 1

.PHONY: help deps build models kernel image image-arm64 bundle test-updates release buildroot test-buildroot run test test-unit test-e2e test-arm64 bench bench-kernel load fuzz chaos traces reliability-report typecheck clean

help:
	@echo "PAIO make targets:"
	@echo "  make run        build the image if needed and boot it in QEMU (UEFI, serial console here)"
	@echo "                  ARCH=arm64 boots the arm64 image on QEMU virt; ARCH=arm64 BOARD=rpi3 the Pi image on raspi3b"
	@echo "  make test       install what is missing, build the images (x86_64 and arm64), run every test"
	@echo "  make deps       install host tools (Debian packages) and npm packages, idempotently"
	@echo "  make build      compile PID 1, the guest exec helper and the app bundles into $(BUILD)/"
	@echo "  make models     train the agent's ONNX models into $(OUT)/models/ and sign their manifest"
	@echo "  make kernel     build Debian's linux-source-6.1 with kernel-patches/ (cached in ~/.cache/paio/kernel)"
	@echo "  (on the host)   bin/paio flash IMAGE TARGET: write an image to an SD card or USB drive, verified (docs/flashing.md)"
	@echo "  make bundle     an update bundle of the image just built: $(OUT)/paio-VERSION-ARCH.raucb (docs/updates.md)"
	@echo "  make release    out/release/: the images as .xz with .bmap, SHA256SUMS, a Raspberry Pi Imager repository file"
	@echo "  make buildroot  build distro/ (Buildroot tree) offline from Debian's packages; needs BUILDROOT_DIR"
	@echo "                  ARCH=arm64 builds the QEMU virt/UEFI image, ARCH=arm64 BOARD=rpi4 the Raspberry Pi 4 one"
	@echo "  make image      assemble $(OUT)/paio-x86_64.img, rootfs.squashfs, vmlinuz, initrd.img, manifest"
	@echo "                  ARCH=arm64: $(OUT)/arm64/paio-arm64.img (UEFI, QEMU virt) and paio-rpi.img (Raspberry Pi 3/4)"
	@echo "  make test-unit  host-only tests (no QEMU)"
	@echo "  make test-e2e   tests that boot the image in QEMU"
	@echo "  make test-arm64 the whole end-to-end suite on the arm64 image (QEMU virt; long under emulation)"
	@echo "  make test-updates  every A/B update case in QEMU: good, bad, power cuts, refused bundles (long)"
	@echo "  make test-buildroot  build distro/ offline and boot it in QEMU (long; needs BUILDROOT_DIR)"
	@echo "  make bench      boot-time, size and memory figures, with a busybox-only baseline; network figures; the supervisor under load (make load)"
	@echo "  make bench-kernel  the kernel latency hint's effect on wake-up latency and its throughput cost (long)"
	@echo "  make load       the supervisor on the host with 500 units, 100 clients at once, 20 event subscribers; $(OUT)/reliability/load.json"
	@echo "  make chaos      the fault-injection campaign in QEMU: 10 fault classes x 10 runs, 50 power cuts (about 2 h;"
	@echo "                  PAIO_CHAOS_RUNS, PAIO_CHAOS_CUTS, PAIO_CHAOS_SEED; make test runs each class once)"
	@echo "  make traces     real metric traces with fault labels, from the image under the chaos workload (tests/traces/;"
	@echo "                  about 7 min a scenario; PAIO_TRACES=a,b picks scenarios): $(OUT)/traces/*.json.gz"
	@echo "  make reliability-report  docs/reliability.md from the last campaigns' results in $(OUT)/reliability/"
	@echo "  make fuzz       the long fuzzing runs: control and agent sockets, configuration and first-boot files, console"
	@echo "                  input; $(OUT)/reliability/fuzz-*.json (make test runs short ones)"
	@echo "  make typecheck  strict TypeScript check"
	@echo "  make clean      remove $(OUT)/ (downloaded Debian packages stay cached in ~/.cache/paio)"

deps:
	@sh image/install-deps.sh

# --- compiled parts -----------------------------------------------------------

$(ARCH_BUILD)/pid1: init/pid1.c
	@mkdir -p $(ARCH_BUILD)
	$(CC_STATIC) -o $@ $<

$(ARCH_BUILD)/qemu-exec: qemu/guest/qemu-exec.c
	@mkdir -p $(ARCH_BUILD)
	$(CC_STATIC) -o $@ $<

INIT_TS := $(shell find init lib -name '*.ts' 2>/dev/null)
AGENTS_TS := $(shell find agents -name '*.ts' -o -name '*.tsx' 2>/dev/null)
# The supervisor checks policy files with the agent's own parser (agents/guard/), so it depends on agents/ too.
$(BUILD)/supervisor.js: $(INIT_TS) $(AGENTS_TS) package-lock.json
	@mkdir -p $(BUILD)
	$(BUN) build --target=bun --outfile=$@ init/supervisor/main.ts

$(BUILD)/network.js: $(INIT_TS) package-lock.json
	@mkdir -p $(BUILD)
	$(BUN) build --target=bun --outfile=$@ init/network/main.ts

$(BUILD)/paio.js: $(INIT_TS) $(shell find agents -name '*.ts' 2>/dev/null) package-lock.json
	@mkdir -p $(BUILD)
	$(BUN) build --target=bun --external onnxruntime-node --outfile=$@ init/cli/paio.ts

$(BUILD)/agent.js: $(AGENTS_TS) $(INIT_TS) package-lock.json
	@mkdir -p $(BUILD)
	$(BUN) build --target=bun --external onnxruntime-node --outfile=$@ agents/agent/main.ts

# The console UI (ink). react-devtools-core, an optional import of ink's, is bundled too:
# left out, Bun fails at start with "Cannot find package".
$(BUILD)/console.js: $(AGENTS_TS) $(INIT_TS) package-lock.json
	@mkdir -p $(BUILD)
	$(BUN) build --target=bun --external onnxruntime-node --outfile=$@ agents/console/main.tsx

build: deps $(ARCH_BUILD)/pid1 $(ARCH_BUILD)/qemu-exec $(BUILD)/supervisor.js $(BUILD)/network.js $(BUILD)/paio.js $(BUILD)/agent.js $(BUILD)/console.js

# --- image --------------------------------------------------------------------

# Models are trained from the project's own generators and the training traces in
# tests/traces/recorded/, and judged on the held-out ones; cached by a hash of their code and data.
models: deps
	@$(BUN) agents/models/build.ts

# The patched kernel (kernel-patches/) for ARCH: built once, cached in
# ~/.cache/paio/kernel by a hash of its inputs; out/kernel (out/arm64/kernel) points at it.
kernel: deps
	@$(BUN) kernel-patches/build.ts

# The image uses the patched kernel unless PAIO_KERNEL names another kernel
# directory or PAIO_STOCK_KERNEL=1 asks for Debian's.
ifeq ($(PAIO_STOCK_KERNEL)$(PAIO_KERNEL),)
image: kernel
IMAGE_KERNEL := PAIO_KERNEL=$(CURDIR)/$(ARCH_OUT)/kernel
endif

# The assembler decides by itself whether anything changed (a hash of all inputs).
image: build models
	@$(IMAGE_KERNEL) $(BUN) image/build.ts

# The Buildroot external tree (distro/), built offline with the Buildroot tree
# at BUILDROOT_DIR from Debian's toolchain and sources; out/buildroot/ gets the
# disk image. The app and models come from this tree, as for the assembler.
buildroot: build models
	@PAIO_BOARD=$(BOARD) $(BUN) distro/offline/build.ts

# An update bundle of the image just built (docs/updates.md), signed with the
# development keys (made on first use in ~/.cache/paio/keys) or PAIO_KEY_DIR's:
# out/paio-VERSION-ARCH.raucb (out/arm64/ for arm64).
bundle: image
	@$(BUN) image/bundle.ts

# Release files for every image (xz, bmap, SHA256SUMS, a Raspberry Pi Imager
# repository, a release note) in out/release/.
release: image image-arm64
	@$(BUN) image/release.ts

run: image
	@bin/paio qemu run --arch $(ARCH) --board $(BOARD)

# --- tests --------------------------------------------------------------------

typecheck: deps
	node_modules/.bin/tsc --noEmit -p .

test-unit: build
	$(BUN) --bun node_modules/.bin/vitest run tests/unit

test-e2e: image
	$(BUN) --bun node_modules/.bin/vitest run tests/e2e

# Both architectures: the arm64 image is built too, and its short checks
# (tests/e2e/arm64.test.ts) run with the rest.
image-arm64:
	@$(MAKE) --no-print-directory image ARCH=arm64 BOARD=virt

test: image image-arm64 typecheck
	$(BUN) --bun node_modules/.bin/vitest run

# The whole end-to-end suite on the arm64 image, booted on QEMU virt (cortex-a72),
# then the long arm64 tests (tests/arm64/: the Pi image flashed and booted on raspi3b).
test-arm64: image image-arm64
	PAIO_TEST_ARCH=arm64 $(BUN) --bun node_modules/.bin/vitest run tests/e2e
	$(BUN) --bun node_modules/.bin/vitest run --config tests/arm64/vitest.config.ts

# Every update case in QEMU: the good update and the second one, each bad update,
# the power cuts, the refused bundles. make test runs the good update, the refused
# bundles and one bad update (a kernel that panics).
test-updates: image
	PAIO_UPDATE_CASES=all $(BUN) --bun node_modules/.bin/vitest run tests/e2e/update.test.ts

# The full offline Buildroot build and a boot of its image (too long for CI);
# skipped, saying why, without a Buildroot tree.
test-buildroot:
	@if [ -z "$$BUILDROOT_DIR" ]; then \
		echo "test-buildroot: skipped: BUILDROOT_DIR is not set (point it at a Buildroot 2025.02.x tree)"; \
	else \
		$(MAKE) --no-print-directory buildroot image && \
		$(BUN) --bun node_modules/.bin/vitest run --config tests/buildroot/vitest.config.ts; \
	fi

# The fuzzers at full length: 10,000 requests from 100 clients at once to the control
# socket and to the agent's socket; 10,000 mutants each of the unit, network, policy
# and first-boot files; 2,000 reads of console input. Each writes fuzz-NAME.json to
# $(OUT)/reliability/ (for make reliability-report); one that misses a goal fails
# naming itself and its seed (PAIO_FUZZ_SEED replays a run). make test runs each one
# short: 400 requests, 1,000 mutants, 150 reads.
FUZZ_TESTS := tests/unit/control-fuzz.test.ts tests/unit/agent-fuzz.test.ts tests/unit/config-fuzz.test.ts \
	tests/unit/provision-fuzz.test.ts tests/unit/console-fuzz.test.tsx
fuzz: build
	@mkdir -p $(OUT)/reliability
	PAIO_RELIABILITY_OUT=$(abspath $(OUT))/reliability PAIO_FUZZ_CASES=$${PAIO_FUZZ_CASES:-10000} PAIO_FUZZ_CLIENTS=$${PAIO_FUZZ_CLIENTS:-100} \
	PAIO_FUZZ_MUTANTS=$${PAIO_FUZZ_MUTANTS:-10000} PAIO_FUZZ_KEYS=$${PAIO_FUZZ_KEYS:-2000} \
		$(BUN) --bun node_modules/.bin/vitest run $(FUZZ_TESTS)

# The fault-injection campaign (tests/chaos/): every fault class PAIO_CHAOS_RUNS
# times in one guest running a realistic workload, then PAIO_CHAOS_CUTS power cuts
# during heavy writes. Writes $(OUT)/reliability/chaos.json; exits 1 naming the
# class and seed of every run that missed a goal.
chaos: image
	@$(BUN) tests/chaos/campaign.ts

# Labelled metric traces (tests/traces/): each scenario boots the image with the
# chaos workload and injects its faults at the times its seed gives; written to
# tests/traces/recorded/ (committed), where make models trains and judges. About an hour.
traces: image
	@$(BUN) tests/traces/record.ts

# docs/reliability.md, generated from the last results in $(OUT)/reliability/.
reliability-report:
	@$(BUN) tests/reliability/report.ts

bench: image image-arm64
	@$(BUN) tests/bench/ask-bench.ts
	@$(BUN) tests/bench/boot-bench.ts
	@$(BUN) tests/bench/boot-bench.ts --arch arm64
	@$(BUN) tests/bench/supervisor-bench.ts
	@$(BUN) tests/bench/agent-bench.ts
	@$(MAKE) --no-print-directory bench-kernel
	@$(BUN) tests/bench/network-bench.ts
	@$(BUN) tests/bench/flash-bench.ts
	@$(BUN) tests/bench/update-bench.ts
	@$(BUN) tests/bench/load-bench.ts

# The kernel's latency hint: wake-up latency (median of 5 rounds of 60 s) on
# the kernel with and without kernel-patches/, and the patches' throughput
# cost. About 35 minutes, plus one kernel build the first time.
bench-kernel: image
	@$(BUN) tests/bench/kernel-bench.ts

# The supervisor under load on the host: start time, memory, idle CPU and request
# latency with 500 units beside 20, 100 clients at once, 20 event subscribers while
# units churn; a table, and the figures in out/reliability/load.json. About 2 minutes.
load: deps
	@$(BUN) tests/bench/load-bench.ts

clean:
	rm -rf $(OUT)
