#!/usr/bin/env python3
"""Independent verifier of cellops ledger export bundles.

Written from docs/ledger-format.md alone: it imports no cellops code, so a bundle that
passes here and in `cellops_ledger::bundle::verify_bundle` has been checked by two
implementations of one documented format.

    python3 tools/verify_bundle.py BUNDLE [--key VKEY]
    python3 tools/verify_bundle.py --self-test

It recomputes every record's chain hash and signature binding, rebuilds the RFC 9162 Merkle
tree over the chain hashes, opens every checkpoint (C2SP signed note, Ed25519) with the
trusted key and compares its root with the rebuilt tree. It prints

    OK: N records, M checkpoints, latest verified checkpoint size S

and exits 0, or prints the first problem (its class and the record or checkpoint it
concerns) and exits 1. Usage errors exit 2.

Needs Python 3.11+ and the `cryptography` package (pip install cryptography) for Ed25519.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import datetime as dt
import decimal
import hashlib
import json
import math
import re
import struct
import sys
from typing import Any, Iterable, Iterator

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        "verify_bundle.py needs the 'cryptography' package for Ed25519: "
        "pip install cryptography\n"
    )
    sys.exit(2)

BUNDLE_FORMAT = "cellops-ledger-bundle"
BUNDLE_VERSION = 1
ENTRY_FORMAT_VERSION = 1
# How far around a bad record to look for the position it belongs at, and how many records
# may arrive ahead of a missing one before it counts as deleted (docs: "Damage classes").
REORDER_WINDOW_RECORDS = 64
NOTE_BYTES_MAX = 1 << 20
NOTE_SIGNATURES_MAX = 100
CHECKPOINT_EXTENSION_LINES_MAX = 16
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1
TIMESTAMP_YEAR_MAX = 9999
SIGNATURE_LINE_PREFIX = "\u2014 "
ALG_ED25519 = 0x01
EMPTY_ROOT = hashlib.sha256(b"").digest()


class BundleProblem(Exception):
    """The first problem found; `damage` is a class from the spec or None for unreadable input."""

    def __init__(self, damage: str | None, where: str, detail: str):
        super().__init__(detail)
        self.damage = damage
        self.where = where
        self.detail = detail

    def __str__(self) -> str:
        label = self.damage if self.damage else "unreadable"
        return f"PROBLEM ({label}) at {self.where}: {self.detail}"


class NoteError(Exception):
    """A signed note or checkpoint that does not open; the message says why."""


# ---------------------------------------------------------------------------------------
# RFC 8785 JSON Canonicalization Scheme, implemented in full (UTF-16 member order, ECMAScript
# number text) rather than approximated with json.dumps(sort_keys=True), whose key order and
# float text differ from RFC 8785. The entry needs it for strings and the signature block; the
# self-test also uses it to rebuild the golden payload.


def es6_number(x: float) -> str:
    """ECMAScript Number::toString of a finite double (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(x):
        raise ValueError("NaN and Infinity are not JSON numbers")
    if x == 0:
        return "0"  # also for -0.0
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digit string that round-trips, closest to the value: the
    # same digits ECMAScript requires.
    _, digit_tuple, exponent = decimal.Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    k = len(digits)
    n = exponent + k  # value = 0.d1..dk × 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def jcs_number(value: int | float) -> str:
    """Every JSON number is an IEEE-754 double (RFC 8785 §3.2.2.3): integers too, so an
    integer beyond ±2^53 is written as the nearest double."""
    return es6_number(float(value))


def jcs_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError("a string holds a lone surrogate, which is not valid UTF-8")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class RawJson(str):
    """JSON text inserted verbatim by jcs_text (the stored payload, the entry's integers)."""


def _utf16_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare like the sequence of UTF-16 code units (RFC 8785 §3.2.3).
    return key.encode("utf-16-be", "surrogatepass")


def jcs_text(value: Any) -> str:
    if isinstance(value, RawJson):
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return jcs_number(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs_text(v) for v in value) + "]"
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda kv: _utf16_key(kv[0]))
        return "{" + ",".join(jcs_string(k) + ":" + jcs_text(v) for k, v in members) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value (as parsed by json.loads)."""
    return jcs_text(value).encode("utf-8")


def _parse_float_literal(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _parse_int_literal(text: str) -> int:
    value = int(text)
    try:
        float(value)
    except OverflowError:
        raise ValueError(f"number {text} is out of range") from None
    return value


def parse_json(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and numbers beyond the range of a double."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    value = json.loads(
        text,
        parse_constant=no_constant,
        parse_float=_parse_float_literal,
        parse_int=_parse_int_literal,
    )
    _reject_lone_surrogates(value)
    return value


def _reject_lone_surrogates(value: Any) -> None:
    """JSON text may escape a lone surrogate (\\ud800), which is no Unicode text: refuse it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in item):
                raise ValueError("a string holds a lone surrogate, which is not Unicode text")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


