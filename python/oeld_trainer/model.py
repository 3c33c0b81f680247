"""The decoder-only transformer of the Llama, Qwen2 and Qwen3 families, as oeld's TypeScript runtime
computes it (src/model/network/transformer.ts): RMSNorm, rotary embeddings (Hugging Face's
rotate-half convention, angles computed in float64), SwiGLU, grouped-query attention, optional
q/k/v(/o) biases, per-head q/k RMSNorm (Qwen3), tied or untied embeddings.

The configuration comes resolved by the daemon (the job's `model`), so that the families' defaults
and what is refused are decided in one place (src/model/network/model-config.ts). Weights use
Hugging Face names and orientation. Parameters are float32 masters; on a GPU the forward pass may
run under bf16 autocast (the caller decides).
"""
import math

import torch
import torch.nn.functional as F

MASKED = -1e9


def layer_names(i):
    p = f"model.layers.{i}."
    return {
        "input_norm": p + "input_layernorm.weight", "post_norm": p + "post_attention_layernorm.weight",
        "q": p + "self_attn.q_proj.weight", "k": p + "self_attn.k_proj.weight", "v": p + "self_attn.v_proj.weight",
        "o": p + "self_attn.o_proj.weight", "q_bias": p + "self_attn.q_proj.bias", "k_bias": p + "self_attn.k_proj.bias",
        "v_bias": p + "self_attn.v_proj.bias", "o_bias": p + "self_attn.o_proj.bias",
        "q_norm": p + "self_attn.q_norm.weight", "k_norm": p + "self_attn.k_norm.weight",
        "gate": p + "mlp.gate_proj.weight", "up": p + "mlp.up_proj.weight", "down": p + "mlp.down_proj.weight",
    }


EMBED = "model.embed_tokens.weight"
FINAL_NORM = "model.norm.weight"
LM_HEAD = "lm_head.weight"


