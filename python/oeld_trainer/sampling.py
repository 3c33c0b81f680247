"""Sampling a batch of replies with a key/value cache: left-padded prompts, each row's positions
counted from its first real token, a row stopping at its first end-of-sequence token, which it
keeps, or at its own token limit. Temperature 0 is greedy; otherwise softmax(logits / temperature),
then top-k (0: off) and top-p (1: off) as the TypeScript runtime's sampling.ts applies them. The
round samples with top_p 1 and no top-k."""
import torch


def filter_logits(logits, top_k, top_p):
    """Logits outside the kept set set to -inf: in descending order, the first top_k (0: all), and of
    those the shortest prefix whose probability under the whole distribution reaches top_p (at least
    one token), as sampling.ts keeps them."""
    V = logits.shape[-1]
    limit = top_k if top_k and 0 < top_k < V else V
    if limit == V and (top_p is None or top_p >= 1):
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    rank = torch.arange(V, device=logits.device)
    keep = rank < limit
    if top_p is not None and top_p < 1:
        before = probs.cumsum(-1) - probs  # the probability of the tokens ranked above each one
        keep = keep & ((before < top_p) | (rank == 0))
    sorted_logits = sorted_logits.masked_fill(~keep, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


@torch.no_grad()
def generate(model, prompts, max_new_tokens, temperature, eos_ids, pad_id, seed, device, top_k=0, top_p=1.0, row_limits=None, on_step=None):
    """Replies to `prompts` (token id lists). Returns (replies, ended) with ended[b] 'eos' or 'length'.
    on_step, where given, gets each step's new tokens as [[row, token], ...] (rows still running)."""
    B = len(prompts)
    limits = list(row_limits) if row_limits is not None else [max_new_tokens] * B
    longest = max(limits) if limits else 0
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
    out = [[] for _ in range(B)]
    ended = ["length"] * B
    finished = torch.tensor([lim <= 0 for lim in limits], dtype=torch.bool, device=device)
    if longest <= 0 or bool(finished.all()):
        return out, ended
    logits, cache = model(ids, mask, positions=positions, return_cache=True)
    last = logits[:, -1, :]
    next_pos = positions[:, -1] + 1
    for _ in range(longest):
        scores = last.float()
        if temperature <= 0:
            token = scores.argmax(-1)
        else:
            probs = torch.softmax(filter_logits(scores / temperature, top_k, top_p), dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        is_eos = torch.isin(token, eos)
        step = []
        for b, t in enumerate(token.tolist()):
            if not finished[b]:
                out[b].append(t)
                step.append([b, t])
                if bool(is_eos[b]):
                    ended[b] = "eos"
        if on_step is not None and step:
            on_step(step)
        finished = finished | is_eos | torch.tensor([len(r) >= lim for r, lim in zip(out, limits)], device=device)
        if bool(finished.all()):
            break
        mask = torch.cat([mask, (~finished).long()[:, None]], dim=1)
        logits, cache = model(token[:, None], mask, positions=next_pos[:, None], cache=cache, return_cache=True)
        last = logits[:, -1, :]
        next_pos = next_pos + 1
    return out, ended
