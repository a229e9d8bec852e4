"""minivm.observe."""
