"""minivm.frontend."""
