"""The built-in studies' names and one-line descriptions, without importing the studies.

``lazylab list`` prints this table so that it starts in a fraction of a second (the study modules
import torch and matplotlib); tests/test_cli.py checks it against ``lazylab.studies.STUDIES``.
"""

from __future__ import annotations

__all__ = ["BUILT_IN_STUDIES"]

BUILT_IN_STUDIES = {
    "damian-onestep": "Damian, Lee & Soltanolkotabi 2022: one gradient step learns at n ≍ d², "
                      "random features and the NTK do not",
    "ghorbani-fig1": "Ghorbani et al. 2019 Fig. 1: RF vs NT vs NN, quadratic target, exact at "
                     "n = ∞ and against n",
    "ghorbani-fig2": "Ghorbani et al. 2019 Fig. 2: RF vs NT vs NN, mixture of Gaussians, exact "
                     "at n = ∞ and against n",
    "kernel-curves": "kernel ridge (RF/NT kernels) against the staircase and its deterministic "
                     "equivalent; RF ridge double descent against Mei–Montanari",
    "lazy-rich": "Chizat, Oyallon & Bach 2019: risk against the laziness α, from the neural "
                 "tangent to the trained network (Theorem 3), quadratic target",
    "xie-semirandom": "Kawaguchi, Xie & Song 2018: semi-random units against random features and "
                      "a trained ReLU network (synthetic and digits)",
    "yehudai-shamir": "Yehudai & Shamir 2019: random features need many units for one ReLU "
                      "neuron, gradient descent needs one",
}
"""Name → first description line of lazylab.studies.STUDIES, repeated so that ``lazylab list``
imports no study (torch, matplotlib) unless lazylab.studies is loaded (tests/test_cli.py)."""
