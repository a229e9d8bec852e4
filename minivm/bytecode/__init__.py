"""minivm.bytecode."""
