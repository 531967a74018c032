"""The versioning service: DVC dataset versions.

A skeleton until its issue lands: the package, its settings and its dependencies are in the
workspace so the lock and the layout are settled once.
"""
