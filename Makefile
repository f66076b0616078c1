# inspectd — build, test, run, benchmark.
#
#   make run     install what is missing, build, start the daemon on its embedded default config
#   make check   install what is missing, build (release + ASan/UBSan + libFuzzer), run every test
#                (with a few seconds of each fuzz target and one daemon run under valgrind); ends
#                with its ten slowest tests and `N passed, N failed`
#   make fuzz    build the libFuzzer targets (tests/fuzz) and run each for SECONDS (default 60),
#                in WORKERS processes (default 1); ends with one line per target:
#                `fuzz TARGET: N execs, N crashes`
#   make bench   every benchmark (prints figures; long)
#   make install [DESTDIR=dir] [PREFIX=/usr/local]   binary, systemd unit, sysusers, tmpfiles, config
#   make crash-test N=200   SIGKILL the daemon under load N times (20 of them run in make check)
#   make soak    an hour of capture, training and polling (DURATION=seconds to shorten)
#   make surfaces [OUT=var/surfaces]   write the surface-defect benchmark (MVTec AD layout)
#
# Sources are found by wildcard: core/*.c, drivers/*.c, daemon/ROOM/*.c, tests/unit/test_*.c (one
# cmocka binary each). BUILD=dir puts objects elsewhere (several trees can build side by side).
# Each layer is compiled with only the include paths it may use, so an arrow pointing up fails the
# build: core/ sees core/; drivers/ sees core/ and drivers/; daemon/ sees all three, and a daemon
# file names a header of another room by its room (`#include "store/store.h"`).

BUILD      ?= build
SAN_BUILD  ?= build-san
FUZZ_BUILD ?= build-fuzz
VG_BUILD   ?= build-vg
SECONDS    ?= 60
# seconds of each fuzz target in `make check`
FUZZ_SMOKE ?= 8
PYTHON    ?= /usr/bin/python3
ARCH      ?= -march=native
SAN       ?= 0

# pkg-config name : Debian package. `make deps` installs the packages whose .pc is missing.
PC_DEPS := openblas:libopenblas-dev libturbojpeg:libturbojpeg0-dev spng:libspng-dev \
           sqlite3:libsqlite3-dev libmicrohttpd:libmicrohttpd-dev jansson:libjansson-dev \
           inih:libinih-dev libarchive:libarchive-dev libsystemd:libsystemd-dev \
           cmocka:libcmocka-dev zlib:zlib1g-dev \
           aravis-0.8:libaravis-dev libusb-1.0:libusb-1.0-0-dev libmosquitto:libmosquitto-dev \
           libcurl:libcurl4-openssl-dev libcrypto:libssl-dev libmodbus:libmodbus-dev
# (aravis-0.8.pc names libusb-1.0 as a private requirement that libaravis-dev does not pull in)
# Debian packages needed by tests (checked with dpkg).
# clang + libclang-rt-14-dev build the libFuzzer targets; valgrind runs one daemon under memcheck;
# systemd: systemd-analyze verify/security, systemd-sysusers and systemd-tmpfiles check the
# installed unit files (test_install.sh).
DEB_DEPS := pkg-config python3 curl sqlite3 dataset-fashion-mnist openssl clang libclang-rt-14-dev \
            valgrind systemd chromium lugaru-data python3-numpy python3-pil mosquitto \
            mosquitto-clients python3-pymodbus python3-torch python3-torchvision python3-onnx \
            python3-opencv prometheus
# chromium: the review page in a headless browser (test_browser.py).
# mosquitto, mosquitto-clients: the MQTT broker the line-output tests start on loopback and its
# subscriber, mosquitto_sub (test_mqtt.py); python3-pymodbus: the Modbus TCP client of test_plc.py.
# lugaru-data (34 MB): the photographed surfaces tests/bench/make_surfaces.py cuts products from
# (test_make_surfaces.py); it reads them with python3-pil and python3-numpy.
# python3-torch, python3-torchvision: tools/torch (the PyTorch trainer, test_torch.py);
# python3-onnx, python3-opencv: the ONNX export checked by onnx.checker and OpenCV's dnn
# (test_onnx.py); prometheus: promtool checks the README's Prometheus configs (test_prometheus.py).
# Debian packages needed only by benchmarks (the peers we compare against).
BENCH_DEBS := python3-faiss wrk

PKGS := $(foreach d,$(PC_DEPS),$(firstword $(subst :, ,$(d))))

