"""Built-in studies: reproductions of the papers' figures, one module each.

``STUDIES`` maps a study name to its :class:`~lazylab.studies.base.Study` record; ``lazylab list``
prints the names and descriptions and ``lazylab reproduce NAME`` runs one
(:func:`~lazylab.studies.base.reproduce`). A study module defines ``STUDY = Study(...)`` and is
registered here by one import line and one :func:`register` call. The registry is data, never
an if/elif chain over names.
"""

from __future__ import annotations

from lazylab.studies.base import SCALES, Study, reproduce, resolve_study

__all__ = ["STUDIES", "Study", "SCALES", "register", "reproduce", "resolve_study"]

STUDIES: dict[str, Study] = {}


def register(study: Study) -> Study:
    """Add a study to :data:`STUDIES` (ValueError on a duplicate name)."""
    if study.name in STUDIES and STUDIES[study.name] is not study:
        raise ValueError(f"a study named {study.name!r} is already registered")
    STUDIES[study.name] = study
    return study


# One import and one register() line per study module.
from lazylab.studies import ghorbani_fig1, ghorbani_fig2  # noqa: E402

register(ghorbani_fig1.STUDY)
register(ghorbani_fig2.STUDY)
from lazylab.studies import damian_onestep, xie_semirandom, yehudai_shamir  # noqa: E402

register(yehudai_shamir.STUDY)
register(xie_semirandom.STUDY)
register(damian_onestep.STUDY)
