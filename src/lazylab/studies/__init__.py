"""Built-in studies: reproductions of the papers' figures, one module each.

``STUDIES`` (:mod:`.registry`) maps a study name to its :class:`~lazylab.studies.base.Study`
record; ``lazylab list`` prints the names and descriptions and ``lazylab reproduce NAME`` runs
one (:func:`~lazylab.studies.reproduce.reproduce`). This module only re-exports.
"""

from __future__ import annotations

from lazylab.studies.base import SCALES, Study
from lazylab.studies.registry import STUDIES, register, resolve_study
from lazylab.studies.reproduce import reproduce

__all__ = ["STUDIES", "Study", "SCALES", "register", "reproduce", "resolve_study"]
