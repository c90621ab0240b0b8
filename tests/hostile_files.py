"""Crafted files from the attack on the CLI (issue 18), built small.  ``SCALE`` makes the declared
(not the stored) sizes larger for the measurements of ``bench/bench_hostile_files.py``.

Each builder writes into ``folder`` and returns the file; ``HOSTILE`` lists them with the CLI
arguments that open them.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from writers.nvlabs_pkl_write import NVlabsPickler, module_record, write_storage_stream


def _gl(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _tiny_g():
    from ganeditor.archs import build

    torch.manual_seed(0)
    return build("stylegan2-generator", z_dim=8, w_dim=8, c_dim=0, img_resolution=8, img_channels=3,
                 mapping_kwargs={"num_layers": 1}, synthesis_kwargs={"channel_base": 64, "channel_max": 8})


def _pkl(folder: Path, name: str, obj) -> Path:
    f = io.BytesIO()
    NVlabsPickler(f).dump(obj)
    (folder / name).write_bytes(f.getvalue())
    return folder / name


def postscript_as_png(folder: Path, marker: Path, loop: bool = False) -> Path:
    """PostScript saved as holiday.png: writes ``marker`` (or loops forever) if Ghostscript runs it."""
    body = "{ } loop" if loop else f"/f ({marker}) (w) file def f (owned) writestring f closefile"
    path = folder / ("loop.png" if loop else "holiday.png")
    path.write_text(f"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 40\n{body}\nshowpage\n")
    return path


def safetensors_num_feat(folder: Path, num_feat: int = 4096) -> Path:
    """Our format, no tensors, metadata saying RRDBNet num_feat=4096 (6.9 GB if built)."""
    nets = {"net": {"arch": "rrdbnet", "kwargs": {"num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": num_feat,
                                                  "num_block": 23, "num_grow_ch": 32}}}  # fmt: skip
    data = save({}, metadata={"ganeditor.format": "1", "ganeditor.nets": json.dumps(nets)})
    (folder / "bomb.safetensors").write_bytes(data)
    return folder / "bomb.safetensors"


def zip_bomb_pth(folder: Path, declared_mib: int = 64) -> Path:
    """A torch zip file whose one storage member holds ``declared_mib`` MiB of zeros, deflated."""
    plain = folder / "plain.pth"
    torch.save({"conv_first.weight": torch.zeros(declared_mib << 18)}, plain)
    path = folder / "bomb.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            if not info.filename.endswith("/data/0"):
                out.writestr(info, src.read(info))
                continue
            member = zipfile.ZipInfo(info.filename)
            member.compress_type = zipfile.ZIP_DEFLATED
            with src.open(info) as r, out.open(member, "w", force_zip64=True) as w:
                while chunk := r.read(1 << 22):
                    w.write(chunk)
    plain.unlink()
    return path


def nvlabs_resolution(folder: Path, resolution: int = 16384) -> Path:
    """An NVlabs pickle of a tiny generator whose kwargs say img_resolution=16384 (3.3 GB if built)."""
    rec = module_record(_tiny_g())
    rec.meta["state"]["_init_kwargs"]["img_resolution"] = resolution
    return _pkl(folder, "res16384.pkl", {"G": rec, "D": None, "G_ema": rec})


def nvlabs_wrong_shape(folder: Path) -> Path:
    """A tiny generator with one tensor of the wrong shape."""
    G = _tiny_g()
    rec = module_record(G)
    b4 = rec.meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["b4"].meta["state"]
    b4["_parameters"]["const"] = torch.nn.Parameter(torch.zeros(3, 4, 4))
    return _pkl(folder, "wrong_shape.pkl", {"G": rec, "D": None, "G_ema": rec})


def nvlabs_stride0(folder: Path, numel: int = 1_500_000_000) -> Path:
    """A generator tensor rebuilt as ``numel`` float64 from a 1-element storage with stride 0."""
    rec = module_record(_tiny_g())
    rec.meta["state"]["_modules"]["mapping"].meta["state"]["_buffers"]["w_avg"] = "EXPANDED"
    f = io.BytesIO()
    NVlabsPickler(f).dump({"G": rec, "D": None, "G_ema": rec})
    storage = (_gl("torch.storage", "_load_from_bytes") + pickle.BINBYTES
               + struct.pack("<I", len(s := write_storage_stream(torch.zeros(1, dtype=torch.float64)))) + s
               + pickle.TUPLE1 + pickle.REDUCE)  # fmt: skip
    expanded = (_gl("torch._utils", "_rebuild_tensor_v2") + pickle.MARK + storage + pickle.BININT1 + b"\x00"
                + pickle.MARK + pickle.BININT + struct.pack("<i", numel) + pickle.TUPLE + pickle.MARK
                + pickle.BININT1 + b"\x00" + pickle.TUPLE + pickle.NEWFALSE + pickle.EMPTY_DICT + pickle.TUPLE
                + pickle.REDUCE)  # fmt: skip
    marker = b"\x8c\x08EXPANDED"  # SHORT_BINUNICODE 'EXPANDED'
    data = f.getvalue()
    assert data.count(marker) == 1
    (folder / "stride0.pkl").write_bytes(data.replace(marker, expanded))
    return folder / "stride0.pkl"


def rosinality_resolution(folder: Path, n_up: int = 12) -> Path:
    """A rosinality state dict with tiny tensors whose key count means size 4 * 2**12 = 16384."""
    sd = {"style.1.weight": torch.zeros(8, 8), "style.1.bias": torch.zeros(8), "input.input": torch.zeros(1, 1, 4, 4),
          "conv1.conv.weight": torch.zeros(1, 1, 1, 3, 3), "to_rgb1.conv.weight": torch.zeros(1, 3, 1, 1, 1)}
    for k in range(n_up):
        sd[f"convs.{2 * k}.conv.weight"] = torch.zeros(1, 1, 1, 3, 3)
        sd[f"to_rgbs.{k}.conv.weight"] = torch.zeros(1, 3, 1, 1, 1)
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(8)}, folder / "res16384.pt")
    return folder / "res16384.pt"


def pickle_load_from_bytes_repeated(folder: Path, repeats: int = 5000, nbytes: int = 1_000_000) -> Path:
    """One memoised ~1 MB legacy stream passed to torch.storage._load_from_bytes ``repeats`` times."""
    stream = write_storage_stream(torch.zeros(nbytes // 4))
    out = [pickle.PROTO + b"\x02" + _gl("torch.storage", "_load_from_bytes") + pickle.BINPUT + b"\x00"
           + pickle.BINBYTES + struct.pack("<I", len(stream)) + stream + pickle.BINPUT + b"\x01"
           + pickle.POP + pickle.POP + pickle.EMPTY_LIST + pickle.MARK]  # fmt: skip
    out += [pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + pickle.TUPLE1 + pickle.REDUCE] * repeats
    (folder / "memo_bytes.pkl").write_bytes(b"".join(out) + pickle.APPENDS + pickle.STOP)
    return folder / "memo_bytes.pkl"


def pickle_codecs_repeated(folder: Path, repeats: int = 500, nchars: int = 11_000_000) -> Path:
    """One memoised ``nchars`` string passed to _codecs.encode ``repeats`` times."""
    text = b"a" * nchars
    out = [pickle.PROTO + b"\x02" + _gl("_codecs", "encode") + pickle.BINPUT + b"\x00"
           + pickle.BINUNICODE + struct.pack("<I", nchars) + text + pickle.BINPUT + b"\x01"
           + pickle.SHORT_BINUNICODE + b"\x06latin1" + pickle.BINPUT + b"\x02"
           + pickle.POP + pickle.POP + pickle.POP + pickle.EMPTY_LIST + pickle.MARK]  # fmt: skip
    out += [pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + pickle.BINGET + b"\x02" + pickle.TUPLE2
            + pickle.REDUCE] * repeats  # fmt: skip
    (folder / "memo_codecs.pkl").write_bytes(b"".join(out) + pickle.APPENDS + pickle.STOP)
    return folder / "memo_codecs.pkl"


def binbytes8_pth(folder: Path, declared: int = 10 << 30) -> Path:
    """A legacy torch file whose object pickle declares a 10 GB BINBYTES8 and ends after 16 bytes."""
    head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001,
                                                          "little_endian": True, "type_sizes": {}}))  # fmt: skip
    body = pickle.PROTO + b"\x04" + b"\x8e" + struct.pack("<Q", declared) + b"\0" * 16
    (folder / "binbytes8.pth").write_bytes(head + body)
    return folder / "binbytes8.pth"


def ncnn_interp(folder: Path, scale: int = 500) -> Path:
    """An 85-byte ncnn graph: one Interp scaling images by 500 (a 64x40 photo -> 640 MP)."""
    (folder / "x500.param").write_text(f"7767517\n2 2\nInput in 0 1 data\nInterp up 1 1 data out 0=1 1={scale}.0 2={scale}.0\n")
    (folder / "x500.bin").write_bytes(b"")
    return folder / "x500.param"


def photo(folder: Path, name: str = "photo.png", size: tuple[int, int] = (64, 40)) -> Path:
    from PIL import Image

    x = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3).astype(np.uint8)
    Image.fromarray(x).save(folder / name)
    return folder / name


# name -> (builder, CLI arguments with FILE and PHOTO/OUT placeholders)
HOSTILE = {
    "safetensors num_feat=4096": (safetensors_num_feat, ["info", "FILE"]),
    "zip-bomb .pth": (zip_bomb_pth, ["info", "FILE"]),
    "NVlabs pickle resolution 16384": (nvlabs_resolution, ["info", "FILE"]),
    "rosinality .pt resolution 16384": (rosinality_resolution, ["info", "FILE"]),
    "_load_from_bytes x5000 (memo)": (pickle_load_from_bytes_repeated, ["info", "FILE"]),
    "_codecs.encode x500 (memo)": (pickle_codecs_repeated, ["info", "FILE"]),
    "_rebuild_tensor_v2 stride 0": (nvlabs_stride0, ["info", "FILE"]),
    "BINBYTES8 10 GB in .pth": (binbytes8_pth, ["info", "FILE"]),
    "ncnn Interp x500": (ncnn_interp, ["upscale", "FILE", "PHOTO", "OUT"]),
}
