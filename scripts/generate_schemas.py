"""Write the JSON Schemas of `ohf.schema` into `schemas/` (run by `nox -s schemas`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ohf.schema import all_schemas, render


def main() -> int:
    root = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parent.parent / "schemas"
    )
    for name, schema in all_schemas().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render(schema))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
