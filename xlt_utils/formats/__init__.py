"""Task formats: record schemas (:mod:`.schema`) and their featurization pipelines (:mod:`.pipelines`)."""

from xlt_utils.formats.schema import SCHEMAS, validate_record, validate_records

__all__ = ["SCHEMAS", "validate_record", "validate_records"]
