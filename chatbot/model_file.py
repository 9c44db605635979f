"""One trained model as one file: tensors in safetensors, everything else JSON. No pickle.

Layout (all integers little-endian)::

    b"CHATBOT\\x00"            8 bytes, magic
    format version           u32
    JSON length              u64
    JSON (UTF-8)             metadata: domain, config, policies, NLU settings, versions
    tensors length           u64
    safetensors bytes        every tensor, names prefixed by their owner ("nlu.", "policy.0.")
    SHA-256                  32 bytes, of everything above

A file that is truncated, altered or of another format is refused with a ModelFileError that says
which. Nothing in the file names code to import: the loader maps known component names to classes.

Tensors are read as numpy arrays: serving a model never imports torch (it costs a second at
startup). Training hands in torch tensors or numpy arrays; both are written alike.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import struct
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from chatbot.errors import ModelFileError
from chatbot.file_input import MODEL_FILE_LIMIT, file_problem, read_bytes


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a model is read or written: its JSON and
    memorized states are millions of new objects, none of them garbage, and every full
    collection meanwhile walks all of them. The large-project benchmark's M model (26.5 MB)
    loaded in 1.8-2.1 s with it running, 0.64-0.8 s paused (written: 2.0 s, 0.56 s). Reference
    counting frees as always; the collector runs again afterwards (if it ran before: a read in
    another thread leaves it to that one)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


MAGIC = b"CHATBOT\x00"
FORMAT_VERSION = 1
SUFFIX = ".model"  # what ``chatbot train`` names its files, and takes an ``--out`` file name for
_DIGEST = 32


# A tensor as training or a loaded model holds it: a numpy array or a torch tensor.
Tensors = Mapping[str, Any]


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array of a numpy array or a torch tensor (without importing torch)."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value)


def dumps(meta: dict[str, Any], tensors: Tensors) -> bytes:
    # Key order is kept: the domain's order of responses and actions is the policies' label order.
    body = json.dumps(meta, separators=(",", ":")).encode("utf-8")
    blob = st_save({k: to_numpy(v) for k, v in tensors.items()}) if tensors else b""
    head = (
        MAGIC
        + struct.pack("<IQ", FORMAT_VERSION, len(body))
        + body
        + struct.pack("<Q", len(blob))
        + blob
    )
    return head + hashlib.sha256(head).digest()


def loads(data: bytes, source: str = "model") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if len(data) < len(MAGIC) + 12 + 8 + _DIGEST or not data.startswith(MAGIC):
        raise ModelFileError(_not_ours(data[: len(MAGIC)], source))
    payload, digest = data[:-_DIGEST], data[-_DIGEST:]
    version, body_len = struct.unpack_from("<IQ", data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{source}: model format version {version}; this build reads version "
            f"{FORMAT_VERSION}. Retrain with `chatbot train`"
        )
    offset = len(MAGIC) + 12
    if offset + body_len + 8 > len(payload):
        raise ModelFileError(f"{source}: the file is truncated (metadata cut short)")
    body = payload[offset : offset + body_len]
    offset += body_len
    (blob_len,) = struct.unpack_from("<Q", payload, offset)
    offset += 8
    if offset + blob_len != len(payload):
        raise ModelFileError(f"{source}: the file is truncated or has extra bytes (tensor section)")
    if hashlib.sha256(payload).digest() != digest:
        raise ModelFileError(f"{source}: checksum mismatch; the file was altered or damaged")
    try:
        meta = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{source}: metadata is not valid JSON ({exc})") from exc
    blob = payload[offset:]
    try:
        tensors = st_load(bytes(blob)) if blob_len else {}
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{source}: tensor section is invalid ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{source}: metadata must be a JSON object")
    return meta, tensors


def _not_ours(head: bytes, source: str) -> str:
    """Why a file whose first bytes are ``head`` is not read: a Rasa model (a .tar.gz file,
    gzip's magic bytes) or a zip archive gets a hint, anything else says so."""
    if head.startswith(b"\x1f\x8b"):
        return (
            f"{source}: this is a Rasa model (a .tar.gz file), not a chatbot model file; "
            "train this project with `chatbot train`"
        )
    if head.startswith(b"PK"):
        return (
            f"{source}: this is a zip/tar model (Rasa's format?), not a chatbot model file; "
            "train this project with `chatbot train`"
        )
    return f"{source}: not a chatbot model file (wrong header or too short)"


def save(path: Path, meta: dict[str, Any], tensors: Tensors) -> None:
    """Write atomically: a crash mid-write never leaves a half model under ``path``. A model
    larger than any server would load (``MODEL_FILE_LIMIT``) is refused here, naming its
    largest parts, rather than written for ``chatbot run`` to refuse."""
    data = dumps(meta, tensors)
    if len(data) > MODEL_FILE_LIMIT:
        raise ModelFileError(
            f"{path}: the model is {len(data) / 2**20:.1f} MiB, more than a model file may be "
            f"({MODEL_FILE_LIMIT / 2**20:.0f} MiB), so no server would load it; not written. "
            f"Its largest parts: {_largest_parts(meta, tensors)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _largest_parts(meta: dict[str, Any], tensors: Tensors) -> str:
    """The three largest entries of a model (its metadata's top-level keys, its tensors by the
    part their names start with), with their sizes."""
    sizes: dict[str, int] = {
        key: len(json.dumps(value, separators=(",", ":"))) for key, value in meta.items()
    }
    for name, value in tensors.items():
        part = name.split(".")[0]
        sizes[part] = sizes.get(part, 0) + to_numpy(value).nbytes
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
    return ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in largest)


def load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:  # a regular file only (not /dev/zero, not a named pipe), and not past the limit
        data = read_bytes(path, limit=MODEL_FILE_LIMIT, what="a model file")
    except FileNotFoundError:
        raise ModelFileError(
            f"{path}: no such model file; train one with `chatbot train`"
        ) from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: {file_problem(exc)}") from None
    return loads(data, str(path))


def is_model_file(path: Path) -> bool:
    """Whether ``path`` is a regular file that begins as a chatbot model file does (its magic
    bytes; the rest is not checked): the one kind of file a training may replace."""
    if not path.is_file():  # a folder, a FIFO, a device: never opened here
        return False
    try:
        with path.open("rb") as file:
            return file.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def new_model_path(folder: Path) -> Path:
    """``<time>.model`` in ``folder``, or ``<time>-2.model`` ... where that is taken (a training
    that reuses every part of an earlier model can end in the same second)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}{SUFFIX}"
    count = 1
    while path.exists():
        count += 1
        path = folder / f"{stamp}-{count}{SUFFIX}"
    return path


def read_meta(path: Path) -> dict[str, Any]:
    """A model file's metadata alone, without reading its tensors or checking its checksum: a
    quick look (which parts, trained on what). ``load`` checks the whole file."""
    with path.open("rb") as file:
        head = file.read(len(MAGIC) + 12)
        if len(head) < len(MAGIC) + 12 or not head.startswith(MAGIC):
            raise ModelFileError(_not_ours(head, str(path)))
        version, body_len = struct.unpack_from("<IQ", head, len(MAGIC))
        if version != FORMAT_VERSION:
            raise ModelFileError(f"{path}: model format version {version}")
        if body_len > os.fstat(file.fileno()).st_size:  # a damaged length: read nothing
            raise ModelFileError(f"{path}: the file is truncated (metadata cut short)")
        body = file.read(body_len)
    if len(body) != body_len:
        raise ModelFileError(f"{path}: the file is truncated (metadata cut short)")
    try:
        meta = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: metadata must be a JSON object")
    return meta


def prefixed(prefix: str, tensors: Tensors) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
