"""minivm: a bytecode VM in Python that makes the global interpreter lock something you can
run, watch and change.

The Python API (``minivm/api.py``, docs/api.md): ``minivm.compile(source, filename=...)``,
``minivm.run(source_or_program, policy=..., check_interval=..., ...) -> Result`` and
``minivm.experiment(...) -> rows``, and ``minivm.prepare(...) -> Run`` (a run built, not yet
started). They are loaded on first use, so that the ``minivm``
command's start-up does not pay for them.
"""

__version__ = "0.1.0"

__all__ = ["Program", "Result", "Run", "__version__", "compile", "experiment", "prepare", "run"]

_API = ("Program", "Result", "Run", "compile", "experiment", "prepare", "run")


def __getattr__(name: str):
    """``minivm.run`` and friends, imported from ``minivm.api`` when first asked for."""
    if name in _API:
        from minivm import api

        return getattr(api, name)
    raise AttributeError(f"module 'minivm' has no attribute {name!r}")
