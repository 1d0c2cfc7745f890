"""tfpersist: persist, freeze and ship TensorFlow models reproducibly.

Importing the package is cheap: no module imports TensorFlow at import time except those
that build or run graphs (architectures, model, training, export, freeze, frozen, evaluation).
"""

__version__ = "0.1.0"
