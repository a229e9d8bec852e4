"""minivm: a bytecode VM in Python that makes the global interpreter lock something you can
run, watch and change.

The Python API (``minivm/api.py``, docs/api.md): ``minivm.compile(source, filename=...)``,
``minivm.run(source_or_program, policy=..., check_interval=..., ...) -> Result`` and
``minivm.experiment(...) -> rows``. They are loaded on first use, so that the ``minivm``
command's start-up does not pay for them.
"""

__version__ = "0.1.0"

__all__ = ["Program", "Result", "__version__", "compile", "experiment", "run"]

_API = ("Program", "Result", "compile", "experiment", "run")


def __getattr__(name: str):
    """``minivm.run`` and friends, imported from ``minivm.api`` when first asked for."""
    if name in _API:
        from minivm import api

        return getattr(api, name)
    raise AttributeError(f"module 'minivm' has no attribute {name!r}")
