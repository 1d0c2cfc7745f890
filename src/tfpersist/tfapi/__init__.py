"""TensorFlow's own formats and library without its Python layer: its protocol buffer
messages (``protos``), data types (``dtypes``), arrays ↔ TensorProto (``tensors``), tensor
names (``tensornames``), its C library through ctypes (``capi``: op registry, shape
inference) — and the one place TensorFlow itself is imported, quietly (``tfcompat``).

Imports: core. TensorFlow only through ``tfcompat.import_tf``.
"""
