"""Helpers that write small benchmark files in their published formats (parquet with Hugging Face image structs,
JSON, JSONL) for the loader tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = colour
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def image_struct(data: bytes | None, name: str = "x.png") -> dict[str, Any] | None:
    """A `datasets.Image` cell as stored in parquet: {"bytes", "path"}."""
    return None if data is None else {"bytes": data, "path": name}


def write_parquet(path: Path, rows: list[dict[str, Any]], schema: Any = None) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def image_type() -> Any:
    """The arrow type `datasets` writes for an Image feature."""
    import pyarrow as pa

    return pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
