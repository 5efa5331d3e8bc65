"""The book's ``common/config.py``: ``from rnnfast.compat import config`` where a script has
``from common import config``.  rnnfast runs on the CPU: ``GPU`` is False, and setting it True changes
nothing (``to_gpu`` returns NumPy arrays)."""

GPU = False
