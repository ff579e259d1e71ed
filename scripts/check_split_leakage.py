#!/usr/bin/env python
"""Split leakage of a store: ALL test proteins against all train proteins, at the store's split identity.

Same as `oneprot data check-leakage STORE` (engine.data.resplit.check_leakage): MMseqs2 search at
-s 7.5 with no cap on hits per query, identity and coverage as the store's manifest defines them.
Usage: python scripts/check_split_leakage.py demo [--definition shorter --coverage 0] [--json]
"""

from __future__ import annotations

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "check-leakage", *sys.argv[1:]]))
