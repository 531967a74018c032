"""The registry service: model imports from Hugging Face Hub into the catalog.

Consumes ``llmops.catalog`` (``ModelImportRequested``, ``ModelUpdateCheckRequested``) and reports
``model`` status events; see docs/registry.md.
"""
