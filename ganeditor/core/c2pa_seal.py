"""C2PA (Content Credentials) manifests in written images, with the user's own signing certificate.

Uses PyPI ``c2pa-python`` (the Content Authenticity Initiative's library; optional: ``pip install
'ganeditor[c2pa]'``).  The manifest's ``c2pa.actions`` say the same as the XMP: ``c2pa.created`` with
the IPTC source type for a generated picture; ``c2pa.opened`` (the source photo as parent
ingredient) then ``c2pa.edited`` per operation for an edited photo.  With the history turned off the
actions carry the source type and the software agent only.  The certificate is a PEM chain (signing
certificate first) and a PEM private key (EC P-256/P-384/P-521, Ed25519 or RSA-PSS).  Readers
trust the manifest as far as they trust its certificate; a self-made one gives a valid but
untrusted signature.
"""

from __future__ import annotations

import functools
import io
import json
import mimetypes
from pathlib import Path
from typing import Protocol, Sequence

from ganeditor import APP_NAME, __version__
from ganeditor.core.errors import ProvenanceError
from ganeditor.core.xmp import IPTC_SOURCE_TYPES

MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff", "WEBP": "image/webp"}
MAX_INGREDIENT_BYTES = 512 << 20  # a larger source photo is named in the actions but not hashed in


class Step(Protocol):
    """What the manifest says of one operation (``core.provenance.Step``)."""

    operation: str
    model: str
    model_sha256: str
    when: str

    def describe(self) -> str: ...


def _c2pa():
    try:
        import c2pa  # optional dependency, imported only when signing is configured
    except ImportError:
        raise ProvenanceError("C2PA signing is configured but the c2pa-python package is not installed "
                              "(pip install 'ganeditor[c2pa]')") from None  # fmt: skip
    return c2pa


def _algorithm(c2pa, key_pem: bytes, key_path: Path):
    # deferred like c2pa itself (cryptography comes with c2pa-python): needed only when signing
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise ProvenanceError(f"not a PEM private key without a password ({e})", key_path) from None
    alg = c2pa.C2paSigningAlg
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": alg.ES256, "secp384r1": alg.ES384, "secp521r1": alg.ES512}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return alg.ED25519
    elif isinstance(key, rsa.RSAPrivateKey):
        return alg.PS256
    raise ProvenanceError("unsupported key type for C2PA (use EC P-256/P-384/P-521, Ed25519 or RSA)", key_path)


@functools.lru_cache(maxsize=4)
def _signer(cert: str, key: str, _stamp: tuple[int, int]):
    c2pa = _c2pa()
    try:
        chain, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
    except OSError as e:
        raise ProvenanceError(f"cannot read the C2PA signing certificate or key ({e.strerror or e})",
                              e.filename) from None  # fmt: skip
    info = c2pa.C2paSignerInfo(_algorithm(c2pa, key_pem, Path(key)), chain, key_pem, None)
    try:
        return c2pa.Signer.from_info(info)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"the C2PA signer does not accept this certificate and key ({e})", cert) from None


def _actions(steps: Sequence[Step], history: bool, source_type: str, ingredient: bool) -> list[dict]:
    agent = {"name": APP_NAME, "version": __version__}
    url = IPTC_SOURCE_TYPES + source_type
    actions: list[dict] = []
    if ingredient:
        actions.append({"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}})
    for i, step in enumerate(steps):
        first = not actions and i == 0
        act = {"action": "c2pa.created" if first else "c2pa.edited", "digitalSourceType": url, "softwareAgent": agent}
        if history:
            act["when"] = step.when
            act["parameters"] = {"description": step.describe(), "org.ganeditor.operation": step.operation,
                                 "org.ganeditor.model": step.model, "org.ganeditor.model_sha256": step.model_sha256}  # fmt: skip
        actions.append(act)
    if not actions:
        actions.append({"action": "c2pa.created", "digitalSourceType": url, "softwareAgent": agent})
    return actions


def _source_stream(src: Path | None, c2pa) -> tuple[str, io.BytesIO] | None:
    """(mime, bytes) of the edited photo when C2PA can take it as an ingredient, else None."""
    if src is None:
        return None
    mime = mimetypes.guess_type(src.name)[0]
    try:
        if mime not in c2pa.Builder.get_supported_mime_types() or src.stat().st_size > MAX_INGREDIENT_BYTES:
            return None
        return mime, io.BytesIO(src.read_bytes())
    except OSError:  # moved or unreadable since it was opened: the manifest still records the edits
        return None


def sign_image(data: bytes, fmt: str, title: str, *, cert: Path, key: Path, steps: Sequence[Step], history: bool,
               source: Path | None, source_type: str) -> bytes:  # fmt: skip
    """``data`` (an image encoded by Pillow as ``fmt``) with an embedded C2PA manifest signed with
    ``cert`` + ``key``: one action per step (with its model and settings when ``history``), the
    edited photo ``source`` (if any) as parent ingredient, the IPTC ``source_type``."""
    c2pa = _c2pa()
    try:
        stamp = (cert.stat().st_mtime_ns, key.stat().st_mtime_ns)
    except OSError as e:
        raise ProvenanceError(f"cannot read the C2PA signing certificate or key ({e.strerror or e})", e.filename) from None
    signer = _signer(str(cert), str(key), stamp)
    stream = _source_stream(source, c2pa)
    actions = _actions(steps, history, source_type, stream is not None)
    manifest = {"claim_generator_info": [{"name": APP_NAME, "version": __version__}], "title": title,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}  # fmt: skip
    out = io.BytesIO()
    try:
        builder = c2pa.Builder(json.dumps(manifest))
        if stream is not None:
            assert source is not None
            builder.add_ingredient(json.dumps({"title": source.name, "relationship": "parentOf", "label": "source"}),
                                   stream[0], stream[1])  # fmt: skip
        builder.sign(signer, MIME[fmt], io.BytesIO(data), out)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"C2PA signing with this certificate failed ({' '.join(str(e).split())})", cert) from None
    return out.getvalue()
