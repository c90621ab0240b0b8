"""Provenance in written images (XMP source type + history, C2PA), read back by exiftool and c2pa."""

from __future__ import annotations

import datetime
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageCms

from ganeditor.core.imageio import read_image, write_image
from ganeditor.core.provenance import (COMPOSITE, GENERATED, ProvenanceError, ProvenanceOptions, edited, generated,
                                       record)
from ganeditor.core.xmp import clean_xmp

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
FORMATS = [("png", 8), ("png", 16), ("jpg", 8), ("tif", 8), ("tif", 16), ("webp", 8)]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "tiny-sr.safetensors"
    path.write_bytes(b"not really weights, but a file with a known digest")
    return path


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> bytes:
    e = Image.Exif()
    e[0x013B] = "Ada Photographer"  # Artist
    return e.tobytes()


def _history(meta: dict) -> list[str]:
    v = meta.get("XMP-xmpMM:HistoryParameters", [])
    return v if isinstance(v, list) else [v]


@pytest.mark.parametrize("ext, bits", FORMATS)
def test_every_format_carries_source_type_and_history_beside_icc_and_exif(tmp_path, exiftool, model, ext, bits):
    dtype = np.uint8 if bits == 8 else np.uint16
    px = np.random.RandomState(0).randint(0, 255 if bits == 8 else 65535, (12, 17, 3)).astype(dtype)
    step = record("upscale", model, {"outscale": 4.0, "fast": False, "tile": None})
    out = tmp_path / f"out.{ext}"
    notes = write_image(out, px, bit_depth=bits, icc_profile=_icc(), exif=_exif(),
                        provenance=edited(step, options=ProvenanceOptions()))  # fmt: skip
    meta = exiftool(out)
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + COMPOSITE
    assert _history(meta) == [f"upscale with tiny-sr (SHA-256 {step.model_sha256}): outscale=4, fast=off"]
    assert meta["XMP-xmpMM:HistoryAction"] == "edited"
    assert meta["XMP-xmpMM:HistorySoftwareAgent"].startswith("GAN Editor ")
    assert meta["XMP-xmp:CreatorTool"] == meta["XMP-xmpMM:HistorySoftwareAgent"]
    assert "sRGB" in meta["ICC_Profile:ProfileDescription"]
    if ext == "tif":
        assert notes == ["EXIF not written to TIFF"]
    else:
        assert meta["IFD0:Artist"] == "Ada Photographer"
    import hashlib

    assert step.model_sha256 == hashlib.sha256(model.read_bytes()).hexdigest()


def test_generated_edited_and_an_edit_of_a_generated_image(tmp_path, exiftool, model):
    px = np.full((8, 8, 3), 120, np.uint8)
    opts = ProvenanceOptions()
    write_image(tmp_path / "g.png", px, provenance=generated(record("generate", model, {"seed": 3}), options=opts))
    meta = exiftool(tmp_path / "g.png")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + GENERATED
    assert meta["XMP-xmpMM:HistoryAction"] == "created"
    # upscaling that file: still wholly generated, and its history goes on
    src = read_image(tmp_path / "g.png")
    write_image(tmp_path / "g2.jpg", px, xmp=src.xmp, provenance=edited(record("upscale", model), options=opts))
    meta = exiftool(tmp_path / "g2.jpg")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + GENERATED
    assert meta["XMP-xmpMM:HistoryAction"] == ["created", "edited"]
    assert [h.split(" ")[0] for h in _history(meta)] == ["generate", "upscale"]


def test_history_can_be_turned_off_but_not_the_source_type(tmp_path, exiftool, model, monkeypatch):
    monkeypatch.setenv("GANEDITOR_PROVENANCE_HISTORY", "0")
    write_image(tmp_path / "o.webp", np.zeros((8, 8, 3), np.uint8), provenance=edited(record("translate", model)))
    meta = exiftool(tmp_path / "o.webp")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + COMPOSITE
    assert not [k for k in meta if "History" in k or "CreatorTool" in k or "tiny-sr" in str(meta[k])]


