"""The plumbing every layer uses: the one error users see (``errors``), writes that land whole
or not at all (``atomic``), content digests (``digests``), every shared path (``layout``) and
crash injection for the resume tests (``faults``).

Imports: nothing of tfpersist (the standard library only). No TensorFlow.
"""
