"""The registry of built-in studies: ``STUDIES`` (name -> :class:`~lazylab.studies.base.Study`).

A study module defines ``STUDY = Study(...)`` and is registered here by one import and one
:func:`register` line. The registry is data, never an if/elif chain over names. Tests and users
may :func:`register` their own studies at run time; ``lazylab list`` and ``lazylab reproduce``
see them.
"""

from __future__ import annotations

from lazylab.studies.base import Study
from lazylab.studies.damian_onestep import STUDY as DAMIAN_ONESTEP
from lazylab.studies.ghorbani_fig1 import STUDY as GHORBANI_FIG1
from lazylab.studies.kernel_curves import STUDY as KERNEL_CURVES
from lazylab.studies.ghorbani_fig2 import STUDY as GHORBANI_FIG2
from lazylab.studies.lazy_rich import STUDY as LAZY_RICH
from lazylab.studies.xie_semirandom import STUDY as XIE_SEMIRANDOM
from lazylab.studies.yehudai_shamir import STUDY as YEHUDAI_SHAMIR

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


register(GHORBANI_FIG1)
register(GHORBANI_FIG2)
register(YEHUDAI_SHAMIR)
register(XIE_SEMIRANDOM)
register(DAMIAN_ONESTEP)
register(KERNEL_CURVES)
register(LAZY_RICH)
