# MiniVmm build, test and demo entry points. See README.md.
DOTNET   ?= dotnet
CONFIG   ?= Release
OUT      ?= out
GUESTS   ?= $(OUT)/guests
MINIVMM  := $(DOTNET) vmm/MiniVmm.Cli/bin/$(CONFIG)/net10.0/minivmm.dll

.PHONY: all build test test-unit test-integration guests demo publish bench bench-boot bench-snapshot bench-restore report experiments experiments-quick clean

all: build

build:
	$(DOTNET) build MiniVmm.sln -c $(CONFIG) -nologo -v q

# The test command CI runs. Prints one "N passed, N failed, N skipped" line at the end.
test: build
	bash tests/run-tests.sh $(CONFIG)

test-unit: build
	bash tests/run-tests.sh $(CONFIG) --filter "FullyQualifiedName!~Integration"

test-integration: build
	bash tests/run-tests.sh $(CONFIG) --filter "FullyQualifiedName~Integration"

guests: build
	$(MINIVMM) firmware --out $(GUESTS)

# Boots the hello guest, then snapshots a running writer guest, verifies the image and restores it.
demo: guests
	bash experiments/demo.sh "$(MINIVMM)" "$(GUESTS)" "$(OUT)"

# NativeAOT single binary at out/minivmm.
publish:
	$(DOTNET) publish vmm/MiniVmm.Cli -c Release -r linux-x64 -p:PublishAot=true -o $(OUT)/publish -nologo
	cp $(OUT)/publish/minivmm $(OUT)/minivmm
	@echo "published $(OUT)/minivmm"

bench-boot: publish guests
	bash experiments/bench-boot.sh $(OUT)/minivmm $(GUESTS)

bench-snapshot: publish guests
	bash experiments/bench-snapshot.sh $(OUT)/minivmm $(GUESTS)

bench-restore: publish guests
	python3 experiments/bench_restore.py $(OUT)/minivmm $(GUESTS) $(OUT)/bench

# The experiments of experiments/run.sh (~9 min measured; `experiments-quick` ~1 min), results and REPORT.md in experiments/.
experiments: publish guests
	bash experiments/run.sh $(OUT)/minivmm $(GUESTS)

experiments-quick: publish guests
	bash experiments/run.sh $(OUT)/minivmm $(GUESTS) --quick

# Tables and plots from the newest results: experiments/REPORT.md (needs gnuplot for the PNGs).
report:
	python3 experiments/report.py experiments/results

bench: bench-boot bench-snapshot bench-restore

clean:
	$(DOTNET) clean MiniVmm.sln -nologo -v q
	rm -rf $(OUT)