# oneDNN (core/gemm_onednn.c): the default GEMM backend; `make WITH_ONEDNN=0` builds with OpenBLAS
# alone (and `make deps` then does not install libdnnl-dev, which has no .pc file). Defines
# INSPECTD_WITH_ONEDNN when built. Debian's libdnnl runs on OpenMP (libgomp).
WITH_ONEDNN ?= 1
ifeq ($(WITH_ONEDNN),1)
ONEDNN_DEBS := libdnnl-dev
endif

# libcamera (drivers/*.cpp, C++17): built when pkg-config finds it; `make WITH_LIBCAMERA=0` leaves it
# out (and `make deps` then does not install it). Defines INSPECTD_WITH_LIBCAMERA when built.
# libcamera-ipa holds the image-processing modules that sensors behind an ISP (Raspberry Pi) need.
ifneq ($(WITH_LIBCAMERA),0)
LIBCAMERA_DEPS := libcamera:libcamera-dev
LIBCAMERA_DEBS := libcamera-ipa
HAVE_LIBCAMERA := $(shell pkg-config --exists libcamera 2>/dev/null && echo 1)
endif

.PHONY: all deps torchrun-compat bench-deps run check build-all test test-san clean format install fuzz fuzz-build \
        fuzz-bins fuzz-seeds valgrind-build bench bench-train bench-embed bench-score bench-camera bench-ingest \
        bench-knn bench-latency bench-http bench-tiles bench-line eval-fmnist surfaces crash-test soak
.DEFAULT_GOAL := all

