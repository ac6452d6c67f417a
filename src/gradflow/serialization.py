"""gf.save / gf.load: checkpoints as .npz archives with no pickled code.

A state (nested dicts, lists and tuples of tensors, numpy arrays, numbers, strings, bools and
None) is stored as one JSON description of its structure plus one array entry per tensor or
array; ``np.load(allow_pickle=False)`` reads it back, so loading a file can never run code.
Files are written atomically: to a temporary file in the same directory, flushed to disk, then
renamed over the target, so a crash never leaves a half-written checkpoint behind.
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from . import backend as _backend
from . import dtypes as _dtypes
from .tensor import Tensor

_FORMAT = "gradflow-checkpoint"
_VERSION = 1
# How deeply containers may nest: far beyond any state, well within Python's recursion limit.
_MAX_DEPTH = 100


def _store(a, arrays, entry):
    """Appends array ``a`` to ``arrays``; ``entry`` (its JSON entry) says where. The .npy format
    has no bfloat16 (it would read back as raw 2-byte voids): its bits go as uint16, the entry
    naming the dtype."""
    if _dtypes.is_bfloat16(a.dtype):
        a = a.view(np.uint16)
        entry["dtype"] = "bfloat16"
    arrays.append(a)
    return entry


def _fetch(arrays, i, entry):
    """The array ``_store`` kept as number ``i`` (a copy), in its dtype."""
    a = np.array(arrays[i])
    if entry.get("dtype") == "bfloat16":
        if a.dtype != np.uint16:
            raise ValueError(f"load: a bfloat16 entry holds {a.dtype} data, not its uint16 bits")
        a = a.view(_dtypes.as_dtype("bfloat16"))  # (raises saying to install ml_dtypes)
    return a


def _encode(obj, arrays, path=()):
    """``obj`` as JSON-able structure; ``path`` holds the ids of the containers it is inside
    (a container inside itself cannot be stored)."""
    if isinstance(obj, Tensor):
        return _store(obj._host(), arrays, {"__tensor__": len(arrays), "device": obj.device,
                                            "requires_grad": obj.requires_grad})
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("save: arrays of Python objects cannot be stored without pickle")
        return _store(obj, arrays, {"__array__": len(arrays)})
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in path:
            raise ValueError(f"save: the state contains itself (a {type(obj).__name__} inside "
                             "itself cannot be stored)")
        if len(path) >= _MAX_DEPTH:
            raise ValueError(f"save: containers nested more than {_MAX_DEPTH} deep")
        path += (id(obj),)
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__}")
        return {"__dict__": [[k, _encode(v, arrays, path)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, path) for v in obj]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot store a {type(obj).__name__} (only tensors, arrays, numbers, "
                    "strings, None and dicts/lists/tuples of them)")


def _decode(obj, arrays, map_location, depth=0):
    if isinstance(obj, (list, dict)) and depth > _MAX_DEPTH + 1:  # (+1: a tensor's own entry)
        raise ValueError(f"containers nested more than {_MAX_DEPTH} deep")
    depth += 1
    if isinstance(obj, list):
        return [_decode(v, arrays, map_location, depth) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        device = map_location or obj["device"]
        host = _fetch(arrays, obj["__tensor__"], obj)
        _dtypes.check_supported(host.dtype, "load")
        t = Tensor._make(host, "cpu").to(device)
        return t.requires_grad_(True) if obj["requires_grad"] else t
    if "__array__" in obj:
        return _fetch(arrays, obj["__array__"], obj)
    if "__tuple__" in obj:
        return tuple(_decode(v, arrays, map_location, depth) for v in obj["__tuple__"])
    return {k: _decode(v, arrays, map_location, depth) for k, v in obj["__dict__"]}


def save(state, path):
    """Writes ``state`` to ``path`` (conventionally ending in .npz) atomically."""
    path = os.fspath(path)
    arrays = []
    structure = {"format": _FORMAT, "version": _VERSION, "state": _encode(state, arrays)}
    entries = {f"a{i}": a for i, a in enumerate(arrays)}
    entries["__structure__"] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _native(a):
    """``a`` in the machine's byte order (a file written elsewhere may hold '>f4')."""
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def load(path, map_location=None, weights_only=True):
    """Reads a checkpoint written by :func:`save`; tensors go to ``map_location`` (a device
    string) or, by default, back to the device they were saved from. Loading never runs code
    (no pickle): it is always weights-only, so ``weights_only=False`` is refused."""
    if not weights_only:
        raise ValueError("gf.load is always weights-only (checkpoints hold no pickled objects); "
                         "weights_only=False is not supported")
    path = os.fspath(path)
    if map_location is not None:
        map_location = _backend.canonical_device(map_location)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not a checkpoint archive")
        with archive:
            if "__structure__" not in archive.files:
                raise ValueError("no structure entry")
            structure = json.loads(archive["__structure__"].tobytes().decode())
            if not isinstance(structure, dict) or structure.get("format") != _FORMAT:
                raise ValueError("not a gradflow checkpoint")
            if structure.get("version") != _VERSION:
                raise ValueError(f"unsupported checkpoint version {structure.get('version')}")
            arrays = {int(name[1:]): _native(archive[name])
                      for name in archive.files if name != "__structure__"}
        return _decode(structure["state"], arrays, map_location)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, KeyError, IndexError, TypeError, zipfile.BadZipFile,
            json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not a readable gradflow checkpoint ({type(e).__name__}: {e})") from None
