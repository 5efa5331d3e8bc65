"""rnnfast's private machinery: the compiled kernels (``kernels``: the one cell driver; ``layout``,
``mathfuncs``, ``blasbench``, ``config``), which build of them runs (``dispatch``), the plan of a call
(``plan``), its buffers and workspaces (``buffers``, ``workspace``), the Python driver (``driver``),
argument checks (``validation``, ``stepper_checks``), threads (``threads``) and ``show_config``.
Nothing here is public API."""
