"""Packaging files: desktop entry, AppStream metadata, MIME type, icons, the PyInstaller spec (read
with stubs) and install-desktop.  The validators themselves run in .ci/run."""

import configparser
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from ganeditor import __version__
from ganeditor.cli import main

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "packaging" / "linux"
APP_ID = "io.github.ganeditor.GanEditor"
# Pillow format -> the shared-mime-info type a file manager gives such files
FORMAT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "TIFF": "image/tiff", "WEBP": "image/webp",
               "BMP": "image/bmp", "DIB": "image/bmp", "GIF": "image/gif", "TGA": "image/x-tga",
               "PSD": "image/vnd.adobe.photoshop", "PPM": "image/x-portable-pixmap", "ICO": "image/vnd.microsoft.icon",
               "QOI": "image/qoi", "SGI": "image/x-sgi", "PCX": "image/vnd.zbrush.pcx", "AVIF": "image/avif",
               "JPEG2000": "image/jp2"}  # fmt: skip


def _entry() -> configparser.SectionProxy:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(LINUX / f"{APP_ID}.desktop")
    return cp["Desktop Entry"]


def test_desktop_entry_opens_every_image_format_we_read_and_projects():
    from ganeditor.core.imageio_open import DECODE_FORMATS

    entry = _entry()
    assert entry["Type"] == "Application" and entry["Exec"] == "ganeditor gui %f" and entry["Icon"] == APP_ID
    mimes = set(entry["MimeType"].strip(";").split(";"))
    assert {FORMAT_MIME[f] for f in DECODE_FORMATS} | {"application/x-ganedit"} == mimes - {
        "image/x-portable-graymap", "image/x-portable-bitmap", "image/x-portable-anymap", "image/jpx"}  # PPM's kin
    mime = ET.parse(LINUX / f"{APP_ID}.mime.xml").getroot()
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    t = mime.find("m:mime-type", ns)
    assert t.get("type") == "application/x-ganedit" and t.find("m:glob", ns).get("pattern") == "*.ganedit"


def test_appstream_metadata_agrees_with_the_entry_and_the_version():
    meta = ET.parse(LINUX / f"{APP_ID}.metainfo.xml").getroot()
    assert meta.find("id").text == APP_ID
    assert meta.find("launchable").text == f"{APP_ID}.desktop"
    assert meta.find("icon").text == _entry()["Icon"]
    assert meta.find("releases/release").get("version") == __version__  # the newest release is this version
    shots = [i.text for i in meta.findall("screenshots/screenshot/image")]
    assert shots and all(s.startswith("https://") for s in shots)
    for url in shots:  # each points at a screenshot of the real app kept in the repository
        rel = url.split("/main/", 1)[1]
        assert (ROOT / rel).is_file(), rel
        assert Image.open(ROOT / rel).size == (1280, 720)


def test_icons_are_rendered_in_every_hicolor_size_from_one_source(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_icons", LINUX / "make_icons.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    files = mod.make_icons(tmp_path)
    for n in mod.SIZES:
        im = Image.open(tmp_path / "hicolor" / f"{n}x{n}" / "apps" / f"{APP_ID}.png")
        assert im.size == (n, n) and im.mode == "RGBA" and im.getextrema()[3] == (0, 255)  # transparent corners
    assert (tmp_path / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == mod.SOURCE.read_bytes()
    assert len(files) == len(mod.SIZES) + 1


def test_version_of_the_bundle_entry_point_answers_without_importing_torch():
    # the bundle runs ganeditor/__main__.py, as python -m does; -X importtime lists every module imported
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "ganeditor", "--version"], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stdout == f"ganeditor {__version__}\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "ganeditor" in imported and "torch" not in imported and "ganeditor.cli" not in imported


def test_pyinstaller_spec_bundles_models_resources_and_desktop_files(tmp_path):
    class Stub:
        def __init__(self, *a, **k):
            self.args, self.kwargs = a, k
            self.pure = self.scripts = self.binaries = self.datas = []

    ns = {"Analysis": Stub, "PYZ": Stub, "EXE": Stub, "COLLECT": Stub, "SPECPATH": str(ROOT / "packaging"),
          "workpath": str(tmp_path)}  # fmt: skip
    exec((ROOT / "packaging" / "ganeditor.spec").read_text(), ns)
    datas = ns["a"].kwargs["datas"]
    dests = {d for _src, d in datas}
    assert {"models", "resources", "resources/icons", "resources/samples", "share/applications", "share/metainfo",
            "share/mime/packages"} <= dests  # fmt: skip
    assert len({d for d in dests if d.startswith("share/icons/hicolor/")}) == 10  # 9 sizes + scalable, rendered
    assert all(not src.endswith(".py") for src, d in datas if d == "models")  # weights and cards, not scripts
    from ganeditor.cli import COMMANDS
    from ganeditor.pipelines.train.engine import RECIPES

    recipes = set(re.findall(r"ganeditor\.[\w.]+(?=:)", repr(RECIPES)))
    assert set(COMMANDS) | recipes <= set(ns["a"].kwargs["hiddenimports"])  # all imported by name reach the bundle
    assert ns["coll"].kwargs["name"] == "ganeditor" and ns["VERSION"] == __version__


def test_install_desktop_puts_the_app_in_the_menu_and_removes_it(tmp_path, capsys):
    prefix = tmp_path / "share"
    assert main(["install-desktop", "--prefix", str(prefix)]) == 0
    entry = (prefix / "applications" / f"{APP_ID}.desktop").read_text()
    assert re.search(r"^Exec=\S*python\S* -m ganeditor gui %f$", entry, re.M)  # this installation, not PATH
    assert (prefix / "mime" / "packages" / f"{APP_ID}.xml").is_file()
    assert (prefix / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    assert (prefix / "icons" / "hicolor" / "48x48" / "apps" / f"{APP_ID}.png").is_file()
    assert main(["install-desktop", "--prefix", str(prefix), "--uninstall"]) == 0
    assert not (prefix / "applications" / f"{APP_ID}.desktop").exists()
    assert not list((prefix / "icons").rglob("*.png"))
    assert "removed 13 file(s)" in capsys.readouterr().out
