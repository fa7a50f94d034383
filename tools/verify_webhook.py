#!/usr/bin/env python3
"""Independent verifier of cellops webhook deliveries.

Written from docs/notifications.md alone (it imports no cellops code): a receiver can use
it as it is, or copy `verify()` into its own service.

    python3 tools/verify_webhook.py --secret SECRET --signature HEADER --body FILE [--now UNIX] [--tolerance S]
    python3 tools/verify_webhook.py --self-test

HEADER is the value of `X-Cellops-Signature` (`t=<unix seconds>,v1=<hex>`), FILE the raw
request body as received (`-` for standard input). It prints `OK: <kind> <id> seq <seq>` and
exits 0, or prints why the delivery must be refused and exits 1. Usage errors exit 2.
Only the Python standard library is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time

TOLERANCE_SECONDS = 300


class Refused(Exception):
    """The delivery must not be trusted."""


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS) -> dict:
    """Checks the signature and returns the parsed body, or raises Refused.

    1. Split the header on commas into key=value pairs; take `t` and every `v1`.
    2. Refuse when |now - t| > tolerance (a replayed or delayed delivery).
    3. Compute HMAC-SHA256 with the secret (its UTF-8 bytes) over b"<t>." + body, hex.
    4. Accept when any v1 equals it (compared in constant time).
    The body is parsed only after the signature matched.
    """
    t = None
    tags = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise Refused(f"malformed signature header part {part!r}")
        if key == "t":
            try:
                t = int(value)
            except ValueError:
                raise Refused(f"t={value!r} is not a whole number of seconds") from None
        elif key == "v1":
            tags.append(value)
    if t is None or not tags:
        raise Refused("the signature header needs t=<unix seconds> and v1=<hex>")
    if abs(now - t) > tolerance:
        raise Refused(f"signed at {t}, {abs(now - t)} s from now ({now}): more than {tolerance} s")
    expected = hmac.new(secret.encode("utf-8"), str(t).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, tag) for tag in tags):
        raise Refused("no v1 signature matches this body and secret")
    try:
        return json.loads(body)
    except ValueError as e:
        raise Refused(f"the signed body is not JSON: {e}") from None


def self_test() -> None:
    body = b'{"id":"wh-1.7","kind":"product.shipped","seq":7}'
    t = 1_764_000_000
    tag = hmac.new(b"whsec_x", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={t},v1={tag}"
    assert verify("whsec_x", header, body, t + 10)["seq"] == 7
    for bad in [
        ("whsec_y", header, body, t),
        ("whsec_x", header, body + b" ", t),
        ("whsec_x", header, body, t + 301),
        ("whsec_x", f"v1={tag}", body, t),
    ]:
        try:
            verify(*bad)
        except Refused:
            continue
        raise AssertionError(f"accepted {bad!r}")
    # The vector shared with the Rust tests (sign.rs: matches_an_independent_hmac_vector).
    assert hmac.new(b"Jefe", b"0.what do ya want for nothing?", hashlib.sha256).hexdigest() == (
        "37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"
    )
    print("self-test OK")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--secret")
    p.add_argument("--signature", help="the X-Cellops-Signature header value")
    p.add_argument("--body", help="file with the raw body, - for stdin")
    p.add_argument("--now", type=int, help="unix seconds (default: this machine's clock)")
    p.add_argument("--tolerance", type=int, default=TOLERANCE_SECONDS)
    p.add_argument("--self-test", action="store_true")
    args = p.parse_args(argv)
    if args.self_test:
        self_test()
        return 0
    if not (args.secret and args.signature and args.body):
        p.print_usage(sys.stderr)
        sys.stderr.write("give --secret, --signature and --body (or --self-test)\n")
        return 2
    body = sys.stdin.buffer.read() if args.body == "-" else open(args.body, "rb").read()
    now = args.now if args.now is not None else int(time.time())
    try:
        parsed = verify(args.secret, args.signature, body, now, args.tolerance)
    except Refused as e:
        print(f"REFUSED: {e}")
        return 1
    print(f"OK: {parsed.get('kind')} {parsed.get('id')} seq {parsed.get('seq')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
