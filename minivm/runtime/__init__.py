"""minivm.runtime."""
