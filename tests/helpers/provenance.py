"""Provenance fixtures made by the tests themselves: a test CA and C2PA signer (valid, tampered,
expired manifests), XMP digital source type, PNG generation parameters, EXIF Software, and the
Stable Diffusion DWT-DCT watermark."""

from __future__ import annotations

import datetime as dt
import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, PngImagePlugin

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
A1111_PARAMETERS = "a cat in a hat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aidetect tests"),
        ]
    )


def _usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class TestCA:
    """A root CA (EC P-256) that signs C2PA signing certificates; ``anchors`` is its PEM file."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    anchors: Path

    @classmethod
    def create(cls, folder: Path) -> TestCA:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("aidetect test root"))
            .issuer_name(_name("aidetect test root"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(sign=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        anchors = folder / "test-root.pem"
        anchors.write_text(_pem(cert))
        return cls(key, cert, anchors)

    def leaf(self, not_after: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("aidetect test signer"))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(sign=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return key, cert

    def sign(self, image: bytes, mime: str, source_type: str, *, expires_in_s: float | None = None) -> bytes:
        """``image`` with an embedded C2PA manifest (a ``c2pa.created`` action of ``source_type``).

        ``expires_in_s``: a signing certificate that expires that many seconds from now (the SDK refuses
        to sign with one already expired); the caller waits it out to get an expired manifest."""
        import c2pa

        days = 10 if expires_in_s is None else 0
        not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days, seconds=expires_in_s or 0)
        key, cert = self.leaf(not_after)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        info = c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256, (_pem(cert) + _pem(self.cert)).encode(), key_pem, None
        )
        action = {"action": "c2pa.created", "digitalSourceType": IPTC_DST + source_type}
        manifest = {
            "claim_generator_info": [{"name": "aidetect-tests", "version": "1"}],
            "title": "fixture",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}],
        }
        settings = {"verify": {"verify_after_sign": False}, "builder": {"thumbnail": {"enabled": False}}}
        builder = c2pa.Builder(manifest, context=c2pa.Context.from_dict(settings))
        out = io.BytesIO()
        builder.sign(c2pa.Signer.from_info(info), mime, io.BytesIO(image), out)
        return out.getvalue()


def wait_past(seconds: float) -> None:
    """Sleep until a certificate made ``seconds`` from now has expired (X.509 times have 1 s resolution)."""
    time.sleep(seconds + 1.2)


def tamper(signed: bytes) -> bytes:
    """Flip a byte of the image data (near the end, inside the scan data) so the hard binding breaks."""
    b = bytearray(signed)
    b[-20] ^= 0xFF
    return bytes(b)


def plain_image(size: int = 64, fmt: str = "JPEG", seed: int = 0, **save: object) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **save)
    return buf.getvalue()


def xmp_packet(source_type: str, *, as_attribute: bool = True) -> bytes:
    value = IPTC_DST + source_type
    if as_attribute:
        desc = f'<rdf:Description rdf:about="" Iptc4xmpExt:DigitalSourceType="{value}"/>'
    else:
        element = f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{value}"/>'
        desc = f'<rdf:Description rdf:about="">{element}</rdf:Description>'
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f"{desc}</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def xmp_bomb() -> bytes:
    """The billion-laughs entity expansion, as an XMP packet."""
    ents = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    body = '<x:xmpmeta xmlns:x="adobe:ns:meta/">&a9;</x:xmpmeta>'
    return f'<?xml version="1.0"?><!DOCTYPE x:xmpmeta [{ents}]>{body}'.encode()


def jpeg_with_xmp(packet: bytes, size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(buf, "JPEG", xmp=packet)
    return buf.getvalue()


def png_with_text(items: dict[str, str], size: int = 64, *, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in items.items():
        info.add_itxt(key, value, zip=compressed) if compressed else info.add_text(key, value)
    return plain_image(size, "PNG", pnginfo=info)


def jpeg_with_software(software: str, size: int = 64) -> bytes:
    exif = Image.Exif()
    exif[0x0131] = software
    return plain_image(size, "JPEG", exif=exif)


def watermarked_png(text: str = "StableDiffusionV1", size: int = 512) -> bytes:
    """A textured image carrying ``text`` as the DWT-DCT watermark, the Stable Diffusion way (the mark
    survives a lossless round trip at about 0.95 bit accuracy here; flat images decode worse)."""
    from imwatermark import WatermarkEncoder  # imports torch: tests only

    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(3)
    base = np.stack([(xx * 0.3 + 60), (yy * 0.3 + 70), ((xx + yy) * 0.15 + 50)], -1)
    bgr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    enc = WatermarkEncoder()
    enc.set_watermark("bytes", text.encode())
    marked = enc.encode(bgr, "dwtDct")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(marked[:, :, ::-1])).save(buf, "PNG")
    return buf.getvalue()
