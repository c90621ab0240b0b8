"""XMP packets: keep a photo's own XMP (creator, rights...) and stamp what GAN Editor did into it.

``clean_xmp`` reads the XMP of an input file and drops what stops being true once pixels are decoded
(orientation, which is applied; pixel dimensions, which change).  ``stamp_xmp`` sets the IPTC
Digital Source Type and appends ``xmpMM:History`` events (the standard XMP processing history that
exiftool, Photoshop and Lightroom show).  Input XMP is untrusted: it is size-capped and parsed with
the standard library's expat with no document type (so no entity expansion); an unreadable packet is
dropped.  Prefixes other than the common ones are written as ns0, ns1... (the namespaces are kept).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ganeditor import APP_NAME

MAX_XMP_BYTES = 4 << 20  # larger packets in input files are dropped, not parsed

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
}
IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
_STALE = [("tiff", "Orientation"), ("tiff", "ImageWidth"), ("tiff", "ImageLength"),
          ("exif", "PixelXDimension"), ("exif", "PixelYDimension")]  # fmt: skip
_HEADER = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_FOOTER = '\n<?xpacket end="w"?>'


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


@dataclass(frozen=True)
class HistoryEvent:
    """One ``xmpMM:History`` entry (stEvt fields)."""

    action: str  # 'created' or 'edited' (XMP's ResourceEvent vocabulary)
    when: str  # ISO 8601, UTC
    software_agent: str  # e.g. 'GAN Editor 0.1.0'
    parameters: str  # what was done, one line


def _parse(xmp: bytes | str | None) -> ET.Element | None:
    """The rdf:RDF element of a packet (wrapped in a fresh x:xmpmeta), or None if unusable."""
    if not xmp or len(xmp) > MAX_XMP_BYTES:
        return None
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    data = data.strip(b"\x00 \t\r\n")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # XMP never declares entities: refuse expansion tricks
        return None
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return None
    rdf = root if root.tag == _q("rdf", "RDF") else root.find(_q("rdf", "RDF"))
    return rdf


def clean_xmp(xmp: bytes | str | None) -> bytes | None:
    """The packet of an input file without the properties that decoding makes stale; None if unusable."""
    rdf = _parse(xmp)
    if rdf is None:
        return None
    for desc in rdf.findall(_q("rdf", "Description")):
        for prefix, name in _STALE:
            desc.attrib.pop(_q(prefix, name), None)
            for el in desc.findall(_q(prefix, name)):
                desc.remove(el)
    return _serialise(rdf)


def stamp_xmp(xmp: bytes | None, source_type: str, events: list[HistoryEvent], creator_tool: str | None) -> bytes:
    """``xmp`` (or a new packet) with Iptc4xmpExt:DigitalSourceType set and ``events`` appended to
    xmpMM:History; ``creator_tool`` (if given) becomes xmp:CreatorTool."""
    rdf = _parse(xmp)
    if rdf is None:
        rdf = ET.Element(_q("rdf", "RDF"))
    descs = rdf.findall(_q("rdf", "Description"))
    if not descs:
        descs = [ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})]
    for desc in descs:  # one value per property in the whole packet
        for prefix, name in (("Iptc4xmpExt", "DigitalSourceType"), ("xmp", "CreatorTool")):
            desc.attrib.pop(_q(prefix, name), None)
            for el in desc.findall(_q(prefix, name)):
                desc.remove(el)
    main = descs[0]
    main.set(_q("Iptc4xmpExt", "DigitalSourceType"), IPTC_SOURCE_TYPES + source_type)
    if creator_tool:
        main.set(_q("xmp", "CreatorTool"), creator_tool)
    if events:
        seq = _history_seq(descs)
        for ev in events:
            li = ET.SubElement(seq, _q("rdf", "li"), {_q("rdf", "parseType"): "Resource"})
            for name, value in (("action", ev.action), ("when", ev.when), ("softwareAgent", ev.software_agent),
                                ("parameters", ev.parameters)):  # fmt: skip
                ET.SubElement(li, _q("stEvt", name)).text = value
    return _serialise(rdf)


def source_type_of(xmp: bytes | None) -> str | None:
    """The IPTC Digital Source Type code in a packet ('trainedAlgorithmicMedia'...), or None."""
    rdf = _parse(xmp)
    if rdf is None:
        return None
    key = _q("Iptc4xmpExt", "DigitalSourceType")
    for desc in rdf.findall(_q("rdf", "Description")):
        value = desc.get(key) or (desc.findtext(key) or "").strip()
        if value:
            return value.rsplit("/", 1)[-1]
    return None


def _history_seq(descs: list[ET.Element]) -> ET.Element:
    """The rdf:Seq of the packet's xmpMM:History, created in the first Description if absent."""
    for desc in descs:
        seq = desc.find(f"{_q('xmpMM', 'History')}/{_q('rdf', 'Seq')}")
        if seq is not None:
            return seq
    return ET.SubElement(ET.SubElement(descs[0], _q("xmpMM", "History")), _q("rdf", "Seq"))


def _serialise(rdf: ET.Element) -> bytes:
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    meta = ET.Element(_q("x", "xmpmeta"), {_q("x", "xmptk"): APP_NAME})
    meta.append(rdf)
    ET.indent(meta, space=" ")
    return (_HEADER + ET.tostring(meta, encoding="unicode") + _FOOTER).encode("utf-8")
