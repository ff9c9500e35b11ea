# Two entry points for a fresh machine (Debian 12, Python 3.11, root):
#   make demo   - set everything up, then check the bundled examples
#   make test   - set everything up, then run the test suite
# Everything else here is a step those two take.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
BUILD  := .build
DEB_PACKAGES := clang-19 llvm-19 libbpf-dev bpftool neovim
STAMP  := $(VENV)/.installed

.PHONY: demo test setup system-packages headers selftests bytecode clean

demo: setup
	$(BIN)/bpf-lsp doctor
	-$(BIN)/bpf-lsp check -I $(BUILD) -I examples examples/*.bpf.c

test: setup selftests
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

setup: system-packages $(STAMP) headers bytecode

# The package's bytecode, written ahead: where PYTHONDONTWRITEBYTECODE is set, every `bpf-lsp
# check` would otherwise compile each module again (0.4 s of a one-file check).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q bpf_lsp >/dev/null

# Debian packages: the system compiler (the embedded ziglang one is the fallback),
# libbpf's headers, bpftool for vmlinux.h, llvm-objdump for line-info tests, Neovim for its e2e test.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

headers: $(BUILD)/vmlinux.h

# The kernel's BPF selftests, built and judged by the running kernel for tests/test_selftests.py
# (downloads linux-source-6.12 once; never fails: without network or bpf syscall the tests skip).
selftests: headers
	$(BIN)/python tests/selftests/build.py

$(BUILD)/vmlinux.h:
	mkdir -p $(BUILD)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

clean:
	rm -rf $(BUILD) $(VENV)
