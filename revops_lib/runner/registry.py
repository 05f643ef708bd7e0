"""The registry of reports: name → title, notebook, section module, typical build time.

One list (:data:`REPORTS`) read by the runner (which notebooks exist, their order, the longest first),
the warm-up of kernels (which modules to import), the HTML export (each report's footer of
definitions, the section's ``FOOTNOTES``) and the index — as papermill registers its translators and
engines, instead of name lists repeated in each of them.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from revops_lib.errors import ParameterError

__all__ = ["Report", "REPORTS", "register", "footnotes", "title", "ROOT", "NOTEBOOKS_DIR", "PARAMETERS_DIR",
           "notebook_names", "select_notebooks", "section_class"]


@dataclass(frozen=True)
class Report:
    """One report of the kit."""

    name: str  # the notebook (notebooks/<name>.ipynb) and the folder of its published tables
    title: str
    section: str  # the module of its section object (its ``build`` and ``FOOTNOTES``)
    typical_seconds: float = 2.0  # demo data, warm kernel: starts the longest first on a first build

    def footnotes(self) -> list[tuple[str, str]]:
        """The metric definitions shown in the report's footer."""
        return list(getattr(importlib.import_module(self.section), "FOOTNOTES", []))


#: Every report, in the order the index lists them.
REPORTS: dict[str, Report] = {}


def register(report: Report) -> Report:
    """Add a report to :data:`REPORTS` (replacing one of the same name)."""
    REPORTS[report.name] = report
    return report


for _r in (
    Report("revops_scorecard", "RevOps scorecard", "revops_lib.present.sections.scorecard", 2.0),
    Report("funnel_conversion", "Funnel conversion", "revops_lib.present.sections.funnel", 2.3),
    Report("forecast_accuracy", "Forecast accuracy", "revops_lib.present.sections.forecast", 2.2),
    Report("cohort_retention", "Cohort retention", "revops_lib.present.sections.retention", 1.5),
    Report("data_quality", "Data quality", "revops_lib.present.sections.quality", 1.3),
):
    register(_r)


def title(name: str) -> str:
    """A report's title (a notebook outside the registry: its name, capitalised)."""
    return REPORTS[name].title if name in REPORTS else name.replace("_", " ").capitalize()


def section_class(name: str):
    """The :class:`~revops_lib.present.section.Section` subclass of a report (None outside the registry)."""
    if name not in REPORTS:
        return None
    from revops_lib.present.section import Section

    mod = importlib.import_module(REPORTS[name].section)
    # (``issubclass(type(v), type)``, not ``isinstance``: that reads ``__class__``, which would load the
    # lazily loaded chart module the section imports, see revops_lib.present.charts)
    found = [v for v in vars(mod).values()
             if issubclass(type(v), type) and issubclass(v, Section) and v is not Section and v.report == name]
    return found[0] if found else None


def footnotes(name: str) -> list[tuple[str, str]]:
    """The metric definitions of a report's footer (none for a notebook outside the registry)."""
    return REPORTS[name].footnotes() if name in REPORTS else []

ROOT = Path(__file__).resolve().parents[2]


NOTEBOOKS_DIR = ROOT / "notebooks"


PARAMETERS_DIR = ROOT / "parameters"


def notebook_names(notebooks_dir: Path | None = None) -> list[str]:
    """Report notebooks present in ``notebooks/``, in report order."""
    present = {p.stem for p in Path(notebooks_dir or NOTEBOOKS_DIR).glob("*.ipynb")}
    return [n for n in REPORTS if n in present] + sorted(present - set(REPORTS))


def select_notebooks(notebooks, notebooks_dir: Path | None = None) -> list[str]:
    """The report names to build: all when ``notebooks`` is None, else exactly these (checked).

    Only report names are accepted — from the kit's registry (:data:`REPORTS`) for the kit's own
    ``notebooks/``, or the notebooks present in another ``notebooks_dir`` (tests, a fork) — never a
    path; no name twice; an empty list is an error.
    """
    nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR)
    kit = nb_dir.resolve() == NOTEBOOKS_DIR.resolve()
    available = [n for n in notebook_names(nb_dir) if not kit or n in REPORTS]
    if notebooks is None:
        return available
    if isinstance(notebooks, str):
        notebooks = notebooks.split(",")
    names = [str(n).strip() for n in notebooks]
    if not names or any(not n for n in names):
        raise ParameterError(f"`--notebooks` names an empty report; give report names separated by commas "
                             f"(available: {', '.join(available)}), or leave the option out to build all.")
    odd = [n for n in names if not re.fullmatch(r"[a-z0-9_]+", n)]
    if odd:
        raise ParameterError(f"`--notebooks` takes report names, not paths: {', '.join(repr(n) for n in odd[:3])} "
                             f"(available: {', '.join(available)}).")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ParameterError(f"`--notebooks` names {', '.join(f'`{d}`' for d in dup)} more than once.")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ParameterError(
            f"Unknown notebook(s) {', '.join(f'`{u}`' for u in unknown)}; available: {', '.join(available)}."
        )
    return names
