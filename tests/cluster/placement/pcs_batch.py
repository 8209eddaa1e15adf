"""Run many pcs command lines in one Python process: pcs spends most of each invocation
importing itself (about 0.6 s), and a layout's pcs form is 20-70 commands.

Reads a JSON list of argument lists (without the leading "pcs") on stdin and runs each through
pcs's own entry point, pcs.app.main, exactly as /usr/sbin/pcs would; stops at the first that
fails, with its exit status. Run it with the interpreter pcs is installed for
(/usr/bin/python3 -Es, like /usr/sbin/pcs).
"""

import json
import sys

import pcs.app


def main() -> int:
    for argv in json.load(sys.stdin):
        try:
            pcs.app.main(argv)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code:
            print(f"pcs_batch: pcs {' '.join(argv)} exited {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
