"""The one error every loader raises, so start-up can name the file, row and field that is wrong."""

from __future__ import annotations


class MappingError(ValueError):
    """A data file in ``mappings/`` is malformed."""

    def __init__(self, file: str, row: int | None, field: str | None, problem: str) -> None:
        where = file if row is None else f"{file}, row {row}"
        if field:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.row = row
        self.field = field
