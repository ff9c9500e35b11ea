"""bpf-lsp: a language server for BPF C that checks the kernel verifier's ownership rules as you type."""
__version__ = "0.1.0"
