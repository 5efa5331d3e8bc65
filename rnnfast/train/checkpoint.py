"""Checkpoints: one versioned ``.npz`` (config JSON + named arrays), loaded with ``allow_pickle=False``,
written to a temporary file in the same folder, fsynced, then atomically renamed over the target."""
from __future__ import annotations

import json
import os
import secrets
import stat

import numpy as np

FORMAT = "rnnfast-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """The file is missing, not a checkpoint, damaged, or of another version."""


def save_checkpoint(path, config: dict, arrays: dict) -> None:
    """Write ``config`` (JSON-serializable) and ``arrays`` (name -> ndarray) to ``path`` atomically."""
    path = os.fspath(path)
    header = {"format": FORMAT, "version": VERSION, "config": config}
    payload = {"__header__": np.array(json.dumps(header))}
    for name, a in arrays.items():
        if name.startswith("__"):
            raise ValueError(f"array name {name!r} is reserved")
        a = np.asarray(a)
        if a.dtype == object:
            raise TypeError(f"array {name!r} has dtype object; checkpoints hold numeric arrays only")
        payload[name] = a
    write_atomically(path, lambda f: np.savez(f, **payload))


def write_atomically(path, write) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``path``, fsync it and rename it over ``path``
    (then fsync the folder): a reader, or a crash, sees the old file or the new one, never a part."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = _new_temporary(folder, path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _new_temporary(folder: str, path: str):
    """A new file beside ``path``, with the mode ``path`` would get from ``open``: the user's umask on
    mode 0o666 (as ``numpy.save`` and ``torch.save`` give), or the mode of the file it will replace.
    ``tempfile.mkstemp`` makes 0o600, which the rename would carry over."""
    while True:
        tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        break
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    except OSError:  # no file to replace (or not ours to read): the umask's mode stands
        pass
    return fd, tmp


def load_checkpoint(path):
    """Returns ``(config, arrays)``; raises ``CheckpointError`` with one clear line on any problem."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__header__" not in z.files:
                raise CheckpointError(f"{path} is not an rnnfast checkpoint (no header)")
            header = json.loads(str(z["__header__"]))
            if not isinstance(header, dict) or not isinstance(header.get("config"), dict):
                raise CheckpointError(f"{path} is not an rnnfast checkpoint (bad header)")
            arrays = {k: z[k] for k in z.files if k != "__header__"}
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - damage shows up as many types (zipfile, npy header parser, json)
        # allow_pickle=False: nothing in the file can run code, so any failure is damage.
        raise CheckpointError(f"{path} is damaged or not a checkpoint ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rnnfast checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {header.get('version')}; this rnnfast reads {VERSION}")
    return header["config"], arrays
