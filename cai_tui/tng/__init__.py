"""TNG configurations as the real TNG parses them: pydantic models per version (``schema``) and the ``tng`` binary
itself as the judge where it is installed (``judge``)."""