# ---------------------------------------------------------------------------------------
# Timestamps, records and the hash chain.

RFC3339_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def canonical_timestamp(text: Any, field: str) -> str:
    """The canonical text of an RFC 3339 instant: UTC, six fractional digits, `Z`."""
    if not isinstance(text, str) or not RFC3339_TIMESTAMP.fullmatch(text):
        raise ValueError(
            f"{field} must be an RFC 3339 timestamp such as 2026-11-25T22:32:37.000123Z"
        )
    try:
        parsed = dt.datetime.fromisoformat(text.upper())
    except ValueError as err:
        raise ValueError(f"{field} {text!r} is not an RFC 3339 timestamp: {err}") from None
    try:
        utc = parsed.astimezone(dt.timezone.utc)
    except OverflowError:
        raise ValueError(f"{field} {text!r} is outside the years 1970 to 9999") from None
    if utc.year < 1970 or utc.year > TIMESTAMP_YEAR_MAX:
        raise ValueError(f"{field} {text!r} is outside the years 1970 to 9999")
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}Z"
    )


def genesis_hash() -> bytes:
    return hashlib.sha256(b"cellops-chain-v1\x00").digest()


def chain_hash(prev: bytes, entry: bytes) -> bytes:
    return hashlib.sha256(b"\x02" + prev + hashlib.sha256(entry).digest()).digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclasses.dataclass(frozen=True)
class Signature:
    signer: str
    signer_name: str
    meaning: str
    signed_at: str  # canonical text
    authentication: str
    content_hash: str

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Record:
    seq: int
    stream: str
    event_type: str
    event_version: int
    payload: str  # canonical JSON text as stored
    actor: str
    site: str
    recorded_at: str  # canonical text
    reason: str | None
    corrects: int | None
    signature: Signature | None
    prev_hash: bytes
    hash: bytes

    def entry(self, signature: Signature | None) -> bytes:
        """The canonical entry (docs §2): the payload text goes in verbatim, the integers as
        exact decimals; everything else is RFC 8785."""
        return canonical_json(
            {
                "v": RawJson(str(ENTRY_FORMAT_VERSION)),
                "seq": RawJson(str(self.seq)),
                "stream": self.stream,
                "type": self.event_type,
                "version": RawJson(str(self.event_version)),
                "payload": RawJson(self.payload),
                "actor": self.actor,
                "site": self.site,
                "recorded_at": self.recorded_at,
                "reason": self.reason,
                "corrects": None if self.corrects is None else RawJson(str(self.corrects)),
                "signature": signature.as_json() if signature else None,
            }
        )

    def entry_bytes(self) -> bytes:
        return self.entry(self.signature)

    def computed_hash(self) -> bytes:
        return chain_hash(self.prev_hash, self.entry_bytes())

    def signature_binds(self) -> bool:
        if self.signature is None:
            return True
        expected = hashlib.sha256(self.entry(None)).hexdigest()
        return self.signature.content_hash == expected


def _field(obj: dict[str, Any], name: str, kind: str, optional: bool = False) -> Any:
    if name not in obj or obj[name] is None:
        if optional:
            return None
        raise ValueError(f"missing field {name!r}")
    value = obj[name]
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"field {name!r} must be a string")
    elif kind in ("u64", "u32"):
        limit = U64_MAX if kind == "u64" else U32_MAX
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise ValueError(f"field {name!r} must be an integer from 0 to {limit}")
    elif kind == "hash":
        if not isinstance(value, str):
            raise ValueError(f"field {name!r} must be 64 hex digits")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"field {name!r} is not hexadecimal") from None
        if len(raw) != 32 or len(value) != 64:
            raise ValueError(f"field {name!r} must be 64 hex digits (a 32-byte hash)")
        value = raw
    return value


