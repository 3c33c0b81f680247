#!/usr/bin/env python3
"""Pretrains the base model on a GPU, from a corpus exported by scripts/export-pretraining-corpus.ts.

The same model and objective as src/basemodel/pretrain.ts (cross-entropy on the answer tokens,
batches of one example kind, AdamW with warm-up and cosine decay, gradient clipping), written
in PyTorch for a machine with a GPU and no Node.js. Writes a Hugging Face folder that oeld's
TypeScript runtime loads (Hugging Face tensor names, F32 safetensors, tied embeddings), with:

  training-log.jsonl      loss, learning rate, grad norm, tokens/s; held-out loss and answer
                          exact-match (teacher-forced) per kind
  reference-logits.json   logits of a few held-out prompts under the saved weights, so the
                          TypeScript runtime can check that it computes the same model

  python3 scripts/pretrain-gpu.py --corpus .scratch/corpus --out models/oeld-base.new --minutes 8

The last 1% of the corpus is held out. Saves every --save-every seconds, so a run cut short still
leaves its latest weights. Needs PyTorch (1.13 or newer) and NumPy; nothing else.
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import shutil
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--corpus', required=True)
p.add_argument('--out', required=True)
p.add_argument('--minutes', type=float, default=8.0, help='training time; the learning-rate schedule spans it')
p.add_argument('--max-steps', type=int, default=0, help='stop after this many steps (0: by time only)')
p.add_argument('--tokens-per-batch', type=int, default=65536)
p.add_argument('--learning-rate', type=float, default=3e-3)
p.add_argument('--min-learning-rate', type=float, default=1e-4)
p.add_argument('--warmup', type=int, default=300)
p.add_argument('--weight-decay', type=float, default=0.01)
p.add_argument('--seed', type=int, default=20261127)
p.add_argument('--save-every', type=float, default=60.0, help='seconds between checkpoints')
p.add_argument('--eval-every', type=float, default=30.0, help='seconds between held-out checks')
p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
p.add_argument('--set', action='append', default=[], metavar='KEY=INT',
               help='override an integer field of the corpus config.json (e.g. num_hidden_layers=8); repeatable')
args = p.parse_args()

t_start = time.time()
os.makedirs(args.out, exist_ok=True)
log_path = os.path.join(args.out, 'training-log.jsonl')
log_file = open(log_path, 'w')


def log(record):
    record = {'time': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), **record}
    line = json.dumps(record)
    log_file.write(line + '\n')
    log_file.flush()
    print(line, flush=True)


# ---- corpus -------------------------------------------------------------------------------
meta = json.load(open(os.path.join(args.corpus, 'corpus.json')))
raw = {}
for name in ('tokens.u16.gz', 'index.u32.gz'):
    blob = open(os.path.join(args.corpus, name), 'rb').read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta['sha256'][name]:
        raise SystemExit(f'corpus: {name} has sha256 {digest}, corpus.json says {meta["sha256"][name]}')
    raw[name] = gzip.decompress(blob)
tokens = np.frombuffer(raw['tokens.u16.gz'], dtype='<u2').astype(np.int64)
index = np.frombuffer(raw['index.u32.gz'], dtype='<u4').reshape(-1, 4).astype(np.int64)
if len(index) != meta['examples']:
    raise SystemExit(f'corpus: index holds {len(index)} examples, corpus.json says {meta["examples"]}')
kinds = meta['kinds']
config = json.load(open(os.path.join(args.corpus, 'config.json')))
for setting in args.set:
    key, _, value = setting.partition('=')
    if key not in config or not isinstance(config[key], int) or not value.isdigit():
        raise SystemExit(f'--set {setting}: needs KEY=INT with KEY an integer field of config.json')
    config[key] = int(value)
if config['num_key_value_heads'] != config['num_attention_heads'] and config['num_attention_heads'] % config['num_key_value_heads']:
    raise SystemExit(f'config: num_attention_heads {config["num_attention_heads"]} is not a multiple of num_key_value_heads {config["num_key_value_heads"]}')
vocab = config['vocab_size']
if tokens.max() >= vocab:
    raise SystemExit(f'corpus: token id {tokens.max()} >= vocab_size {vocab}')

device = torch.device(args.device)
torch.manual_seed(args.seed)
rng = np.random.default_rng(args.seed)
held_out_count = max(64, len(index) // 100)


def pack(rows):
    """Examples -> a right-padded id matrix, prompt lengths, answer lengths (on the device)."""
    lengths = rows[:, 1] + rows[:, 2]
    width = int(lengths.max())
    ids = np.zeros((len(rows), width), dtype=np.int64)
    for i, (offset, pl, rl, _) in enumerate(rows):
        ids[i, :pl + rl] = tokens[offset:offset + pl + rl]
    return torch.from_numpy(ids), torch.from_numpy(rows[:, 1].copy()), torch.from_numpy(rows[:, 2].copy())


class KindData:
    """All examples of one kind, padded into one matrix on the device, so a batch is one gather."""

    def __init__(self, rows):
        self.ids, self.prompt, self.answer = (t.to(device) for t in pack(rows))
        self.n = len(rows)
        self.mean_length = float((self.prompt + self.answer).float().mean())

    def batch(self, size):
        pick = torch.from_numpy(rng.integers(0, self.n, size)).to(device)
        prompt, answer = self.prompt[pick], self.answer[pick]
        width = int((prompt + answer).max())
        return self.ids[pick, :width], prompt, answer


train_rows, held_rows = index[:-held_out_count], index[-held_out_count:]
data = {k: KindData(train_rows[train_rows[:, 3] == i]) for i, k in enumerate(kinds) if (train_rows[:, 3] == i).any()}
held = {k: [t.to(device) for t in pack(held_rows[held_rows[:, 3] == i][:256])] for i, k in enumerate(kinds) if (held_rows[:, 3] == i).any()}
weights = np.array([data[k].n for k in data], dtype=np.float64)
weights /= weights.sum()
log({'stage': 'corpus', 'examples': int(len(index)), 'tokens': int(len(tokens)), 'heldOut': int(held_out_count),
     'perKind': {k: data[k].n for k in data}, 'meanLength': {k: round(data[k].mean_length, 1) for k in data},
     'seconds': round(time.time() - t_start, 1)})


# ---- model: a Llama decoder with Hugging Face tensor names --------------------------------
class RMSNorm(torch.nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def linear(i, o):
    return torch.nn.Linear(i, o, bias=False)


class Attention(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c['hidden_size']
        self.heads = c['num_attention_heads']
        self.kv_heads = c.get('num_key_value_heads', self.heads)
        self.head_dim = h // self.heads
        self.q_proj = linear(h, self.heads * self.head_dim)
        self.k_proj = linear(h, self.kv_heads * self.head_dim)
        self.v_proj = linear(h, self.kv_heads * self.head_dim)
        self.o_proj = linear(self.heads * self.head_dim, h)

    def forward(self, x, cos, sin):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        if hasattr(F, 'scaled_dot_product_attention'):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            y = scores.masked_fill(causal, float('-inf')).softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class MLP(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = linear(c['hidden_size'], c['intermediate_size'])
        self.up_proj = linear(c['hidden_size'], c['intermediate_size'])
        self.down_proj = linear(c['intermediate_size'], c['hidden_size'])

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.mlp = MLP(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = torch.nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])


class CausalLM(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        if not c.get('tie_word_embeddings', False):
            raise SystemExit('pretrain-gpu.py: only tied embeddings are supported (config.json tie_word_embeddings)')
        self.model = Decoder(c)
        head_dim = c['hidden_size'] // c['num_attention_heads']
        inv_freq = 1.0 / (c.get('rope_theta', 10000.0) ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer('inv_freq', inv_freq, persistent=False)
        for name, w in self.named_parameters():
            if name.endswith('norm.weight'):
                continue
            torch.nn.init.normal_(w, std=0.02)

    def hidden(self, ids):
        t = ids.shape[1]
        freqs = torch.arange(t, device=ids.device).float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.model.norm(x)

    def logits(self, h):
        return h @ self.model.embed_tokens.weight.t()


def answer_targets(ids, prompt, answer):
    """Positions that predict an answer token, and those tokens."""
    t = ids.shape[1]
    pos = torch.arange(t - 1, device=ids.device)[None, :]
    mask = (pos >= prompt[:, None] - 1) & (pos < (prompt + answer)[:, None] - 1)
    return mask, ids[:, 1:][mask]


def loss_of(model, ids, prompt, answer):
    mask, targets = answer_targets(ids, prompt, answer)
    h = model.hidden(ids[:, :-1])[mask]
    return F.cross_entropy(model.logits(h).float(), targets)


@torch.no_grad()
def held_out_check(model):
    """Held-out loss and teacher-forced exact match of the whole answer, per kind."""
    out = {}
    for k, (ids, prompt, answer) in held.items():
        mask, targets = answer_targets(ids, prompt, answer)
        logits = model.logits(model.hidden(ids[:, :-1])).float()
        loss = F.cross_entropy(logits[mask], targets).item()
        wrong = (logits.argmax(-1) != ids[:, 1:]) & mask
        out[k] = {'loss': round(loss, 4), 'exact': round((~wrong.any(1)).float().mean().item(), 4)}
    return out


def save(model, reason):
    """model.safetensors (F32, tied head omitted as Hugging Face does) and the folder's other files."""
    tensors = {name: w.detach().float().cpu().contiguous().numpy() for name, w in model.state_dict().items()}
    header, offset = {}, 0
    for name in sorted(tensors):
        nbytes = tensors[name].nbytes
        header[name] = {'dtype': 'F32', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + nbytes]}
        offset += nbytes
    header['__metadata__'] = {'format': 'pt'}
    head = json.dumps(header, separators=(',', ':')).encode()
    head += b' ' * (-len(head) % 8)
    tmp = os.path.join(args.out, 'model.safetensors.tmp')
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head)
        for name in sorted(tensors):
            f.write(tensors[name].astype('<f4').tobytes())
    os.replace(tmp, os.path.join(args.out, 'model.safetensors'))
    for name in ('tokenizer.json', 'tokenizer_config.json', 'generation_config.json'):
        shutil.copyfile(os.path.join(args.corpus, name), os.path.join(args.out, name))
    # What it was trained on (the corpus options fix the answer format evaluate-base-model.ts expects).
    shutil.copyfile(os.path.join(args.corpus, 'corpus.json'), os.path.join(args.out, 'pretraining-corpus.json'))
    with open(os.path.join(args.out, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')
    # Reference logits: the last prompt position of the first held-out example of each kind.
    # Computed in full float32 (TF32 matmuls, used for training, differ from it by ~1e-3).
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    refs = []
    with torch.no_grad():
        for k, (ids, prompt, answer) in held.items():
            n = int(prompt[0])
            row = ids[0, :n][None]
            refs.append({'kind': k, 'ids': row[0].tolist(), 'logits': [round(v, 6) for v in model.logits(model.hidden(row))[0, -1].float().tolist()]})
    torch.backends.cuda.matmul.allow_tf32 = tf32
    json.dump({'references': refs}, open(os.path.join(args.out, 'reference-logits.json'), 'w'))
    log({'stage': 'saved', 'reason': reason, 'step': step, 'seconds': round(time.time() - t_start, 1)})


model = CausalLM(config).to(device)
parameters = sum(w.numel() for w in model.parameters())
fused = {'fused': True} if device.type == 'cuda' and 'fused' in torch.optim.AdamW.__init__.__code__.co_varnames else {}
decay = [w for n, w in model.named_parameters() if w.dim() >= 2]
no_decay = [w for n, w in model.named_parameters() if w.dim() < 2]
optimizer = torch.optim.AdamW([{'params': decay, 'weight_decay': args.weight_decay}, {'params': no_decay, 'weight_decay': 0.0}],
                              lr=args.learning_rate, betas=(0.9, 0.95), **fused)
if device.type == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
log({'stage': 'model', 'parameters': parameters, 'device': str(device),
     'gpu': torch.cuda.get_device_name(0) if device.type == 'cuda' else None, 'torch': torch.__version__, 'config': config,
     'options': vars(args)})

budget = args.minutes * 60
train_start = time.time()
last_save = last_eval = last_log = train_start
step, tokens_seen, loss_sum, loss_n = 0, 0, 0.0, 0
try:
    while True:
        elapsed = time.time() - train_start
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        progress = elapsed / budget if not args.max_steps else step / args.max_steps
        if step < args.warmup:
            lr = args.learning_rate * (step + 1) / args.warmup
        else:
            lr = args.min_learning_rate + 0.5 * (args.learning_rate - args.min_learning_rate) * (1 + math.cos(math.pi * min(1.0, progress)))
        for g in optimizer.param_groups:
            g['lr'] = lr
        kind = list(data)[int(rng.choice(len(data), p=weights))]
        size = max(1, int(args.tokens_per_batch // data[kind].mean_length))
        ids, prompt, answer = data[kind].batch(size)
        loss = loss_of(model, ids, prompt, answer)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens_seen += ids.numel()
        loss_sum += loss.item()
        loss_n += 1
        now = time.time()
        if now - last_log >= 10:
            log({'stage': 'pretrain', 'step': step, 'loss': round(loss_sum / loss_n, 4), 'lr': float(f'{lr:.3e}'),
                 'gradNorm': round(float(grad_norm), 3), 'seconds': round(now - train_start, 1),
                 'tokensPerSecond': round(tokens_seen / (now - train_start))})
            loss_sum, loss_n, last_log = 0.0, 0, now
        if now - last_eval >= args.eval_every:
            log({'stage': 'heldOut', 'step': step, 'seconds': round(now - train_start, 1), 'byKind': held_out_check(model)})
            last_eval = now
        if now - last_save >= args.save_every:
            save(model, 'periodic')
            last_save = time.time()
finally:
    log({'stage': 'heldOut', 'step': step, 'seconds': round(time.time() - train_start, 1), 'byKind': held_out_check(model)})
    save(model, 'final')
    log({'stage': 'pretrained', 'steps': step, 'seconds': round(time.time() - train_start, 1),
         'tokensPerSecond': round(tokens_seen / max(1e-9, time.time() - train_start))})
