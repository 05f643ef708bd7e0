"""Exceptions and warnings of revops-kit: one base class of errors, each a ``ValueError``; one of warnings.

Messages name the parameter, column or table in backticks, show the bad value
and say what is allowed, so the reader knows the next step.
"""

from __future__ import annotations


class RevOpsError(ValueError):
    """Base class of every error raised on purpose by revops-kit."""


class PeriodError(RevOpsError):
    """A period label or period arithmetic that cannot be understood."""


class SchemaError(RevOpsError):
    """Input data that break the data contract (see ``revops validate``).

    ``result`` holds the :class:`revops_lib.schema.ValidationResult` when the
    error comes from a validation run.
    """

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class SourceError(RevOpsError):
    """A data source that cannot be opened or a table that is not there."""


class ParameterError(RevOpsError):
    """A notebook or report parameter with a value that is not allowed."""


class OutputError(RevOpsError):
    """An output folder the kit will not write to (it holds other data) or cannot write to."""


# --- warnings: a result that is right but not final or only approximate -----------------------

class RevOpsWarning(UserWarning):
    """Base class of the warnings revops-kit issues about its own results."""


class ImmatureWarning(RevOpsWarning):
    """A figure rests on a window that is not over yet (a young cohort, a period in progress): it will
    still move. Reports draw such points apart and never put them in a headline."""


class ApproximationWarning(RevOpsWarning):
    """A test or interval whose approximation is weak here (e.g. a chi-square test with an expected
    count below 5, an interval undefined where a survival curve reaches 0)."""


class SmallSampleWarning(RevOpsWarning):
    """A rate resting on fewer observations than ``min_sample``: too few to read."""
