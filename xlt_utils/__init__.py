"""xlt_utils: the engine of the xlt study (zero-shot cross-lingual transfer after intermediate-task training).

One task registry (:mod:`xlt_utils.tasks`), one record schema and pipeline per task format
(:mod:`xlt_utils.formats`), one training loop (:mod:`xlt_utils.train`), one evaluation path
(:mod:`xlt_utils.evaluate`) and one metrics entry point (:func:`xlt_utils.metrics.compute`).
Worlds (:mod:`xlt_utils.worlds`) only differ in where models and data come from.
"""

from xlt_utils.errors import XLTError

__version__ = "0.1.0"
__all__ = ["XLTError", "__version__"]
