#!/usr/bin/env python3
"""Run tvlens training artifacts with Python's onnxruntime (CPU or CUDA): no tvlens code.

    python3 scripts/run_artifacts.py <artifacts-dir> <batches.bundle> <out.bundle> [--cuda]

Same contract as scripts/run-artifacts.mjs: <batches.bundle> holds `step<i>/<input>` tensors and
`step<i>/lr`; each step runs training_model.onnx, then optimizer_model.onnx (AdamW). Needs numpy and
onnxruntime (onnxruntime-gpu for --cuda).
"""
import hashlib
import json
import struct
import sys

import numpy as np
import onnxruntime as ort

DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}


def read_bundle(path):
    raw = open(path, "rb").read()
    assert raw[:8] == b"TVLSTATE", f"{path} is not a tensor bundle"
    (n,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + n])
    start = 12 + n
    tensors = {}
    for e in header.pop("tensors"):
        data = np.frombuffer(raw[start + e["offset"] : start + e["offset"] + e["bytes"]], dtype=DTYPES[e["dtype"]])
        tensors[e["name"]] = data.reshape(e["shape"])
    return header, tensors


def write_bundle(path, fields, tensors):
    entries, blobs, offset = [], [], 0
    for name, t in tensors.items():
        b = np.ascontiguousarray(t).tobytes()
        entries.append({"name": name, "dtype": str(t.dtype), "shape": list(t.shape), "offset": offset, "bytes": len(b)})
        pad = (-len(b)) % 8
        blobs.append(b + b"\0" * pad)
        offset += len(b) + pad
    body = b"".join(blobs)
    # dataSha256: the checksum tvlens verifies when it reads a bundle.
    header = json.dumps({**fields, "dataSha256": hashlib.sha256(body).hexdigest(), "tensors": entries}).encode()
    with open(path, "wb") as f:
        f.write(b"TVLSTATE" + struct.pack("<I", len(header)) + header + body)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 3:
        sys.exit(__doc__)
    directory, batches_file, out_file = args
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if "--cuda" in sys.argv else ["CPUExecutionProvider"]
    training = ort.InferenceSession(f"{directory}/training_model.onnx", providers=providers)
    optimizer = ort.InferenceSession(f"{directory}/optimizer_model.onnx", providers=providers)
    print("providers:", training.get_providers())
    header, state = read_bundle(f"{directory}/checkpoint")
    beta1, beta2 = header["optimizer"]["beta1"], header["optimizer"]["beta2"]
    _, batches = read_bundle(batches_file)
    params = [k for k in state if not k.startswith("adam.")]
    steps = len({k.split("/")[0] for k in batches})
    step = header["step"]
    for i in range(steps):
        prefix = f"step{i}/"
        feeds = {k[len(prefix) :]: v for k, v in batches.items() if k.startswith(prefix) and not k.endswith("/lr")}
        feeds.update({p: state[p] for p in params})
        names = [o.name for o in training.get_outputs()]
        grads = dict(zip(names, training.run(names, feeds)))
        step += 1
        scalar = lambda x: np.array(x, dtype=np.float32)
        opt = {"lr": scalar(batches[f"{prefix}lr"]), "adam.c1": scalar(1 / (1 - beta1**step)), "adam.c2": scalar(1 / (1 - beta2**step))}
        for p in params:
            opt.update({p: state[p], f"grad.{p}": grads[f"grad.{p}"], f"adam.m.{p}": state[f"adam.m.{p}"], f"adam.v.{p}": state[f"adam.v.{p}"]})
        names = [o.name for o in optimizer.get_outputs()]
        for k, v in zip(names, optimizer.run(names, opt)):
            if k.startswith("updated."):
                state[k[len("updated.") :]] = v
        print(f"step {step}: loss {float(grads['loss']):.5f}")
    write_bundle(out_file, {**header, "step": step}, state)


if __name__ == "__main__":
    main()
