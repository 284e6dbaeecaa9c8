"""Verifies one Standard Webhooks delivery with the reference `standardwebhooks` library.

Usage: verify_standard.py <secret> <headers-json>   (raw request body on stdin)
Exits 0 when `Webhook(secret).verify(body, headers)` accepts it, 1 (with the reason) otherwise.
"""

import json
import sys

from standardwebhooks import Webhook


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    secret, headers = sys.argv[1], json.loads(sys.argv[2])
    body = sys.stdin.buffer.read()
    try:
        Webhook(secret).verify(body, headers)
    except Exception as error:  # noqa: BLE001 - report any verification failure
        print(f"verification failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
