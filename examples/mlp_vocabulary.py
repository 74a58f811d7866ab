"""MLPClassifier's parameters, and what each is called in LEGCPrunedClassifier.

Shown, with what it prints, in docs/user_guide.md::

    python examples/mlp_vocabulary.py
"""

from sklearn.neural_network import MLPClassifier

from sklegc import LEGCPrunedClassifier
from sklegc._vocabulary import MLP_EQUIVALENTS

ours = LEGCPrunedClassifier().get_params()
for name, default in sorted(MLPClassifier().get_params().items()):
    if name in ours:
        same = "same default" if ours[name] == default else f"default {ours[name]!r}"
        print(f"{name:20s} the same parameter ({same})")
    else:
        print(f"{name:20s} refused, use {MLP_EQUIVALENTS[name]}")
