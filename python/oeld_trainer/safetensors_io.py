"""Reading and writing safetensors files without the safetensors package (it is not on every machine).

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape
and byte range, then the bytes. Tensors are returned as float32 (the trainer's master weights);
they are written in the dtype the version is stored in (F32, BF16 or F16), rounded to nearest even
as torch's casts do.
"""
import json
import os
import struct

import torch

_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
_SAME_SIZE_INT = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def read_file(path):
    """{name: float32 tensor} of one safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(data)} bytes)")
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}; the trainer reads F32, BF16 and F16")
        start, end = entry["data_offsets"]
        count = 1
        for s in entry["shape"]:
            count *= s
        itemsize = torch.tensor([], dtype=dtype).element_size()
        if end - start != count * itemsize:
            raise ValueError(f"{path}: tensor {name} holds {end - start} bytes for shape {entry['shape']} in {entry['dtype']}")
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=dtype) if count > 0 else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(entry["shape"]).to(torch.float32)
    return out


def read_folder(folder):
    """Every tensor of a model folder: model.safetensors, or the shards its index names."""
    index = os.path.join(folder, INDEX_FILE)
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        tensors = {}
        for shard in shards:
            tensors.update(read_file(os.path.join(folder, shard)))
        return tensors
    single = os.path.join(folder, SINGLE_FILE)
    if not os.path.exists(single):
        raise FileNotFoundError(f"{folder}: neither {SINGLE_FILE} nor {INDEX_FILE}")
    return read_file(single)


def write_file(path, tensors, dtype_name="F32", metadata=None):
    """Writes {name: tensor} in dtype_name, to a temporary name renamed into place (never half-written)."""
    dtype = _DTYPES.get(dtype_name)
    if dtype is None:
        raise ValueError(f"storeDtype {dtype_name!r}: the trainer writes F32, BF16 or F16")
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).to(dtype).contiguous()
        raw = t.reshape(-1).view(_SAME_SIZE_INT[dtype]).numpy().tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    tmp = f"{path}.partial-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)
