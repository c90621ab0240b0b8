"""Packaging files: the .desktop entry, AppStream metadata and the PyInstaller spec (dry run)."""

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_desktop_entry_and_appstream_agree():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(ROOT / "packaging" / "ganeditor.desktop")
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Exec"].startswith("ganeditor")
    assert "image/png" in entry["MimeType"]
    meta = ET.parse(ROOT / "packaging" / "share" / "metainfo" / "io.github.ganeditor.GanEditor.metainfo.xml").getroot()
    assert meta.find("launchable").text == "ganeditor.desktop"
    assert meta.find("icon").text == entry["Icon"]
    assert (ROOT / "resources" / "icons" / f"{entry['Icon']}.svg").is_file()


def test_pyinstaller_spec_bundles_models_and_resources_as_data():
    class Stub:
        def __init__(self, *a, **k):
            self.args, self.kwargs = a, k
            self.pure = self.scripts = self.binaries = self.datas = []

    ns = {"Analysis": Stub, "PYZ": Stub, "EXE": Stub, "COLLECT": Stub, "SPECPATH": str(ROOT / "packaging")}
    exec((ROOT / "packaging" / "ganeditor.spec").read_text(), ns)
    datas = ns["a"].kwargs["datas"]
    dests = {d for _src, d in datas}
    assert {"models", "resources", "resources/icons"} <= dests
    assert any(src.endswith("style.qss") for src, _d in datas)
    assert all(not src.endswith(".py") for src, d in datas if d == "models")  # weights and cards, not scripts
    assert "ganeditor.cli.gui" in ns["a"].kwargs["hiddenimports"]
    assert ns["coll"].kwargs["name"] == "ganeditor"
