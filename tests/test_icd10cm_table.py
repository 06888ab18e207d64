"""The ICD-10-CM release table answers exactly as the pinned ``simple-icd-10-cm`` release it is derived from."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from needlecheck.mappings import icd10cm
from needlecheck.mappings.errors import MappingError


@pytest.fixture(scope="module")
def library():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm
    return simple_icd_10_cm


@pytest.fixture(scope="module")
def fresh_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[icd10cm.ReleaseTable]:
    """A table derived anew into an empty cache directory (not the suite's shared one)."""
    directory = tmp_path_factory.mktemp("icd10cm-cache")
    saved = os.environ.get("NEEDLECHECK_CACHE_DIR")
    os.environ["NEEDLECHECK_CACHE_DIR"] = str(directory)
    icd10cm.release_table.cache_clear()
    try:
        yield icd10cm.release_table()
    finally:
        if saved is None:
            del os.environ["NEEDLECHECK_CACHE_DIR"]
        else:
            os.environ["NEEDLECHECK_CACHE_DIR"] = saved
        icd10cm.release_table.cache_clear()


def test_every_code_has_the_release_parent_leaf_flag_and_title(fresh_table: icd10cm.ReleaseTable, library) -> None:  # type: ignore[no-untyped-def]
    codes = [code for code in library.get_all_codes(True) if not library.is_chapter_or_block(code)]
    assert len(codes) > 90_000
    for code in codes:
        assert fresh_table.entry(code) == (library.get_parent(code), library.is_leaf(code),
                                           library.get_description(code)), code


def test_chapters_blocks_and_non_codes_are_not_entries(fresh_table: icd10cm.ReleaseTable) -> None:
    for item in ("13", "M40-M54", "M54.52", "ZZZ", ""):
        assert fresh_table.entry(item) is None


def test_billable_codes_under_a_header_match_the_release(fresh_table: icd10cm.ReleaseTable, library) -> None:  # type: ignore[no-untyped-def]
    headers = [code for code in library.get_all_codes(True)
               if not library.is_chapter_or_block(code) and not library.is_leaf(code)]
    # Every musculoskeletal header, and a spread of the rest (seventh-character codes included).
    sample = [code for code in headers if code.startswith("M")] + headers[::97]
    for header in sample:
        expected = tuple(code for code in library.get_descendants(header) if library.is_leaf(code))
        assert fresh_table.leaves_under(header) == expected, header


def test_the_table_is_written_once_and_reused(fresh_table: icd10cm.ReleaseTable) -> None:
    modified = fresh_table.path.stat().st_mtime_ns
    icd10cm.release_table.cache_clear()
    assert icd10cm.release_table().path == fresh_table.path
    assert fresh_table.path.stat().st_mtime_ns == modified
    assert not [p for p in fresh_table.path.parent.iterdir() if p.name.endswith(".partial")]


def test_an_unwritable_cache_directory_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("NEEDLECHECK_CACHE_DIR", str(blocker / "cache"))
    icd10cm.release_table.cache_clear()
    try:
        with pytest.raises(MappingError, match=r"cannot write the ICD-10-CM table in .*not-a-directory"):
            icd10cm.release_table()
    finally:
        icd10cm.release_table.cache_clear()


def test_the_table_is_named_after_the_installed_library_version() -> None:
    from importlib.metadata import version

    assert icd10cm.library_version() == version("simple-icd-10-cm")
    assert icd10cm.release_table().path.name == f"icd10cm-simple-icd-10-cm-{version('simple-icd-10-cm')}.sqlite"
