# MiniVmm build, test and demo entry points. See README.md.
DOTNET   ?= dotnet
CONFIG   ?= Release
OUT      ?= out
GUESTS   ?= $(OUT)/guests
PREFIX   ?= /usr/local
MINIVMM  := $(DOTNET) vmm/MiniVmm.Cli/bin/$(CONFIG)/net10.0/minivmm.dll
# Everything the NativeAOT binary is built from: it is rebuilt only when one of these changed.
SOURCES  := $(shell find vmm devices snapshot firmware -name '*.cs' -o -name '*.csproj' 2>/dev/null | grep -v '/obj/') Directory.Build.props Directory.Packages.props

.PHONY: all build format-check test test-unit test-integration guests linux-guest demo publish install uninstall bench bench-boot bench-snapshot bench-restore report experiments experiments-quick clean

all: build

build:
	$(DOTNET) build MiniVmm.sln -c $(CONFIG) -nologo -v q

# Layout drift against .editorconfig (whitespace and line breaks); `dotnet format whitespace --folder` fixes it.
format-check:
	$(DOTNET) format whitespace --folder --verify-no-changes --exclude $(OUT)

# The test command CI runs. Prints one "N passed, N failed, N skipped" line at the end. The Linux integration tests
# boot the Linux test guest (built once, then cached). The build itself runs the analyzers (warnings are errors).
test: format-check build linux-guest
	bash tests/run-tests.sh $(CONFIG)

test-unit: build
	bash tests/run-tests.sh $(CONFIG) --filter "FullyQualifiedName!~Integration"

test-integration: build linux-guest
	bash tests/run-tests.sh $(CONFIG) --filter "FullyQualifiedName~Integration"

guests: build
	$(MINIVMM) firmware --out $(GUESTS)

# The Linux test guest (README "Linux test guest"): $(OUT)/linux-guest/vmlinux and initramfs.cpio.gz, built from
# Debian's linux-source-6.1 and busybox-static; a no-op when its inputs are unchanged.
linux-guest:
	bash firmware/linux/build.sh $(OUT)/linux-guest

# Boots the hello guest, then snapshots a running writer guest, verifies the image and restores it, with the
# NativeAOT binary (built first if missing or older than the sources): the build the README's numbers are for.
demo: $(OUT)/minivmm
	$(OUT)/minivmm firmware --out $(GUESTS)
	bash experiments/demo.sh "$(OUT)/minivmm" "$(GUESTS)" "$(OUT)"

# NativeAOT single binary at out/minivmm.
publish: $(OUT)/minivmm

$(OUT)/minivmm: $(SOURCES)
	$(DOTNET) publish vmm/MiniVmm.Cli -c Release -r linux-x64 -p:PublishAot=true -o $(OUT)/publish -nologo
	cp $(OUT)/publish/minivmm $(OUT)/minivmm
	@echo "published $(OUT)/minivmm"

# Installs the NativeAOT binary as $(PREFIX)/bin/minivmm (PREFIX=$$HOME/.local for a user install; DESTDIR for packaging).
# With it the manual page (generated from the same command tree as --help) and the bash completion script.
install: $(OUT)/minivmm
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/share/man/man1" "$(DESTDIR)$(PREFIX)/share/bash-completion/completions"
	install -m 0755 $(OUT)/minivmm "$(DESTDIR)$(PREFIX)/bin/minivmm"
	$(OUT)/minivmm man > "$(DESTDIR)$(PREFIX)/share/man/man1/minivmm.1"
	$(OUT)/minivmm completion bash > "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/minivmm"
	@echo "installed $(DESTDIR)$(PREFIX)/bin/minivmm, its man page and bash completion"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/minivmm" "$(DESTDIR)$(PREFIX)/share/man/man1/minivmm.1" \
	  "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/minivmm"

bench-boot: publish guests
	bash experiments/bench-boot.sh $(OUT)/minivmm $(GUESTS)

bench-snapshot: publish guests
	bash experiments/bench-snapshot.sh $(OUT)/minivmm $(GUESTS)

bench-restore: publish guests
	@. experiments/need.sh && need qemu-system-x86_64 qemu-system-x86
	python3 experiments/bench_restore.py $(OUT)/minivmm $(GUESTS) $(OUT)/bench

# The experiments of experiments/run.sh (~20 min measured, 7.5 of them the cost-vs-guest-RAM stage; `experiments-quick` ~1 min), results and REPORT.md in experiments/.
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
