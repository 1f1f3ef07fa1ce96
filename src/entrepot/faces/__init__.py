"""HTTP faces: thin adapters from one API's wire format to the core.

Each face owns a path prefix and an error envelope. :data:`FACES` maps prefixes to
renderers so that errors raised anywhere under a face's prefix (including unknown routes
and wrong methods) are answered in that face's vocabulary.
"""