def parse_record(obj: Any) -> Record:
    if not isinstance(obj, dict):
        raise ValueError("a record must be a JSON object")
    sig_obj = obj.get("signature")
    signature = None
    if sig_obj is not None:
        if not isinstance(sig_obj, dict):
            raise ValueError("field 'signature' must be an object or null")
        signature = Signature(
            signer=_field(sig_obj, "signer", "str"),
            signer_name=_field(sig_obj, "signer_name", "str"),
            meaning=_field(sig_obj, "meaning", "str"),
            signed_at=canonical_timestamp(sig_obj.get("signed_at"), "signature.signed_at"),
            authentication=_field(sig_obj, "authentication", "str"),
            content_hash=_field(sig_obj, "content_hash", "str"),
        )
    return Record(
        seq=_field(obj, "seq", "u64"),
        stream=_field(obj, "stream", "str"),
        event_type=_field(obj, "event_type", "str"),
        event_version=_field(obj, "event_version", "u32"),
        payload=_field(obj, "payload", "str"),
        actor=_field(obj, "actor", "str"),
        site=_field(obj, "site", "str"),
        recorded_at=canonical_timestamp(obj.get("recorded_at"), "recorded_at"),
        reason=_field(obj, "reason", "str", optional=True),
        corrects=_field(obj, "corrects", "u64", optional=True),
        signature=signature,
        prev_hash=_field(obj, "prev_hash", "hash"),
        hash=_field(obj, "hash", "hash"),
    )


# ---------------------------------------------------------------------------------------
# RFC 9162 Merkle tree (only the root of the current size is needed).


