"""Vietnamese text: stored NFC; searched through a diacritic-free key."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def nfc(text: str) -> str:
    """The NFC form, trimmed: what every stored Vietnamese text looks like."""
    return unicodedata.normalize("NFC", text).strip()


def search_key(text: str) -> str:
    """Lower case, no diacritics, đ as d, words separated by one space.

    "Vải thiều Lục Ngạn" and "vai thieu  luc ngan" give the same key, as do
    "Đa Mai" and "da mai".
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", stripped.lower())).strip()


def search_terms(query: str) -> list[str]:
    """The words of a search query, each to be found in the key."""
    return [term for term in search_key(query).split(" ") if term]
