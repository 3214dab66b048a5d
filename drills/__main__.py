"""`python -m drills [NAME...]`: run the crash drills and print, per drill, ticks due / completed /
duplicated; exit 1 unless every drill passes. NAMEs: prefilter, llm, tool, job, ledger,
server, catchup, database (default: all; catchup takes about 7 minutes)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from drills.crash import run_crash_drills


def main() -> None:
    names = sys.argv[1:] or None
    with tempfile.TemporaryDirectory(prefix="drills-") as folder:
        print(f"crash drills in {folder}: dev server (SQLite), worker subprocess, loopback provider", flush=True)
        results = asyncio.run(run_crash_drills(Path(folder), names=names,
                                               report=lambda line: print(line, flush=True)))
    passed = sum(result.passed for result in results)
    print(f"{passed}/{len(results)} drills passed" + (": all drills passing" if passed == len(results) else ""))
    sys.exit(0 if results and passed == len(results) else 1)


if __name__ == "__main__":
    main()