def test_the_photos_own_xmp_is_kept_without_stale_orientation(tmp_path, exiftool, model):
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
           b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:my="http://example.org/my/" tiff:Orientation="6" '
           b'my:Roll="12"><dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) Ada</rdf:li></rdf:Alt></dc:rights>'
           b'</rdf:Description></rdf:RDF></x:xmpmeta>')  # fmt: skip
    Image.new("RGB", (8, 6)).save(tmp_path / "photo.jpg", xmp=xmp)
    photo = read_image(tmp_path / "photo.jpg")
    assert b"Orientation" not in photo.xmp and b"(c) Ada" in photo.xmp
    write_image(tmp_path / "out.png", photo.pixels, xmp=photo.xmp,
                provenance=edited(record("restore", model), options=ProvenanceOptions()))  # fmt: skip
    meta = exiftool(tmp_path / "out.png")
    assert meta["XMP-dc:Rights"] == "(c) Ada"
    assert [v for k, v in meta.items() if k.startswith("XMP-") and k.endswith(":Roll")] == [12]  # own namespace kept
    assert "XMP-tiff:Orientation" not in meta
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + COMPOSITE
    write_image(tmp_path / "plain.tif", photo.pixels, xmp=photo.xmp)  # no generative step: kept as it was
    meta = exiftool(tmp_path / "plain.tif")
    assert meta["XMP-dc:Rights"] == "(c) Ada" and "XMP-iptcExt:DigitalSourceType" not in meta


@pytest.mark.parametrize("bad", [b"<x:xmpmeta", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta>&a;</x:xmpmeta>',
                                 b"<a>" + b" " * (5 << 20) + b"</a>"])
def test_unusable_input_xmp_is_dropped(bad):
    assert clean_xmp(bad) is None


# ----------------------------------------------------------------------------------------------- C2PA


def _certificate(tmp_path, other_key=False):
    """A self-made signing certificate (EC P-256, self-signed) and its key as PEM files; ``other_key``:
    the key file holds a different key than the certificate's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test signer"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GAN Editor tests")])  # fmt: skip
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    if other_key:
        key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    (tmp_path / "chain.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))  # fmt: skip
    return tmp_path / "chain.pem", tmp_path / "key.pem"


@pytest.mark.parametrize("ext, bits", FORMATS)
def test_c2pa_manifest_signed_with_a_test_certificate(tmp_path, exiftool, model, ext, bits):
    c2pa = pytest.importorskip("c2pa")
    cert, key = _certificate(tmp_path)
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (24, 16), (90, 120, 30)).save(photo)
    dtype = np.uint8 if bits == 8 else np.uint16
    px = np.random.RandomState(1).randint(0, 255, (16, 24, 3)).astype(dtype) * (1 if bits == 8 else 257)
    step = record("translate", model, {"network": "G_A"})
    out = tmp_path / f"out.{ext}"
    write_image(out, px, bit_depth=bits, provenance=edited(step, source=photo, options=ProvenanceOptions(True, cert, key)))
    mime = {"png": "image/png", "jpg": "image/jpeg", "tif": "image/tiff", "webp": "image/webp"}[ext]
    report = json.loads(c2pa.Reader(mime, io.BytesIO(out.read_bytes())).json())
    assert report["validation_state"] == "Valid"  # hashes and signature check out (the test signer is not trusted)
    assert {s["code"] for s in report.get("validation_status", [])} <= {"signingCredential.untrusted"}
    manifest = report["manifests"][report["active_manifest"]]
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    assert actions[1]["digitalSourceType"] == IPTC + COMPOSITE
    assert actions[1]["parameters"]["org.ganeditor.model_sha256"] == step.model_sha256
    assert [i["title"] for i in manifest["ingredients"]] == ["photo.jpg"]
    meta = exiftool(out)  # the XMP is still there beside the manifest
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + COMPOSITE
    if ext in ("png", "jpg"):  # exiftool 12.x lists the JUMBF boxes of these two containers
        assert "c2pa" in meta["JUMBF:JUMDLabel"]
    if ext in ("png", "tif"):  # lossless: signing left the pixels alone
        np.testing.assert_array_equal(read_image(out).pixels, px)


def test_c2pa_configuration_errors_are_one_clear_line(tmp_path, model, monkeypatch):
    pytest.importorskip("c2pa")
    px = np.zeros((8, 8, 3), np.uint8)
    monkeypatch.setenv("GANEDITOR_C2PA_CERT", str(tmp_path / "chain.pem"))
    with pytest.raises(ProvenanceError, match="needs both GANEDITOR_C2PA_CERT and GANEDITOR_C2PA_KEY"):
        generated(record("generate", model))
    monkeypatch.setenv("GANEDITOR_C2PA_KEY", str(tmp_path / "key.pem"))
    with pytest.raises(ProvenanceError, match="cannot read the C2PA signing certificate"):
        write_image(tmp_path / "a.png", px, provenance=generated(record("generate", model)))
    cert, key = _certificate(tmp_path, other_key=True)
    with pytest.raises(ProvenanceError, match="C2PA"):
        write_image(tmp_path / "b.png", px, provenance=generated(record("generate", model)))
    key.write_text("garbage")
    with pytest.raises(ProvenanceError, match="not a PEM private key"):
        write_image(tmp_path / "c.png", px, provenance=generated(record("generate", model)))
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*.tmp"))