class CompactTree:
    """The roots of the complete subtrees of the leaves pushed so far, left to right."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaf count, subtree hash)

    def push(self, leaf: bytes) -> None:
        self._stack.append((1, leaf))
        self.size += 1
        while len(self._stack) >= 2 and self._stack[-1][0] == self._stack[-2][0]:
            (count, right), (_, left) = self._stack.pop(), self._stack.pop()
            self._stack.append((2 * count, node_hash(left, right)))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            acc = node_hash(left, acc)
        return acc


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """MTH of raw leaf data (used by the self-test)."""
    tree = CompactTree()
    for data in leaves:
        tree.push(leaf_hash(data))
    return tree.root()


# ---------------------------------------------------------------------------------------
# C2SP signed notes and tlog checkpoints (Ed25519 keys in Go sumdb/note text formats).


def valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


@dataclasses.dataclass(frozen=True)
class Verifier:
    name: str
    key_id: int
    public_key: bytes

    @staticmethod
    def from_vkey(vkey: str) -> Verifier:
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<8 hex digit key ID>+<base64 key>")
        name, id_hex, key_b64 = parts
        if not valid_key_name(name) or any(_is_control(c) for c in name):
            raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
        if not re.fullmatch(r"[0-9a-fA-F]{8}", id_hex):
            raise NoteError(f"key ID {id_hex!r} must be exactly 8 hex digits")
        try:
            key = _b64decode(key_b64)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise NoteError("the key part is not standard padded base64") from None
        if len(key) != 33 or key[0] != ALG_ED25519:
            raise NoteError("the key must be the type byte 0x01 and a 32-byte Ed25519 key")
        computed = key_id(name, key[1:])
        if computed != int(id_hex, 16):
            raise NoteError(f"key ID {id_hex} does not match the key, whose ID is {computed:08x}")
        return Verifier(name=name, key_id=computed, public_key=key[1:])

    def label(self) -> str:
        return f"{self.name}+{self.key_id:08x}"

    def verifies(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


def open_note(note: str, trusted: Verifier) -> str:
    """The signed text of `note` if `trusted` signed it; NoteError otherwise."""
    if len(note.encode("utf-8")) > NOTE_BYTES_MAX:
        raise NoteError(f"note is larger than {NOTE_BYTES_MAX} bytes")
    for at, ch in enumerate(note):
        if ch < " " and ch != "\n":
            raise NoteError(f"control character {ch!r} at character {at}")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("no blank line between the text and the signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures:
        raise NoteError("no signature lines after the blank line")
    if not signatures.endswith("\n"):
        raise NoteError("the last signature line does not end with a newline")
    verified = False
    for count, line in enumerate(signatures[:-1].split("\n")):
        if count >= NOTE_SIGNATURES_MAX:
            raise NoteError(f"more than {NOTE_SIGNATURES_MAX} signature lines")
        if not line.startswith(SIGNATURE_LINE_PREFIX):
            raise NoteError(f"signature line {line!r} does not start with an em dash and space")
        name, space, encoded = line[len(SIGNATURE_LINE_PREFIX) :].partition(" ")
        if not space:
            raise NoteError(f"signature line {line!r} has no space after the key name")
        if not valid_key_name(name):
            raise NoteError(f"signature line {line!r} has an invalid key name")
        try:
            blob = _b64decode(encoded)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise NoteError(f"signature line {line!r} is not standard base64") from None
        if len(blob) < 5:
            raise NoteError(f"signature line {line!r} is too short")
        if name != trusted.name or int.from_bytes(blob[:4], "big") != trusted.key_id:
            continue  # another key (a witness we do not follow): ignored
        if not trusted.verifies(text.encode("utf-8"), blob[4:]):
            raise NoteError(f"the signature of {trusted.label()} does not verify")
        verified = True
    if not verified:
        raise NoteError(f"no signature by the trusted key {trusted.label()}")
    return text


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes


def parse_checkpoint_body(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise NoteError("the checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint needs three lines: origin, tree size, root hash")
    origin, size_text, root_text, *extensions = lines
    if not valid_key_name(origin) or any(_is_control(c) for c in origin):
        raise NoteError(f"origin {origin!r} must be non-empty, without spaces or '+'")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text) or int(size_text) > U64_MAX:
        raise NoteError(f"tree size {size_text!r} must be decimal without leading zeros")
    try:
        root = _b64decode(root_text)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise NoteError(f"root hash {root_text!r} is not standard base64") from None
    if len(root) != 32:
        raise NoteError(f"root hash decodes to {len(root)} bytes, expected 32")
    if len(extensions) > CHECKPOINT_EXTENSION_LINES_MAX:
        raise NoteError(f"more than {CHECKPOINT_EXTENSION_LINES_MAX} extension lines")
    for line in extensions:
        if not line or any(_is_control(c) for c in line):
            raise NoteError("extension lines must be non-empty without control characters")
    return Checkpoint(origin=origin, size=int(size_text), root=root)


# ---------------------------------------------------------------------------------------
# The bundle and the streaming verification (docs: "Verification and damage classes").


@dataclasses.dataclass
class StoredCheckpoint:
    line: int
    size: int
    root: bytes
    note: str


@dataclasses.dataclass
class Report:
    records_checked: int = 0
    checkpoints_checked: int = 0
    verified_checkpoint_size: int = 0


class BundleVerifier:
    def __init__(self, trusted: Verifier, origin: str, checkpoints: list[StoredCheckpoint]):
        self.trusted = trusted
        self.origin = origin
        self.checkpoints = sorted(checkpoints, key=lambda c: c.size)
        self.next_checkpoint = 0
        self.expected_seq = 1
        self.prev_hash = genesis_hash()
        self.tree = CompactTree()
        self.report = Report()
        self.ahead: list[int] = []
        self._check_checkpoints()

    def feed(self, r: Record) -> None:
        expected = self.expected_seq
        if self.ahead:
            if r.seq == expected:
                raise BundleProblem(
                    "reordered",
                    f"record {expected}",
                    f"record {expected} appears after record {self.ahead[0]} "
                    "(records must be in seq order)",
                )
            self.ahead.append(r.seq)
            if len(self.ahead) >= REORDER_WINDOW_RECORDS:
                self._fail_deleted()
            return
        if r.seq > expected:
            self.ahead.append(r.seq)
            return
        if r.seq < expected:
            raise BundleProblem(
                "reordered",
                f"record {r.seq}",
                f"record {r.seq} appears after record {expected - 1} (records must be in seq order)",
            )
        if r.computed_hash() != r.hash:
            home = belongs_elsewhere(r)
            if home is not None:
                raise BundleProblem(
                    "reordered",
                    f"record {r.seq}",
                    f"the record stored at position {r.seq} is intact but belongs at position {home}",
                )
            raise BundleProblem(
                "edited",
                f"record {r.seq}",
                f"record {r.seq} ({r.event_type}, stream {r.stream}) does not match its hash: "
                "its content was changed after it was recorded",
            )
        if not r.signature_binds():
            raise BundleProblem(
                "edited",
                f"record {r.seq}",
                f"record {r.seq}: its e-signature is not bound to its content "
                "(signature copied or altered)",
            )
        if r.prev_hash != self.prev_hash:
            raise BundleProblem(
                "forked chain",
                f"record {r.seq}",
                f"record {r.seq} is self-consistent but does not follow record {r.seq - 1}: "
                "it belongs to another history",
            )
        self.prev_hash = r.hash
        self.expected_seq += 1
        self.tree.push(leaf_hash(r.hash))
        self.report.records_checked += 1
        self._check_checkpoints()

    def _check_checkpoints(self) -> None:
        size = self.tree.size
        while self.next_checkpoint < len(self.checkpoints):
            cp = self.checkpoints[self.next_checkpoint]
            if cp.size > size:
                return
            self.next_checkpoint += 1
            self.report.checkpoints_checked += 1
            where = f"checkpoint of size {cp.size} (bundle line {cp.line})"
            try:
                opened = parse_checkpoint_body(open_note(cp.note, self.trusted))
            except NoteError as err:
                raise BundleProblem("bad signature", where, str(err)) from None
            if opened.size != cp.size or opened.root != cp.root:
                raise BundleProblem(
                    "bad signature",
                    where,
                    "the stored size or root differs from the signed note",
                )
            if opened.origin != self.origin:
                # Not checked by the Rust verifier (docs: "Extra checks of this tool").
                raise BundleProblem(
                    "bad signature",
                    where,
                    f"the signed origin {opened.origin!r} is not the bundle's origin {self.origin!r}",
                )
            if cp.size == 0:
                continue
            # Checkpoints are checked as soon as the tree reaches their size, so the rebuilt
            # tree has exactly cp.size leaves here.
            if self.tree.root() != opened.root:
                after = (
                    self.checkpoints[self.next_checkpoint - 2].size
                    if self.next_checkpoint >= 2
                    else 0
                )
                raise BundleProblem(
                    "forked chain",
                    f"record {after + 1}",
                    f"records {after + 1} to {cp.size} do not match the signed checkpoint of size "
                    f"{cp.size}: history was rewritten after it was signed",
                )
            self.report.verified_checkpoint_size = cp.size

    def _fail_deleted(self) -> None:
        expected = self.expected_seq
        next_present = min(self.ahead) if self.ahead else expected + 1
        if next_present == expected + 1:
            detail = f"record {expected} is missing (the next record present is {next_present})"
        else:
            detail = f"records {expected} to {next_present - 1} are missing"
        raise BundleProblem("deleted", f"record {expected}", detail)

    def finish(self) -> Report:
        if self.ahead:
            self._fail_deleted()
        if self.next_checkpoint < len(self.checkpoints):
            size = self.tree.size
            largest = self.checkpoints[-1].size
            raise BundleProblem(
                "truncated",
                f"record {size + 1}",
                f"the log ends at record {size} but a signed checkpoint covers {largest} records: "
                f"records {size + 1} to {largest} are missing",
            )
        return self.report


def belongs_elsewhere(r: Record) -> int | None:
    """The nearby seq at which `r` would hash correctly, if any (a moved record)."""
    low = max(r.seq - REORDER_WINDOW_RECORDS, 1)
    for seq in range(low, r.seq + REORDER_WINDOW_RECORDS + 1):
        if seq != r.seq and dataclasses.replace(r, seq=seq).computed_hash() == r.hash:
            return seq
    return None


def _line_problem(number: int, detail: str) -> BundleProblem:
    return BundleProblem(None, f"bundle line {number}", detail)


def verify_lines(
    lines: Iterator[str], pinned_key: str | None
) -> tuple[dict[str, Any], Report, bool]:
    """Verifies a bundle given as lines; returns (header, report, key came from the bundle)."""
    first = next(lines, None)
    if first is None:
        raise _line_problem(1, "the bundle is empty")
    try:
        header = parse_json(first)
    except ValueError as err:
        raise _line_problem(1, f"not a bundle header: {err}") from None
    if not isinstance(header, dict):
        raise _line_problem(1, "not a bundle header: not a JSON object")
    try:
        fmt = _field(header, "format", "str")
        version = _field(header, "version", "u32")
        origin = _field(header, "origin", "str")
        keys = header.get("public_keys")
        header_records = _field(header, "records", "u64")
        header_checkpoints = _field(header, "checkpoints", "u64")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("field 'public_keys' must be a list of verifier keys")
    except ValueError as err:
        raise _line_problem(1, f"not a bundle header: {err}") from None
    if fmt != BUNDLE_FORMAT or version != BUNDLE_VERSION:
        raise _line_problem(
            1, f"format {fmt!r} version {version} is not {BUNDLE_FORMAT} version {BUNDLE_VERSION}"
        )
    key_text = pinned_key if pinned_key is not None else (keys[0] if keys else None)
    if key_text is None:
        raise _line_problem(1, "the header names no public key (pass --key VKEY)")
    try:
        trusted = Verifier.from_vkey(key_text)
    except NoteError as err:
        where = "--key" if pinned_key is not None else "bundle line 1"
        raise BundleProblem(None, where, f"public key: {err}") from None

    checkpoints: list[StoredCheckpoint] = []
    verifier: BundleVerifier | None = None
    for number, line in enumerate(lines, start=2):
        if not line:
            continue
        try:
            parsed = parse_json(line)
            if not isinstance(parsed, dict) or len(parsed) != 1:
                raise ValueError('a line is {"checkpoint": {...}} or {"record": {...}}')
            ((tag, body),) = parsed.items()
            if tag == "checkpoint":
                if verifier is not None:
                    raise _line_problem(number, "checkpoints must come before records")
                if not isinstance(body, dict):
                    raise ValueError("a checkpoint must be a JSON object")
                canonical_timestamp(body.get("created_at"), "created_at")
                checkpoints.append(
                    StoredCheckpoint(
                        line=number,
                        size=_field(body, "size", "u64"),
                        root=_field(body, "root", "hash"),
                        note=_field(body, "note", "str"),
                    )
                )
                continue
            if tag != "record":
                raise ValueError(f"unknown line kind {tag!r}")
            record = parse_record(body)
        except ValueError as err:
            raise _line_problem(number, f"unreadable: {err}") from None
        if verifier is None:
            verifier = BundleVerifier(trusted, origin, checkpoints)
        verifier.feed(record)
    if verifier is None:
        verifier = BundleVerifier(trusted, origin, checkpoints)
    report = verifier.finish()
    # Not checked by the Rust verifier (docs: "Extra checks of this tool"): the counts are
    # unsigned, but a cut-off file shows up here even after the last checkpoint.
    if header_records > report.records_checked:
        raise BundleProblem(
            "truncated",
            f"record {report.records_checked + 1}",
            f"the header announces {header_records} records but the bundle holds "
            f"{report.records_checked}: records {report.records_checked + 1} to "
            f"{header_records} are missing",
        )
    if header_records < report.records_checked:
        raise _line_problem(
            1,
            f"the header announces {header_records} records but the bundle holds "
            f"{report.records_checked}",
        )
    if header_checkpoints != report.checkpoints_checked:
        raise _line_problem(
            1,
            f"the header announces {header_checkpoints} checkpoints but the bundle holds "
            f"{report.checkpoints_checked}",
        )
    return header, report, pinned_key is None


def read_lines(path: str) -> Iterator[str]:
    with open(path, "r", encoding="utf-8", newline="") as handle:
        for line in handle:
            yield line.rstrip("\n").rstrip("\r")


# ---------------------------------------------------------------------------------------
# Self-test: the golden vectors of docs/ledger-format.md and standards.md §7.

GOLDEN_ENTRY = (
    '{"actor":"alice","corrects":null,"payload":{"a":[true,null,250000000],"z":1,'
    '"\u00e9":"cells"},"reason":null,"recorded_at":"2025-11-24T16:00:00.000000Z","seq":1,'
    '"signature":null,"site":"cpc-kyoto","stream":"batch/b-1","type":"batch.started",'
    '"v":1,"version":1}'
)
GOLDEN = {
    "genesis": "acd2976bdc785cde8a854eab8d5d46054fbe187dce6b673c5254e98afde5c284",
    "entry_sha256": "d150e16e76bd92c5883bb30211b2eb6e8ec04d9fb3948c2378b2c2da24cb80fd",
    "h1": "c20a0aa6c108f7781fd364b65343151dbe0d170db7d2d09864cba9ed93681172",
    "leaf1": "93326d8ba79380335e969b6f3de5a88a3ce44dfe4bbc902ba997937f70d4f0e6",
    "signed_content_hash": "b552fcfd4daa4e8b5e242d6379a0cf57378bb73513ad5b10730f8b4db4728357",
    "signed_hash": "0fbf662ad161db2f1b3c4f48fc51f3588a7772f63eb0929b212c53e12217071d",
}


def _golden_record() -> Record:
    return Record(
        seq=1,
        stream="batch/b-1",
        event_type="batch.started",
        event_version=1,
        payload=canonical_json(
            parse_json('{"z": 1, "a": [true, null, 2.5e8], "\u00e9": "cells"}')
        ).decode(),
        actor="alice",
        site="cpc-kyoto",
        recorded_at="2025-11-24T16:00:00.000000Z",
        reason=None,
        corrects=None,
        signature=None,
        prev_hash=genesis_hash(),
        hash=b"",
    )


def _golden_signed_record() -> Record:
    unsigned = Record(
        seq=7,
        stream="batch/b-1",
        event_type="batch.released",
        event_version=1,
        payload="{}",
        actor="qa",
        site="cpc-kyoto",
        recorded_at="1970-01-01T00:00:00.000000Z",
        reason=None,
        corrects=None,
        signature=None,
        prev_hash=genesis_hash(),
        hash=b"",
    )
    content_hash = hashlib.sha256(unsigned.entry(None)).hexdigest()
    return dataclasses.replace(
        unsigned,
        signature=Signature(
            signer="qa",
            signer_name="Q. A. Person",
            meaning="Released",
            signed_at="1970-01-01T00:00:00.000000Z",
            authentication="password",
            content_hash=content_hash,
        ),
    )


def self_test() -> list[str]:
    """Checks this implementation against the published vectors; returns the failures."""
    failures: list[str] = []

    def check(name: str, got: Any, want: Any) -> None:
        if got != want:
            failures.append(f"{name}: got {got!r}, want {want!r}")

    # RFC 8785 Appendix B (IEEE-754 bit patterns) and the §3.2.2 / §3.2.3 examples.
    for bits, want in [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
    ]:
        value = struct.unpack(">d", bytes.fromhex(bits))[0]
        check(f"JCS number {bits}", es6_number(value), want)
    check(
        "RFC 8785 §3.2.2 numbers",
        jcs_text(
            parse_json("[333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]")
        ),
        "[333333333.3333333,1e+30,4.5,0.002,1e-27]",
    )
    check(
        "RFC 8785 §3.2.3 key order (UTF-16 code units)",
        jcs_text(
            parse_json(
                '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",'
                '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}'
            )
        ),
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    )
    check("JCS 2.5e8", jcs_text(parse_json("2.5e8")), "250000000")
    check("JCS 2^53 + 1", jcs_text(parse_json("9007199254740993")), "9007199254740992")
    check("JCS 2^64 - 1", jcs_text(parse_json("18446744073709551615")), "18446744073709552000")
    check("JCS -0", jcs_text(parse_json("[-0, -0.0, 1.0, 1E2]")), "[0,0,1,100]")
    check(
        "JCS string escapes",
        jcs_text('\u0001\u001f"\\/\u007f\u2028'),
        '"\\u0001\\u001f\\"\\\\/\u007f\u2028"',
    )

    # RFC 9162 vectors (standards.md §7.2 and §7.5).
    check(
        "MTH of no leaves",
        EMPTY_ROOT.hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )
    check(
        "leaf ''",
        leaf_hash(b"").hex(),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    )
    check(
        "MTH [a,b,c]",
        merkle_root([b"a", b"b", b"c"]).hex(),
        "36642e73c2540ab121e3a6bf9545b0a24982cd830eb13d3cd19de3ce6c021ec1",
    )
    ct_leaves = [
        bytes.fromhex(h)
        for h in [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
    ]
    check(
        "MTH of the 8 CT leaves",
        merkle_root(ct_leaves).hex(),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )

    # The Go sumdb/note interop vector (standards.md §7.5).
    peter = Verifier.from_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    note = (
        text
        + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    try:
        check("note interop vector", open_note(note, peter), text)
    except NoteError as err:
        failures.append(f"note interop vector: {err}")
    try:
        open_note(note.replace("answer", "Answer"), peter)
        failures.append("note interop vector: an altered text still verified")
    except NoteError:
        pass

    # The ledger's own golden vectors (docs/ledger-format.md, "Golden vectors").
    check("h_0", genesis_hash().hex(), GOLDEN["genesis"])
    record = _golden_record()
    check("canonical entry", record.entry_bytes().decode("utf-8"), GOLDEN_ENTRY)
    check(
        "SHA-256(entry_1)", hashlib.sha256(record.entry_bytes()).hexdigest(), GOLDEN["entry_sha256"]
    )
    h1 = record.computed_hash()
    check("h_1", h1.hex(), GOLDEN["h1"])
    check("leaf hash of record 1", leaf_hash(h1).hex(), GOLDEN["leaf1"])
    signed = _golden_signed_record()
    check(
        "signed record content_hash",
        signed.signature.content_hash if signed.signature else None,
        GOLDEN["signed_content_hash"],
    )
    check("signed record chain hash", signed.computed_hash().hex(), GOLDEN["signed_hash"])
    return failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Independently verify a cellops ledger export bundle (docs/ledger-format.md)."
    )
    parser.add_argument("bundle", nargs="?", help="the bundle file (JSON lines)")
    parser.add_argument(
        "--key",
        metavar="VKEY",
        help="the site's verifier key <name>+<key id>+<base64>; default: the bundle's own key",
    )
    parser.add_argument("--self-test", action="store_true", help="check the published vectors")
    args = parser.parse_args(argv)
    if args.self_test:
        failures = self_test()
        for failure in failures:
            print(f"SELF-TEST FAILED: {failure}")
        if failures:
            return 1
        print("OK: self-test passed")
        return 0
    if not args.bundle:
        parser.error("give a bundle file, or --self-test")
    if args.key is not None:
        try:
            Verifier.from_vkey(args.key)
        except NoteError as err:
            parser.error(f"--key: {err}")
    try:
        _, report, key_from_bundle = verify_lines(read_lines(args.bundle), args.key)
    except OSError as err:
        print(f"cannot read {args.bundle}: {err}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as err:
        print(f"PROBLEM (unreadable) at {args.bundle}: not UTF-8 text ({err})")
        return 1
    except BundleProblem as problem:
        print(problem)
        return 1
    print(
        f"OK: {report.records_checked} records, {report.checkpoints_checked} checkpoints, "
        f"latest verified checkpoint size {report.verified_checkpoint_size}"
    )
    if key_from_bundle:
        print(
            "note: checked against the key inside the bundle; this proves integrity, not who "
            "signed it. Pass --key with the site's published key to pin it.",
            file=sys.stderr,
        )
    unsigned = report.records_checked - report.verified_checkpoint_size
    if unsigned > 0:
        print(
            f"note: the last {unsigned} records are chained but not yet covered by a signed "
            "checkpoint.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