define install_missing
	@missing=""; \
	for pair in $(1); do pc=$${pair%%:*}; deb=$${pair##*:}; \
	  pkg-config --exists $$pc 2>/dev/null || missing="$$missing $$deb"; done; \
	for deb in $(2); do \
	  dpkg-query -W -f='$${Status}' $$deb 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$deb"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; }; \
	fi
endef

deps:
	$(call install_missing,$(PC_DEPS) $(LIBCAMERA_DEPS),$(DEB_DEPS) $(LIBCAMERA_DEBS) $(ONEDNN_DEBS))
	@$(MAKE) --no-print-directory torchrun-compat

# Debian's torchrun (torch 1.13) cannot start on Python 3.11 (tools/torch/torchrun_compat.py says
# why); this installs the hook that fixes it into $(PYTHON)'s site directory, once.
TORCHRUN_SITE = $(shell $(PYTHON) -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
torchrun-compat:
	@site="$(TORCHRUN_SITE)"; [ -n "$$site" ] || exit 0; \
	if ! cmp -s tools/torch/torchrun_compat.py "$$site/inspectd_torchrun_compat.py"; then \
	  echo "installing $$site/inspectd_torchrun_compat.py (torchrun on Python 3.11)"; \
	  mkdir -p "$$site" && cp tools/torch/torchrun_compat.py "$$site/inspectd_torchrun_compat.py" && \
	  echo 'import inspectd_torchrun_compat; inspectd_torchrun_compat.install()' \
	    > "$$site/inspectd-torchrun-compat.pth"; fi

bench-deps: deps
	$(call install_missing,,$(BENCH_DEBS))

# --- flags --------------------------------------------------------------------------------------
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else ifeq ($(SAN),fuzz)
# clang only: every object carries libFuzzer's coverage hooks; tests/fuzz binaries add its main.
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
       -fno-sanitize-recover=undefined
else
OPT := -O3 -g $(ARCH)
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS := -D_GNU_SOURCE $(PKG_CFLAGS)
CORE_INC   := -Icore
DRV_INC    := -Icore -Idrivers
DAEMON_INC := -Icore -Idrivers -Idaemon
CFLAGS   := -std=c11 $(OPT) -Wall -Wextra -Werror -Wno-unused-parameter -pthread -MMD -MP $(EXTRA_CFLAGS)
LDFLAGS  := $(OPT) -pthread
LDLIBS   := $(PKG_LIBS) -lm
CXXFLAGS := -std=c++17 $(OPT) -Wall -Wextra -Werror -Wno-unused-parameter -pthread -MMD -MP
ifeq ($(WITH_ONEDNN),1)
CPPFLAGS += -DINSPECTD_WITH_ONEDNN
LDLIBS   += -ldnnl -lgomp
endif
ifeq ($(HAVE_LIBCAMERA),1)
CPPFLAGS += -DINSPECTD_WITH_LIBCAMERA
CXXFLAGS += $(shell pkg-config --cflags libcamera)
LDLIBS   += $(shell pkg-config --libs libcamera) -lstdc++
CXX_SRC  := $(wildcard drivers/*.cpp)
endif

# --- sources ------------------------------------------------------------------------------------
CORE_SRC   := $(wildcard core/*.c)
ifneq ($(WITH_ONEDNN),1)
CORE_SRC   := $(filter-out core/gemm_onednn.c,$(CORE_SRC))
endif
DRV_SRC    := $(wildcard drivers/*.c)
DAEMON_SRC := $(filter-out daemon/cli/main.c,$(wildcard daemon/*.c daemon/*/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
ifneq ($(HAVE_LIBCAMERA),1)
UNIT_SRC   := $(filter-out tests/unit/test_libcam.c,$(UNIT_SRC))
endif
BENCH_SRC  := $(wildcard tests/bench/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
# Files embedded into the binary: each becomes `const unsigned char embed_<name>[]` + `_len`.
EMBED      := $(sort $(wildcard schema/*.sql)) $(wildcard daemon/*/*.html) \
              $(wildcard daemon/*/*.yaml) \
              $(wildcard systemd/inspectd.conf)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
CORE_OBJ   := $(call obj,$(CORE_SRC))
DRV_OBJ    := $(call obj,$(DRV_SRC)) $(patsubst %.cpp,$(BUILD)/%.o,$(CXX_SRC))
EMBED_OBJ  := $(BUILD)/gen/embed.o
DAEMON_OBJ := $(call obj,$(DAEMON_SRC)) $(EMBED_OBJ)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BIN  := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

LIBS := $(BUILD)/libdaemon.a $(BUILD)/libdrivers.a $(BUILD)/libcore.a

all: $(BUILD)/inspectd $(UNIT_BIN) $(BENCH_BIN)

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CORE_INC) $(CFLAGS) -c $< -o $@

$(BUILD)/drivers/%.o: drivers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(DRV_INC) $(CFLAGS) -c $< -o $@

$(BUILD)/drivers/%.o: drivers/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(DRV_INC) $(CXXFLAGS) -c $< -o $@

$(BUILD)/daemon/%.o: daemon/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(DAEMON_INC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcore.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^
$(BUILD)/libdrivers.a: $(DRV_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^
$(BUILD)/libdaemon.a: $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

# embed.c: one byte array per embedded file, plus a table to find them by path.
$(BUILD)/gen/embed.c: $(EMBED) Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* generated by make from: $(EMBED) */'; echo '#include "base/embedded.h"'; \
	  i=0; for f in $(EMBED); do \
	    echo "static const unsigned char e$$i[] = {"; \
	    od -An -v -tx1 "$$f" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; \
	    i=$$((i+1)); done; \
	  echo 'const struct embed_file embed_files[] = {'; \
	  i=0; for f in $(EMBED); do \
	    echo "{\"$$f\", e$$i, sizeof e$$i - 1},"; i=$$((i+1)); done; \
	  echo '{0, 0, 0}};'; } > $@.tmp && mv $@.tmp $@
$(EMBED_OBJ): $(BUILD)/gen/embed.c
	$(CC) $(CPPFLAGS) $(DAEMON_INC) $(CFLAGS) -Wno-missing-field-initializers -c $< -o $@

$(BUILD)/inspectd: $(BUILD)/daemon/cli/main.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(DAEMON_INC) $(CFLAGS) -Itests/unit -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/bench/%: tests/bench/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(DAEMON_INC) $(CFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(DAEMON_INC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBS) $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

# The seed corpora are committed; this rewrites them (tests/fuzz/seeds.c) with the release build.
$(BUILD)/fuzz-seeds: tests/fuzz/seeds.c $(LIBS)
	$(CC) $(CPPFLAGS) $(DAEMON_INC) $(CFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

fuzz-seeds: $(BUILD)/fuzz-seeds
	./$(BUILD)/fuzz-seeds

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- the two README commands --------------------------------------------------------------------
run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	exec ./$(BUILD)/inspectd run

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) SAN=1 all
	@$(MAKE) --no-print-directory fuzz-build
	@$(MAKE) --no-print-directory valgrind-build
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SMOKE) \
	    INSPECTD_VALGRIND_BIN=$(CURDIR)/$(VG_BUILD)/inspectd tests/run.sh $(BUILD) $(SAN_BUILD)

test: all
	@$(MAKE) --no-print-directory valgrind-build
	@INSPECTD_VALGRIND_BIN=$(CURDIR)/$(VG_BUILD)/inspectd tests/run.sh $(BUILD)

# The daemon that tests/integration/test_valgrind.py runs under memcheck: the release build
# without AVX-512 (valgrind 3.19 stops at the first AVX-512 instruction -march=native emits) and
# without oneDNN (its JIT-compiled kernels are AVX-512 too): the OpenBLAS backend.
VG_ARCH := $(ARCH)$(if $(filter x86_64,$(shell uname -m)), -mno-avx512f)
valgrind-build:
	@$(MAKE) --no-print-directory BUILD=$(VG_BUILD) ARCH="$(VG_ARCH)" WITH_ONEDNN=0 $(VG_BUILD)/inspectd

# The libFuzzer targets, built with clang in their own tree (libcamera's C++ driver left out).
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) SAN=fuzz CC=clang CXX=clang++ \
	    WITH_LIBCAMERA=0 fuzz-bins

# Each target for SECONDS, one after the other (crashes under $(FUZZ_BUILD)/fuzz/crashes/), each
# with WORKERS processes at once (libFuzzer's fork mode when above 1).
WORKERS ?= 1
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_WORKERS=$(WORKERS) tests/fuzz/run.sh $(FUZZ_BUILD) $(SECONDS)

format:
	clang-format -i $(CORE_SRC) $(DRV_SRC) $(wildcard drivers/*.cpp) $(DAEMON_SRC) daemon/cli/main.c \
	    $(UNIT_SRC) $(BENCH_SRC) $(FUZZ_SRC) \
	    $(wildcard core/*.h drivers/*.h daemon/*/*.h tests/unit/*.h)

# --- install (FHS) -------------------------------------------------------------------------------
# PREFIX/bin/inspectd, the unit in PREFIX/lib/systemd/system (its ExecStart rewritten to BINDIR),
# sysusers.d and tmpfiles.d entries beside it, and SYSCONFDIR/inspectd/inspectd.conf from
# systemd/inspectd.conf unless a config is already there. Without DESTDIR (a live install as root)
# the user and directories are created at once; `systemctl daemon-reload` is then up to you.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

SUBST := -e 's|/usr/local/bin/inspectd|$(BINDIR)/inspectd|g' -e 's|/etc/inspectd|$(SYSCONFDIR)/inspectd|g'

install: $(BUILD)/inspectd
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/inspectd
	install -m 0755 $(BUILD)/inspectd $(DESTDIR)$(BINDIR)/inspectd
	sed $(SUBST) systemd/inspectd.service > $(DESTDIR)$(UNITDIR)/inspectd.service
	sed $(SUBST) systemd/inspectd.tmpfiles > $(DESTDIR)$(TMPFILESDIR)/inspectd.conf
	chmod 0644 $(DESTDIR)$(UNITDIR)/inspectd.service $(DESTDIR)$(TMPFILESDIR)/inspectd.conf
	install -m 0644 systemd/inspectd.sysusers $(DESTDIR)$(SYSUSERSDIR)/inspectd.conf
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/inspectd/inspectd.conf ]; then \
	  echo "keeping $(DESTDIR)$(SYSCONFDIR)/inspectd/inspectd.conf (the default is systemd/inspectd.conf)"; \
	else \
	  echo "install -m 0640 systemd/inspectd.conf $(DESTDIR)$(SYSCONFDIR)/inspectd/inspectd.conf"; \
	  install -m 0640 systemd/inspectd.conf $(DESTDIR)$(SYSCONFDIR)/inspectd/inspectd.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
	  echo "systemd-sysusers; systemd-tmpfiles --create"; \
	  systemd-sysusers $(SYSUSERSDIR)/inspectd.conf && \
	  systemd-tmpfiles --create $(TMPFILESDIR)/inspectd.conf; \
	fi

# --- benchmarks (long; print their figures) ------------------------------------------------------
bench: bench-train bench-embed bench-score bench-camera bench-ingest bench-knn bench-latency bench-http \
       bench-tiles bench-line

bench-train: bench-deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock tests/bench/compare.sh train 3

# Frames/s one core sustains scoring 64 px frames with the default model, one at a time and in
# the scorer's batches of 16 (after decoding); ends with c_score_b16_frames_per_s.
bench-score: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock ./$(BUILD)/bench/bench_score

# Small defects in big frames, input fit against tiles: image and pixel AUROC at 1280x960 with
# defects of a few pixels, scoring latency per frame of 1, 4 and 16 tiles on one core (p50/p99),
# and the daemon's frame -> result p99 at 20 fps with 16 tiles a frame while training.
bench-tiles: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock nice -n 5 $(PYTHON) tests/bench/tiles.py $(BUILD)

# Exact k-NN against FAISS IndexFlatL2 on the same data: banks 10k/100k x 192, batch 1 and 64;
# ends with knn_time_ratio_vs_faiss_q64 (inspectd time / FAISS time).
bench-knn: bench-deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock $(PYTHON) tests/bench/knn_compare.py $(BUILD)

# Frame -> result latency at 20 fps with a training run beside the daemon; ends with
# frame_to_result_p99_ms.
bench-latency: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock $(PYTHON) tests/bench/latency.py $(BUILD)

# Frame captured -> the line told, at 20 fps with a training run beside the daemon: the MQTT result
# at a subscriber of a mosquitto broker on loopback, the Modbus result read by a pymodbus client,
# p50/p99 of each; then the capture rate with the broker killed beside the rate with it up. Ends
# with line_mqtt_p99_ms: X modbus_p99_ms: Y.
bench-line: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock $(PYTHON) tests/bench/line_latency.py $(BUILD)

# wrk on loopback against /api/v1/alerts and /metrics for 20 s while the daemon captures at 20 fps
# and scores every frame; ends with http_p99_ms: X errors: N.
bench-http: bench-deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock $(PYTHON) tests/bench/http_load.py $(BUILD)

bench-embed: bench-deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock tests/bench/compare.sh embed 3

# Frames/s and CPU from Aravis's fake GigE Vision camera over loopback: into the driver alone, then
# through a running daemon into SQLite.
bench-camera: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock ./$(BUILD)/bench/bench_camera
	flock /tmp/inspectd-heavy.lock $(PYTHON) tests/bench/camera_to_db.py $(BUILD)

# 640x480 JPEG frames through queue -> writer -> SQLite: 3 runs of 20 s, plus 10 s of raw frames
# encoded on the way in; ends with ingest_frames_per_s (median).
bench-ingest: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock ./$(BUILD)/bench/bench_ingest --seconds 20 --runs 3 --raw-seconds 10

# Crash safety: the daemon under load (camera at full speed, retention, scoring, retraining) killed
# with SIGKILL at N random moments and restarted; after each kill the database's integrity, every
# frame it reported committed, and the active model's files are checked. Ends with
# `crash_runs: N corrupt: 0 lost: 0`. make check runs it with N = 20.
N ?= 200
crash-test: deps
	@$(MAKE) --no-print-directory all
	CRASH_RUNS=$(N) INSPECTD_BIN=$(CURDIR)/$(BUILD)/inspectd \
	    flock /tmp/inspectd-heavy.lock $(PYTHON) tests/integration/test_crash.py

# An hour (DURATION=seconds) of 30 fps capture, retraining and HTTP polling: daemon RSS at start
# and end (growth < 5 %), open files, frames accounted for.
DURATION ?= 3600
soak: deps
	@$(MAKE) --no-print-directory all
	DURATION=$(DURATION) INSPECTD_BIN=$(CURDIR)/$(BUILD)/inspectd \
	    flock /tmp/inspectd-heavy.lock $(PYTHON) tests/soak/soak.py

# The full one-class protocol: 10 classes x 10 minutes of training each (about 2 hours).
eval-fmnist: deps
	@$(MAKE) --no-print-directory all
	flock /tmp/inspectd-heavy.lock ./$(BUILD)/inspectd eval --dataset fashion-mnist --minutes 10

# The surface-defect benchmark (tests/bench/README.md): products cut from lugaru-data's photographs
# with scratches, stains, holes and cracks drawn on them, in the MVTec AD layout under OUT;
# SURFACES_ARGS passes more options (--seed, --size, --categories, --train, --test-good, --per-defect).
OUT ?= var/surfaces
surfaces: deps
	$(PYTHON) tests/bench/make_surfaces.py --out $(OUT) $(SURFACES_ARGS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD) $(VG_BUILD)
