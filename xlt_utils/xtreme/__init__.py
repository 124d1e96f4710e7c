"""Helpers of the ``xtreme`` world (the real study): language inventories, reading Hugging Face Hub
datasets (or local copies in the Hub layout), schema mappers and the task catalog.

The world module :mod:`xlt_utils.worlds.xtreme` registers the catalog's tasks and exposes ``load``; this
package holds the pieces so that each stays small and testable:

- :mod:`xlt_utils.xtreme.languages`: language lists of XTREME / XTREME-R and per-dataset config names.
- :mod:`xlt_utils.xtreme.source`: one reader for every table, Hub or ``XLT_XTREME_LOCAL_DIR``, with a fast
  one-line failure when neither is reachable.
- :mod:`xlt_utils.xtreme.mappers`: Hub schema -> record schema of :mod:`xlt_utils.formats.schema`.
- :mod:`xlt_utils.xtreme.catalog`: the task entries (plain data).
"""
