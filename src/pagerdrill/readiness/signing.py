"""Signed sign-offs: an in-toto Statement v1 (subject: the digests of the evidence the
sign-off rests on; predicate: who decided what, as which role, when) signed with the
signer's SSH key by `ssh-keygen -Y sign`, and verified against an allowed-signers file
built from the roster, the way git verifies SSH-signed commits. An ssh-agent key works:
pass the public key file with SSH_AUTH_SOCK set."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pagerdrill.errors import BadInputError
from pagerdrill.readiness.records import Pin, slug

NAMESPACE = "pagerdrill-readiness"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://pagerdrill.dev/readiness/signoff/v1"
REVIEW_PREDICATE_TYPE = "https://pagerdrill.dev/readiness/review/v1"


def statement(pins: list[Pin], predicate: dict, predicate_type: str = PREDICATE_TYPE) -> str:
    """The Statement as the exact text that is signed (canonical JSON)."""
    body = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": p.path, "digest": {"sha256": p.sha256}} for p in pins],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def public_key_of(key: Path) -> str:
    """The public key (`type base64`) of a key file: a `.pub` is read; a private key's
    `.pub` beside it, else `ssh-keygen -y`."""
    pub = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    try:
        text = pub.read_text().strip() if pub.is_file() else _derive_public(key)
    except OSError as exc:
        raise BadInputError(f"{key}: cannot read the key: {exc.strerror or exc}") from None
    return key_id(text)


def _derive_public(key: Path) -> str:
    if not key.is_file():
        raise BadInputError(f"{key}: no such key file")
    done = subprocess.run(
        ["ssh-keygen", "-y", "-P", "", "-f", str(key)], capture_output=True, text=True, timeout=10
    )
    if done.returncode != 0:
        raise BadInputError(f"{key}: not an SSH key ({done.stderr.strip()})")
    return done.stdout.strip()


def key_id(text: str) -> str:
    """`type base64` of a public key line, without its comment."""
    parts = text.split()
    if len(parts) < 2:
        raise BadInputError(f"{text[:40]!r}: not an SSH public key (expected 'type base64')")
    return f"{parts[0]} {parts[1]}"


def sign(text: str, key: Path) -> str:
    """The armored SSH signature of `text` by `key` in the tool's namespace."""
    if not key.is_file():
        raise BadInputError(f"{key}: no such key file")
    with tempfile.TemporaryDirectory(prefix="pagerdrill-sign-") as tmp:
        data = Path(tmp) / "statement.json"
        data.write_text(text, encoding="utf-8")
        done = subprocess.run(
            ["ssh-keygen", "-Y", "sign", "-n", NAMESPACE, "-f", str(key), str(data)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        sig = data.with_name("statement.json.sig")
        if done.returncode != 0 or not sig.is_file():
            raise BadInputError(f"{key}: ssh-keygen could not sign: {done.stderr.strip()}")
        return sig.read_text()


@dataclass(frozen=True)
class SigInfo:
    namespace: str
    public_key: str
    """`type base64` of the key that made the signature."""


def signature_info(armored: str) -> SigInfo:
    """The namespace and the public key inside an SSHSIG signature (PROTOCOL.sshsig)."""
    lines = [ln for ln in armored.strip().splitlines() if not ln.startswith("-----")]
    try:
        blob = base64.b64decode("".join(lines), validate=True)
        if blob[:6] != b"SSHSIG":
            raise ValueError("no SSHSIG magic")
        offset = 10  # magic and the version

        def string() -> bytes:
            nonlocal offset
            (length,) = struct.unpack(">I", blob[offset : offset + 4])
            value = blob[offset + 4 : offset + 4 + length]
            if len(value) != length:
                raise ValueError("cut short")
            offset += 4 + length
            return value

        key_blob = string()
        namespace = string().decode()
        (type_length,) = struct.unpack(">I", key_blob[:4])
        key_type = key_blob[4 : 4 + type_length].decode()
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"not an SSH signature: {exc}") from None
    return SigInfo(namespace, f"{key_type} {base64.b64encode(key_blob).decode()}")


def allowed_signers(people: list[tuple[str, str]]) -> str:
    """An allowed-signers file: one line per (name, public key), for our namespace only."""
    return "".join(f'{slug(name)} namespaces="{NAMESPACE}" {key}\n' for name, key in people)


def verify(text: str, armored: str, signers: str, signer: str) -> str | None:
    """None when `armored` is `signer`'s valid signature of `text`, else why not."""
    with tempfile.TemporaryDirectory(prefix="pagerdrill-verify-") as tmp:
        allowed = Path(tmp) / "allowed_signers"
        allowed.write_text(signers)
        sig = Path(tmp) / "statement.sig"
        sig.write_text(armored)
        done = subprocess.run(
            [
                "ssh-keygen",
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                slug(signer),
                "-n",
                NAMESPACE,
                "-s",
                str(sig),
            ],
            input=text.encode(),
            capture_output=True,
            timeout=30,
        )
    if done.returncode == 0:
        return None
    return (
        done.stderr.decode(errors="replace").strip().splitlines()[-1:][0]
        if done.stderr
        else ("ssh-keygen -Y verify failed")
    )
