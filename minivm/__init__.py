"""minivm: a bytecode VM in Python that makes the global interpreter lock something you can
run, watch and change."""

__version__ = "0.1.0"

__all__ = ["__version__"]
