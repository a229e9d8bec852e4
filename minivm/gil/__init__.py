"""minivm.gil."""
