"""Benchmark badkv against a bare Flask app with wrk: `.venv/bin/python bench/run.py --help`.

All traffic stays on 127.0.0.1 and every server started is stopped before
this exits. See bench/README.md for what is measured.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, so "bench" imports

from bench.harness import main  # noqa: E402  (needs the path above)

if __name__ == "__main__":
    sys.exit(main())
