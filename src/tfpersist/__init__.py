"""tfpersist: persist, freeze and ship TensorFlow models reproducibly.

Importing the package is cheap: only the modules that build, freeze or run graphs import
TensorFlow (tfcompat.import_tf); the CLI imports them inside the commands that need them, so
``tfpersist --help``, ``remote`` and the format and safety checks never load it.
"""

__version__ = "0.1.0"
