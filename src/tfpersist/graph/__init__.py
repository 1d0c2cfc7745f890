"""GraphDef plumbing: reading and writing GraphDefs with one-line errors and the op-registry
check (graphdefs), signatures and cards (signature), the surgery freezing does — pin
placeholders, lower and prune conditionals, rename, clear devices (surgery) — and --optimize.

Imports: core, tfapi, safety.
"""
