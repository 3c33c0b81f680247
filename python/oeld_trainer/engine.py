"""The model engine in PyTorch: `python -m oeld_trainer engine` answers requests, one JSON object a
line on stdin, one answer a line on stdout ({"id", "ok", "result" | "error"}), in order; a streamed
generation sends its tokens step by step before its answer ({"id", "partial"}). It holds
the versions the daemon loads (by name) and does the arithmetic the daemon's own runtime would:
sampling replies to token ids, and the KL measurement of the chat gate. The daemon (TypeScript)
keeps the tokenizer and the chat templates: requests and answers are token ids
(src/engine/torch-engine.ts).
"""
import json
import sys

import torch

from .losses import opcd_loss
from .model import Transformer
from .round import merge_adapter, response_logits
from .safetensors_io import read_file, read_folder
from .sampling import generate


class Engine:
    def __init__(self, device, emit):
        self.device = device
        self.emit = emit
        self.models = {}

    def load(self, r):
        tensors = read_folder(r["weightsDir"])
        if r.get("adapter"):
            merge_adapter(tensors, read_file(r["adapter"]["file"]), r["adapter"])
        model = Transformer(r["model"], tensors, trainable=False).to(self.device).eval()
        self.models[r["version"]] = model
        return {"parameters": sum(p.numel() for p in model.parameters()), "backend": f"torch-{self.device.type}"}

    def unload(self, r):
        self.models.pop(r["version"], None)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return {}

    def model(self, version):
        m = self.models.get(version)
        if m is None:
            raise KeyError(f"model {version} is not loaded (load it first)")
        return m

    def generate(self, r):
        """With "stream": each step's new tokens go out at once as {"id", "partial": [[row, token], ...]}, before the answer."""
        s = r["sampling"]
        on_step = (lambda step: self.emit({"id": r["id"], "partial": step})) if r.get("stream") else None
        tokens, ended = generate(self.model(r["version"]), r["prompts"], max(r["maxNewTokens"]), s["temperature"], r["eosTokenIds"], r["padTokenId"],
                                 r["seed"], self.device, top_k=s.get("topK", 0), top_p=s.get("topP", 1.0), row_limits=r["maxNewTokens"], on_step=on_step)
        return {"tokens": tokens, "endedBy": ended}

    def measure_kl(self, r):
        """Token-mean reverse KL over the student's top-k on the student's sampled replies (trainer/measure-kl.ts)."""
        student, teacher = self.model(r["student"]), self.model(r["teacher"])
        o = r["options"]
        top_k = min(o["topK"], student.cfg["vocabSize"])
        per_pair, weighted, tokens = [], 0.0, 0
        for start in range(0, len(r["studentIds"]), o["batchSize"]):
            s_ids = r["studentIds"][start:start + o["batchSize"]]
            t_ids = r["teacherIds"][start:start + o["batchSize"]]
            replies, _ = generate(student, s_ids, o["maxNewTokens"], o["temperature"], r["eosTokenIds"], r["padTokenId"], o["seed"] + start, self.device)
            with torch.no_grad():
                for i, reply in enumerate(replies):
                    if not reply:
                        per_pair.append(0.0)
                        continue
                    s_logits = response_logits(student, [s_ids[i]], [reply], r["padTokenId"], self.device)
                    t_logits = response_logits(teacher, [t_ids[i]], [reply], r["padTokenId"], self.device)
                    value = float(opcd_loss(s_logits, t_logits, o["temperature"], top_k))
                    per_pair.append(value)
                    weighted += value * len(reply)
                    tokens += len(reply)
        return {"meanKl": weighted / tokens if tokens else 0.0, "perPair": per_pair, "tokens": tokens}

    def memory(self, _r):
        held = sum(p.numel() * p.element_size() for m in self.models.values() for p in m.parameters())
        return {"tensors": sum(len(list(m.parameters())) for m in self.models.values()), "bytes": held}


def serve(device, emit):
    engine = Engine(device, emit)
    ops = {"load": engine.load, "unload": engine.unload, "generate": engine.generate, "measureKl": engine.measure_kl, "memory": engine.memory}
    emit({"event": "ready", "device": str(device), "torch": torch.__version__})
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        try:
            op = ops.get(r.get("op"))
            if op is None:
                raise ValueError(f"op: {r.get('op')!r} is not one of {', '.join(ops)}")
            emit({"id": r["id"], "ok": True, "result": op(r)})
        except Exception as e:  # answered to the request; the engine keeps serving
            emit({"id": r.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}"})
