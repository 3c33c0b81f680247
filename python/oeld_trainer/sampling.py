"""Sampling a batch of replies with a key/value cache: left-padded prompts, each row's positions
counted from its first real token, softmax(logits / temperature) over the whole vocabulary (the
round samples with top_p 1 and no top-k), a row stopping at its first end-of-sequence token, which
it keeps, or at max_new_tokens."""
import torch


@torch.no_grad()
def generate(model, prompts, max_new_tokens, temperature, eos_ids, pad_id, seed, device):
    B = len(prompts)
    L = max(len(p) for p in prompts)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    for b, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {b} is empty")
        ids[b, L - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[b, L - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    eos = torch.tensor(sorted(eos_ids) or [-1], device=device)
    logits, cache = model(ids, mask, positions=positions, return_cache=True)
    last = logits[:, -1, :]
    out = [[] for _ in range(B)]
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    next_pos = positions[:, -1] + 1
    for _ in range(max_new_tokens):
        probs = torch.softmax(last.float() / temperature, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        for b, t in enumerate(token.tolist()):
            if not finished[b]:
                out[b].append(t)
        finished = finished | torch.isin(token, eos) | torch.tensor([len(r) >= max_new_tokens for r in out], device=device)
        if bool(finished.all()):
            break
        mask = torch.cat([mask, (~finished).long()[:, None]], dim=1)
        logits, cache = model(token[:, None], mask, positions=next_pos[:, None], cache=cache, return_cache=True)
        last = logits[:, -1, :]
        next_pos = next_pos + 1
    return out
