#!/usr/bin/env python3
"""An independent decoder for `tokenkeep export --envelopes`, written from docs/FORMAT.md alone.

It shares no code with Tokenkeep: another language, another crypto library (pyca/cryptography). Given the master
key it rebuilds each record's key id, record key and AAD from the document, checks the AAD Tokenkeep exported
against its own, verifies the tag in constant time before decrypting, and prints one JSON line per record:
{"tree", "record_id", "field", "plaintext"} (plaintext as UTF-8 text; for the `pictures` tree "media_type" and
"image", base64, instead; for a `dpop_key` field the P-256 key's RFC 7638 "thumbprint", computed here from the
private scalar, instead) — or {"..., "error": "..."} for a record it cannot open.

    TOKENKEEP_MASTER_KEY=<base64 of 32 bytes> python3 decode_envelopes.py < export.jsonl
"""

import base64
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, padding

IMAGE_TYPES = {b"image/png", b"image/jpeg", b"image/gif", b"image/webp"}
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def lp(data: bytes) -> bytes:
    """lp(x) = u64be(len(x)) || x"""
    return struct.pack(">Q", len(data)) + data


def hkdf(algorithm, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=algorithm, length=length, salt=salt, info=info).derive(ikm)


def key_id(master: bytes) -> bytes:
    return hkdf(hashes.SHA256(), b"", master, b"tokenkeep/v1/key-id", 32)[:8]


def open_record(master: bytes, profile: str, tree: str, record_id: bytes, field: str, envelope: bytes, aad_given):
    if not envelope or envelope[0] != 0x01:
        raise ValueError("unknown version")
    if len(envelope) < 9:
        raise ValueError("truncated")
    header, kid = envelope[:9], envelope[1:9]
    if kid != key_id(master):
        raise ValueError(f"wrong key: sealed with {kid.hex()}")
    if len(envelope) < 73 or (len(envelope) - 57) % 16:
        raise ValueError("truncated")
    iv, ciphertext, tag = envelope[9:25], envelope[25:-32], envelope[-32:]
    loc = [profile.encode(), tree.encode(), record_id, field.encode()]
    record_key = hkdf(hashes.SHA512(), b"tokenkeep/v1/record-key", master, b"".join(lp(x) for x in loc), 64)
    mac_key, enc_key = record_key[:32], record_key[32:]
    aad = lp(b"tokenkeep/v1/record") + lp(header) + b"".join(lp(x) for x in loc)
    if aad_given is not None and aad_given != aad:
        raise ValueError("the exported AAD differs from the one FORMAT.md defines")
    mac = HMAC(mac_key, hashes.SHA512())
    mac.update(aad + iv + ciphertext + struct.pack(">Q", 8 * len(aad)))
    if not hmac.compare_digest(mac.finalize()[:32], tag):
        raise ValueError("could not decrypt")
    decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def dpop_thumbprint(scalar: bytes) -> str:
    """FORMAT.md: a `dpop_key` is the 32-byte P-256 scalar; its public key's RFC 7638 §3.2 thumbprint."""
    if len(scalar) != 32:
        raise ValueError("a DPoP key is 32 bytes")
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1()).public_key().public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode("ascii")
    canonical = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (b64(public.x), b64(public.y))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode("ascii"))
    return base64.urlsafe_b64encode(digest.finalize()).rstrip(b"=").decode("ascii")


def main() -> int:
    master = base64.b64decode(os.environ["TOKENKEEP_MASTER_KEY"], validate=True)
    if len(master) != 32:
        print("TOKENKEEP_MASTER_KEY must be 32 bytes", file=sys.stderr)
        return 2
    failures = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        row = json.loads(line)
        out = {"tree": row["tree"], "record_id": row["record_id"], "field": row["field"]}
        try:
            aad = base64.b64decode(row["aad"]) if row.get("aad") else None
            plain = open_record(
                master,
                row["profile"],
                row["tree"],
                bytes.fromhex(row["record_id"]),
                row["field"],
                base64.b64decode(row["envelope"]),
                aad,
            )
            if row["tree"] == "pictures":
                # FORMAT.md: the media type in ASCII, "\n", the image bytes.
                media_type, sep, image = plain.partition(b"\n")
                if not sep or media_type not in IMAGE_TYPES:
                    raise ValueError("not a picture record: " + repr(media_type[:40]))
                out["media_type"] = media_type.decode("ascii")
                out["image"] = base64.b64encode(image).decode("ascii")
            elif row["field"] == "dpop_key":
                out["thumbprint"] = dpop_thumbprint(plain)
            else:
                out["plaintext"] = plain.decode("utf-8")
        except ValueError as error:
            out["error"] = str(error)
            failures += 1
        print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
