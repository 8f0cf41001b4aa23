"""Release and environment files: loading, schema checks, and the typed model."""