def rms_norm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Transformer(torch.nn.Module):
    """
    lora: None (every weight trains when `trainable`), or {"rank", "alpha", "targets"} (targets among
    q, k, v, o, gate, up, down): the weights stay frozen and each targeted projection gains
    (alpha / rank) * B @ A, A [rank, in] initialised as PEFT does (Kaiming-uniform), B [out, rank]
    zero, so the model starts exactly at its weights. `adapter` gives A and B to start from instead
    (PEFT names: lora_weight_name).
    """

    def __init__(self, cfg, tensors, trainable=True, lora=None, adapter=None):
        super().__init__()
        self.cfg = cfg
        self.params = torch.nn.ParameterDict()
        self.names = []
        self.lora = lora
        self.lora_params = torch.nn.ParameterDict()
        self.lora_scale = (lora["alpha"] / lora["rank"]) if lora else 0.0

        def need(name, optional=False):
            t = tensors.get(name)
            if t is None:
                if optional:
                    return
                raise KeyError(f"checkpoint is missing tensor {name}")
            # ParameterDict keys may not contain dots.
            self.params[name.replace(".", "/")] = torch.nn.Parameter(t.detach().clone().float(), requires_grad=trainable and lora is None)
            self.names.append(name)

        need(EMBED)
        need(FINAL_NORM)
        if not cfg["tiedEmbeddings"]:
            need(LM_HEAD)
        for i in range(cfg["layers"]):
            n = layer_names(i)
            for key in ("input_norm", "post_norm", "q", "k", "v", "o", "gate", "up", "down"):
                need(n[key])
            if cfg["qkvBias"]:
                for key in ("q_bias", "k_bias", "v_bias"):
                    need(n[key])
            if cfg["oBias"]:
                need(n["o_bias"])
            if cfg["qkNorm"]:
                need(n["q_norm"])
                need(n["k_norm"])
        if lora:
            bad = [t for t in lora["targets"] if t not in LORA_TARGETS]
            if bad or not lora["targets"]:
                raise ValueError(f"lora.targets: {lora['targets']!r}; each must be one of {', '.join(LORA_TARGETS)}")
            for i in range(cfg["layers"]):
                n = layer_names(i)
                for key in lora["targets"]:
                    w = self.params[n[key].replace(".", "/")]
                    a = torch.empty(lora["rank"], w.shape[1])
                    torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
                    b = torch.zeros(w.shape[0], lora["rank"])
                    if adapter is not None:
                        a = adapter[lora_weight_name(n[key], "A")].float()
                        b = adapter[lora_weight_name(n[key], "B")].float()
                    self.lora_params[lora_key(n[key], "A")] = torch.nn.Parameter(a.clone(), requires_grad=trainable)
                    self.lora_params[lora_key(n[key], "B")] = torch.nn.Parameter(b.clone(), requires_grad=trainable)
        # The rotary frequencies come computed by oeld for the RoPE type (rope-frequencies.ts); the
        # default's formula is the fallback for a configuration without them.
        d = cfg["headDim"]
        inv = cfg.get("ropeInvFreq") or [1.0 / cfg["ropeTheta"] ** ((2 * i) / d) for i in range(d // 2)]
        if len(inv) != d // 2:
            raise ValueError(f"model.ropeInvFreq: {len(inv)} frequencies for a head of {d}")
        self.register_buffer("inv_freq", torch.tensor(inv, dtype=torch.float64), persistent=False)
        self.rope_scale = float(cfg.get("ropeAttentionScaling", 1.0))

    def p(self, name):
        return self.params.get(name.replace(".", "/"))

    def named_tensors(self):
        """{Hugging Face name: parameter}."""
        return {n: self.params[n.replace(".", "/")] for n in self.names}

    def adapter_tensors(self):
        """{PEFT name: tensor} of the LoRA factors."""
        out = {}
        for i in range(self.cfg["layers"]):
            n = layer_names(i)
            for key in self.lora["targets"]:
                for part in ("A", "B"):
                    out[lora_weight_name(n[key], part)] = self.lora_params[lora_key(n[key], part)]
        return out

    def lin(self, x, name, bias_name=None):
        y = F.linear(x, self.p(name), self.p(bias_name) if bias_name else None)
        if self.lora is not None:
            a = self.lora_params.get(lora_key(name, "A"))
            if a is not None:
                y = y + F.linear(F.linear(x, a), self.lora_params[lora_key(name, "B")]) * self.lora_scale
        return y

    def rotary(self, positions, dtype):
        """cos, sin [B, T, 1, d] for integer positions [B, T] (angles in float64, as the TypeScript runtime)."""
        ang = positions.to(torch.float64)[..., None] * self.inv_freq.to(positions.device)
        ang = torch.cat([ang, ang], dim=-1)
        return (self.rope_scale * ang.cos()).to(dtype)[:, :, None, :], (self.rope_scale * ang.sin()).to(dtype)[:, :, None, :]

    def forward(self, ids, attention_mask, positions=None, cache=None, output_rows=None, return_cache=False, right_padded=False):
        """
        Logits for ids [B, T]. attention_mask [B, past + T] is 1 for a real token and 0 for padding;
        positions [B, T] default to past + t. With `cache` (a list of (k, v) per layer, [B, kv, S, d]),
        keys and values of earlier positions are used and the extended cache is returned.
        output_rows: flat indices b * T + t of the rows whose logits are wanted ([rows, vocab]);
        without them, logits [B, T, vocab]. right_padded: every row's padding is at its end and no
        cache is given, so the causal mask alone gives every real token what it may see (padded
        positions' outputs are never read); torch's fused attention is then used where it exists.
        """
        cfg = self.cfg
        B, T = ids.shape
        past = 0 if cache is None else cache[0][0].shape[2]
        S = past + T
        dev = ids.device
        if positions is None:
            positions = torch.arange(past, S, device=dev).expand(B, T)
        cos, sin = self.rotary(positions, torch.float32)
        fused = right_padded and cache is None and HAS_SDPA
        mask = None
        if not fused:
            q_idx = torch.arange(past, S, device=dev)[:, None]
            k_idx = torch.arange(S, device=dev)[None, :]
            visible = (k_idx <= q_idx)[None, None] & (attention_mask[:, None, None, :] == 1)
            mask = torch.zeros(visible.shape, dtype=torch.float32, device=dev).masked_fill(~visible, MASKED)
        x = F.embedding(ids, self.p(EMBED))
        new_cache = []
        d, H, KV = cfg["headDim"], cfg["heads"], cfg["kvHeads"]
        for i in range(cfg["layers"]):
            n = layer_names(i)
            h = rms_norm(x, self.p(n["input_norm"]), cfg["eps"])
            q = self.lin(h, n["q"], n["q_bias"]).view(B, T, H, d)
            k = self.lin(h, n["k"], n["k_bias"]).view(B, T, KV, d)
            v = self.lin(h, n["v"], n["v_bias"]).view(B, T, KV, d)
            if cfg["qkNorm"]:
                q = rms_norm(q, self.p(n["q_norm"]), cfg["eps"])
                k = rms_norm(k, self.p(n["k_norm"]), cfg["eps"])
            q = rope(q, cos, sin).transpose(1, 2)
            k = rope(k, cos, sin).transpose(1, 2)
            v = v.transpose(1, 2)
            if cache is not None:
                k = torch.cat([cache[i][0], k], dim=2)
                v = torch.cat([cache[i][1], v], dim=2)
            if return_cache:
                new_cache.append((k, v))
            rep = H // KV
            kk = k.repeat_interleave(rep, dim=1) if rep > 1 else k
            vv = v.repeat_interleave(rep, dim=1) if rep > 1 else v
            if fused:
                ctx = F.scaled_dot_product_attention(q, kk.to(q.dtype), vv.to(q.dtype), is_causal=True)
            else:
                scores = torch.matmul(q, kk.transpose(2, 3))
                probs = torch.softmax(scores.float() * (1.0 / math.sqrt(d)) + mask, dim=-1).to(vv.dtype)
                ctx = torch.matmul(probs, vv)
            ctx = ctx.transpose(1, 2).reshape(B, T, H * d)
            x = x + self.lin(ctx, n["o"], n["o_bias"])
            h2 = rms_norm(x, self.p(n["post_norm"]), cfg["eps"])
            g = self.lin(h2, n["gate"])
            x = x + self.lin(F.silu(g) * self.lin(h2, n["up"]), n["down"])
        flat = x.reshape(B * T, -1)
        if output_rows is not None:
            flat = flat.index_select(0, output_rows)
        hn = rms_norm(flat, self.p(FINAL_NORM), cfg["eps"])
        head = self.p(LM_HEAD) if not cfg["tiedEmbeddings"] else self.p(EMBED)
        logits = F.linear(hn, head)
        if output_rows is None:
            logits = logits.view(B, T, -1)
        return logits, (new_cache if return_cache else None)


def lora_key(name, part):
    return name.replace(".", "/") + "/lora_" + part


def lora_weight_name(name, part):
    """PEFT's name for a LoRA factor of the weight `name` (model.layers.0.self_attn.q_proj.weight)."""
    return "base_model.model." + name[: -len(".weight")] + f".lora_{part}.weight"


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)
