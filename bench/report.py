"""Where every benchmark's figures go: printed, and written as JSON with the machine's facts."""

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_report(path: Path, report: dict[str, Any]) -> None:
    """``report`` plus the Python version, CPU count and load, written to ``path`` and printed."""
    report = {
        **report,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    text = json.dumps(report, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"written to {path}")
