"""What ohf's getAvailableTemplates imports: one run under `python -X importtime`."""

from __future__ import annotations

import subprocess

from scenario import Tool


def profile(tool: Tool) -> list[tuple[str, float]]:
    """`-X importtime` of ohf's getAvailableTemplates: the costliest imports, (module, ms).

    Top-level imports and their direct children, by cumulative time, as the importer saw them.
    """
    path = tool.write_input("getAvailableTemplates", {})
    argv = [tool.prefix[0], "-X", "importtime", *tool.argv("getAvailableTemplates", path)[1:]]
    done = subprocess.run(
        argv, env=dict(tool.env), cwd=tool.root, capture_output=True, timeout=120, check=False
    )
    found = []
    for line in done.stderr.decode("utf-8", "replace").splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 1:
            found.append((name.strip(), int(parts[1]) / 1000))
    return sorted(found, key=lambda item: -item[1])[:12]
