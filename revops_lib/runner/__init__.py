"""The runner: build the report notebooks for periods, on warm kernels, into HTML and published tables.

- :mod:`.registry` — the reports (name, title, section module);
- :mod:`.parameters` — declared parameters, typed before any kernel starts;
- :mod:`.build` — :func:`run` (``revops report``): validate, run each notebook, render, record;
- :mod:`.kernels` — warm Jupyter kernels; :mod:`.export` — HTML; :mod:`.manifest`, :mod:`.index`;
- :mod:`.runfiles` — the output folder's lock, the run's private temporary folder, SIGTERM.
"""

import importlib

#: Public names and the module that holds each (imported on first use, so ``revops --help`` stays fast).
_EXPORTS = {
    "run": "build", "run_notebook": "build", "task_parameters": "build", "layered_parameters": "build",
    "build_key": "build", "Outcome": "build", "render_html": "export", "write_index": "index",
    "REPORTS": "registry", "Report": "registry", "select_notebooks": "registry", "NOTEBOOKS_DIR": "registry",
    "PARAMETERS_DIR": "registry",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"revops_lib.runner.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'revops_lib.runner' has no attribute {name!r}")
