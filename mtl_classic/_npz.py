"""Uncompressed ``.npz`` files whose members' data start on 64-byte boundaries, read by copy or memory map; no pickle.

A saved model's ``arrays.npz`` is an ordinary zip of ``.npy`` members (``numpy.load(..., allow_pickle=False)`` reads
it). :func:`write_npz` pads each member's local header so that its data is aligned; :func:`read_npz` with
``mmap_mode="r"`` then maps the members straight from the file without copying.
"""
import os
import struct
import zipfile
import zlib

import numpy as np

from ._errors import ModelFormatError

__all__ = ["write_npz", "read_npz"]

_ALIGN = 64                 # numpy pads .npy headers to 64 bytes; the zip members start on the same boundary
_PAD_EXTRA_ID = 0xD935      # zip "extra field" id used for alignment padding (as Android's zipalign); readers skip it
_ZIP64_EXTRA_LEN = 20       # the zip64 extra field zipfile writes with force_zip64=True
_LOCAL_HEADER_LEN = 30


def write_npz(path, arrays):
    """Write ``arrays`` (name -> ndarray) as an uncompressed ``.npz`` whose member data are 64-byte aligned."""
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.dtype.hasobject:
                raise ValueError(f"array {name!r} has dtype object, which cannot be saved without pickle.")
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            # the local header is 30 bytes + name + extra (+ 20 for zip64); pad the extra so the data is aligned
            base = fh.tell() + _LOCAL_HEADER_LEN + len(info.filename.encode("utf-8")) + _ZIP64_EXTRA_LEN
            pad = (-base) % _ALIGN
            if pad:
                if pad < 4:
                    pad += _ALIGN
                info.extra = struct.pack("<HH", _PAD_EXTRA_ID, pad - 4) + b"\0" * (pad - 4)
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _member_layout(fh, info):
    """(data offset, shape, dtype, fortran order) of one stored ``.npy`` member of an open zip file."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFormatError(f"member {info.filename!r} is compressed; memory mapping needs stored members.")
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL_HEADER_LEN)
    if len(header) != _LOCAL_HEADER_LEN or header[:4] != b"PK\x03\x04":
        raise ModelFormatError(f"member {info.filename!r}: bad local zip header (truncated or corrupt file).")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + _LOCAL_HEADER_LEN + name_len + extra_len
    fh.seek(start)
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ModelFormatError(f"member {info.filename!r}: unsupported .npy version {version}.")
    if dtype.hasobject:
        raise ModelFormatError(f"member {info.filename!r} holds Python objects; refusing to load it.")
    offset = fh.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - start + nbytes != info.file_size:
        raise ModelFormatError(f"member {info.filename!r}: its .npy header announces {nbytes} bytes of data but the "
                               f"member holds {info.file_size - (offset - start)} (corrupt file).")
    return offset, shape, dtype, fortran


def read_npz(path, names, mmap_mode=None):
    """Read the members ``names`` of an ``.npz``; with ``mmap_mode`` map them from the file instead of copying."""
    where = os.fspath(path)
    try:
        if mmap_mode is None:
            out = {}
            with np.load(where, allow_pickle=False) as z:
                missing = [n for n in names if n not in z.files]
                if missing:
                    raise ModelFormatError(f"{where}: arrays {missing} are missing (truncated or foreign file).")
                for n in names:
                    out[n] = z[n]
            return out
        if mmap_mode not in ("r", "c"):
            raise ValueError(f"mmap_mode must be None, 'r' or 'c'. Got {mmap_mode!r}.")
        out = {}
        with open(where, "rb") as fh, zipfile.ZipFile(fh) as zf:
            infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            missing = [n for n in names if n not in infos]
            if missing:
                raise ModelFormatError(f"{where}: arrays {missing} are missing (truncated or foreign file).")
            layouts = {n: _member_layout(fh, infos[n]) for n in names}
        for n, (offset, shape, dtype, fortran) in layouts.items():
            if int(np.prod(shape, dtype=np.int64)) == 0:
                out[n] = np.zeros(shape, dtype=dtype)
            else:
                out[n] = np.memmap(where, dtype=dtype, mode=mmap_mode, offset=offset, shape=shape,
                                   order="F" if fortran else "C")
        return out
    except ModelFormatError:
        raise
    except FileNotFoundError:
        raise ModelFormatError(f"{where} is missing: not a saved mtl_classic model directory.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError, struct.error) as exc:
        raise ModelFormatError(f"{where} is truncated or corrupt ({type(exc).__name__}: {exc}).") from None
