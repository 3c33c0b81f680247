#!/usr/bin/env python3
"""The PyTorch baseline of bench/decode.ts: the same model folder, prompts and sampling, decoded
with a key/value cache in PyTorch on the CPU, the way a team would run it without oeld.

Reads a Llama/Qwen2/Qwen3 folder (config.json, model.safetensors in float32, bfloat16 or float16)
with nothing but torch and the standard library, and prints one line of JSON:
{"torch": version, "threads": n, "results": [{"batch": b, "new_tokens": n, "seconds": s}, ...]}.
Exits 3 with a message on stderr when torch cannot be imported (bench/decode.ts then skips it).
"""
import argparse
import json
import math
import struct
import sys
import time

try:
    import torch
except Exception as err:  # noqa: BLE001 - any import failure means: no baseline here
    print(f"torch is not importable here ({err}); on Debian: apt-get install python3-torch", file=sys.stderr)
    sys.exit(3)

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[meta["dtype"]])
        out[name] = t.reshape(meta["shape"]).to(torch.float32)
    return out


class Model:
    def __init__(self, folder):
        c = json.load(open(f"{folder}/config.json"))
        self.w = read_safetensors(f"{folder}/model.safetensors")
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv = c.get("num_key_value_heads") or self.heads
        self.d = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.qk_norm = c["model_type"] == "qwen3"
        theta = c.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.d, 2, dtype=torch.float64) / self.d))
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        self.max_pos = c.get("max_position_embeddings", 2048)

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, pos):
        # x [B, heads, T, d]; pos [B, T]
        ang = pos[:, None, :, None].to(torch.float64) * self.inv_freq
        cos = torch.cat([ang.cos(), ang.cos()], -1).to(x.dtype)
        sin = torch.cat([ang.sin(), ang.sin()], -1).to(x.dtype)
        half = self.d // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * cos + rot * sin

    def forward(self, ids, pos, cache, length):
        """ids [B, T]; pos [B, T]; cache per layer (k, v) [B, kv, S, d] preallocated; length: filled so far."""
        B, T = ids.shape
        x = self.w["model.embed_tokens.weight"][ids]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = self.norm(x, self.w[p + "input_layernorm.weight"])
            def proj(name, n):
                y = h @ self.w[p + f"self_attn.{name}.weight"].T
                b = self.w.get(p + f"self_attn.{name}.bias")
                return (y + b if b is not None else y).view(B, T, n, self.d).transpose(1, 2)
            q, k, v = proj("q_proj", self.heads), proj("k_proj", self.kv), proj("v_proj", self.kv)
            if self.qk_norm:
                q = self.norm(q, self.w[p + "self_attn.q_norm.weight"])
                k = self.norm(k, self.w[p + "self_attn.k_norm.weight"])
            q, k = self.rope(q, pos), self.rope(k, pos)
            ck, cv = cache[i]
            ck[:, :, length:length + T] = k
            cv[:, :, length:length + T] = v
            keys, values = ck[:, :, :length + T], cv[:, :, :length + T]
            if self.kv != self.heads:
                keys = keys.repeat_interleave(self.heads // self.kv, 1)
                values = values.repeat_interleave(self.heads // self.kv, 1)
            scores = (q @ keys.transpose(-1, -2)) / math.sqrt(self.d)
            if T > 1:
                scores = scores + torch.full((T, length + T), float("-inf")).triu(length + 1)
            att = torch.softmax(scores, -1) @ values
            x = x + att.transpose(1, 2).reshape(B, T, -1) @ self.w[p + "self_attn.o_proj.weight"].T
            h2 = self.norm(x, self.w[p + "post_attention_layernorm.weight"])
            g = h2 @ self.w[p + "mlp.gate_proj.weight"].T
            u = h2 @ self.w[p + "mlp.up_proj.weight"].T
            x = x + (torch.nn.functional.silu(g) * u) @ self.w[p + "mlp.down_proj.weight"].T
        return self.norm(x[:, -1], self.w["model.norm.weight"]) @ self.head.T


def decode(model, prompts, new_tokens, temperature, seed):
    torch.manual_seed(seed)
    B, P = len(prompts), len(prompts[0])
    cache = [(torch.zeros(B, model.kv, P + new_tokens, model.d), torch.zeros(B, model.kv, P + new_tokens, model.d)) for _ in range(model.layers)]
    ids = torch.tensor(prompts)
    pos = torch.arange(P).expand(B, P)
    logits = model.forward(ids, pos, cache, 0)
    n = 0
    for step in range(new_tokens):
        probs = torch.softmax(logits / temperature, -1)
        nxt = torch.multinomial(probs, 1)
        n += B
        logits = model.forward(nxt, torch.full((B, 1), P + step), cache, P + step)
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.7)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = Model(a.model)
    out = []
    with torch.inference_mode():
        decode(model, [[2] * a.prompt], 8, a.temperature, 0)  # warm-up
        for b in [int(x) for x in a.batches.split(",")]:
            prompts = [[2 + (7 * i + j) % 500 for j in range(a.prompt)] for i in range(b)]
            t = time.perf_counter()
            n = decode(model, prompts, a.tokens, a.temperature, 1)
            out.append({"batch": b, "new_tokens": n, "seconds": time.perf_counter() - t})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": out}))


if __name__ == "__main__":
    main()
