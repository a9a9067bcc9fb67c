"""The registry of built-in studies: ``STUDIES`` (name -> :class:`~lazylab.studies.base.Study`).

A study module defines ``STUDY = Study(...)`` and is registered here by one import and one
:func:`register` line. The registry is data, never an if/elif chain over names. Tests and users
may :func:`register` their own studies at run time; ``lazylab list`` and ``lazylab reproduce``
see them.
"""

from __future__ import annotations

from lazylab.studies import (damian_onestep, ghorbani_fig1, ghorbani_fig2, xie_semirandom,
                             yehudai_shamir)
from lazylab.studies.base import Study

__all__ = ["STUDIES", "register", "resolve_study"]

STUDIES: dict[str, Study] = {}


def register(study: Study) -> Study:
    """Add a study to :data:`STUDIES` (ValueError on a duplicate name)."""
    if not isinstance(study, Study):
        raise TypeError(f"study must be a lazylab.studies.Study, got {type(study).__name__}")
    if study.name in STUDIES and STUDIES[study.name] is not study:
        raise ValueError(f"a study named {study.name!r} is already registered")
    STUDIES[study.name] = study
    return study


def resolve_study(name_or_study: str | Study) -> Study:
    """The registered study of that name (or the study itself); ValueError listing the names."""
    if isinstance(name_or_study, Study):
        return name_or_study
    if name_or_study not in STUDIES:
        allowed = ", ".join(sorted(STUDIES)) or "none are installed"
        raise ValueError(f"study {name_or_study!r} is unknown; allowed: {allowed}")
    return STUDIES[name_or_study]


register(ghorbani_fig1.STUDY)
register(ghorbani_fig2.STUDY)
register(yehudai_shamir.STUDY)
register(xie_semirandom.STUDY)
register(damian_onestep.STUDY)
