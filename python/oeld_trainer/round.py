"""One consolidation round on a planned job (src/trainer/round-plan.ts plans it), the arithmetic of
src/trainer/opcd-round.ts in PyTorch:

  - the teacher is a frozen copy of the round-start weights; only the student trains;
  - each planned step names its examples (the student's prompt ids and the teacher's, knowledge
    placed) and a sampling seed; the student samples each reply without knowledge (OPCD), or the
    teacher samples with it (off-policy), at the round's temperature, top_p 1; in replay mode the
    job gives the replies instead, so two trainers can be compared on the same tokens;
  - the teacher scores the reply tokens off the graph; the loss is the token mean of the reverse KL
    over the student's top-k (or the forward KL over the teacher's, off-policy);
  - gradients are clipped by their global norm (computed in float64), then one AdamW step
    (torch.optim.AdamW, decoupled weight decay on every parameter, as oeld's AdamW);
  - a checkpoint of the student's weights every few steps and after the last.
"""
import math
import os
import shutil
import time

import torch

from .losses import distillation_loss
from .model import Transformer
from .safetensors_io import read_file, read_folder, write_file
from .sampling import generate


def pack(prompts, responses, pad_id, device):
    """Right-padded prompt+reply rows, their 0/1 mask, and the flat rows that predict each reply token."""
    T = max(len(p) + len(r) for p, r in zip(prompts, responses))
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    rows = []
    for b, (p, r) in enumerate(zip(prompts, responses)):
        row = list(p) + list(r)
        ids[b, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, :len(row)] = 1
        rows.extend(b * T + len(p) - 1 + i for i in range(len(r)))
    return ids.to(device), mask.to(device), torch.tensor(rows, dtype=torch.long, device=device), int(mask.sum())


def response_logits(model, prompts, responses, pad_id, device):
    ids, mask, rows, _ = pack(prompts, responses, pad_id, device)
    logits, _ = model(ids, mask, output_rows=rows, right_padded=True)
    return logits


def global_grad_norm(params):
    """sqrt of the sum of every gradient's squares, in float64, read back once (one device sync)."""
    squares = [p.grad.detach().double().pow(2).sum() for p in params if p.grad is not None]
    return math.sqrt(float(torch.stack(squares).sum())) if squares else 0.0


def write_checkpoint(folder, step, student, dtype_name):
    os.makedirs(folder, exist_ok=True)
    name = f"step-{step:05d}"
    path = os.path.join(folder, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    if student.lora:
        write_file(os.path.join(path, "adapter_model.safetensors"), student.adapter_tensors(), "F32")
    else:
        write_file(os.path.join(path, "model.safetensors"), student.named_tensors(), dtype_name)
    for old in os.listdir(folder):
        if old.startswith("step-") and old != name:
            shutil.rmtree(os.path.join(folder, old), ignore_errors=True)
    return path


def merge_adapter(tensors, adapter, a):
    """W += (alpha / rank) B @ A for every targeted weight, as the TypeScript runtime merges at load."""
    from .model import lora_weight_name

    scale = a["alpha"] / a["rank"]
    for name in list(tensors):
        if any(name.endswith(f".{module}.weight") for module in (MODULES[t] for t in a["targets"])):
            A = adapter[lora_weight_name(name, "A")].double()
            B = adapter[lora_weight_name(name, "B")].double()
            tensors[name] = (tensors[name].double() + scale * (B @ A)).float()


MODULES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}


def make_adamw(params, o, device):
    """torch.optim.AdamW as oeld's: betas (0.9, 0.999), eps 1e-8, decoupled decay on every parameter;
    fused into one kernel on CUDA where this torch has it."""
    kwargs = dict(lr=o["learningRate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=o["weightDecay"])
    if device.type == "cuda":
        try:
            return torch.optim.AdamW(params, fused=True, **kwargs)
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(params, **kwargs)


class World:
    """The processes of one job under torchrun (WORLD_SIZE > 1), or one process. Each step's
    examples are dealt out by rank (example i to rank i % size); the loss is the token mean over all
    of them (each rank divides its sum by the global count), and the gradients are summed across
    ranks before clipping, so every rank takes the same AdamW step and holds the same weights.
    Rank 0 reports and writes."""

    def __init__(self, device):
        import torch.distributed as dist

        self.size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.dist = dist if self.size > 1 else None
        if self.dist and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def mine(self, items):
        return items[self.rank::self.size]

    def sum(self, value, device):
        if not self.dist:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=device)
        self.dist.all_reduce(t)
        return float(t.item())

    def sum_grads(self, params):
        if not self.dist:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            self.dist.all_reduce(p.grad)


class RoundTrainer:
    """A round's student, frozen teacher and optimiser; step() trains one planned step."""

    def __init__(self, cfg, o, tensors, device, precision, pad_id, eos_ids, lora=None, adapter=None):
        self.cfg, self.o, self.device = cfg, o, device
        self.pad_id, self.eos_ids = pad_id, eos_ids
        self.student = Transformer(cfg, tensors, trainable=True, lora=lora, adapter=adapter).to(device)
        self.teacher = Transformer(cfg, tensors, trainable=False, lora=lora, adapter=adapter).to(device).eval()
        if lora and adapter is None:
            self.teacher.load_state_dict(self.student.state_dict())  # the same random A (B is zero either way)
        self.params = [p for p in self.student.parameters() if p.requires_grad]
        self.optimizer = make_adamw(self.params, o, device)
        self.top_k = min(o["topK"], cfg["vocabSize"])
        self.autocast = precision == "bf16-autocast"
        self.on_policy = o["method"] != "off-policy"
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.world = World(device)

    def step(self, planned, of, responses=None):
        o, device, world = self.o, self.device, self.world
        examples = world.mine(planned["examples"])
        if not examples:
            raise ValueError(f"step {planned['step']}: {len(planned['examples'])} examples for {world.size} processes; the batch must be at least as large")
        student_ids = [e["studentIds"] for e in examples]
        teacher_ids = [e["teacherIds"] for e in examples]
        if responses is not None:
            responses = world.mine(responses)
        # Under torchrun each rank samples its share with its own stream (seed and rank), so sampled
        # replies differ from a single process's; replayed ones do not.
        sample_seed = planned["sampleSeed"] if world.size == 1 else planned["sampleSeed"] * world.size + world.rank
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if responses is None:
                responses, _ = generate(self.student if self.on_policy else self.teacher, student_ids if self.on_policy else teacher_ids,
                                        o["maxNewTokens"], o["temperature"], self.eos_ids, self.pad_id, sample_seed, device)
            self.sync()
            t1 = time.perf_counter()
            with torch.no_grad():
                teacher_logits = response_logits(self.teacher, teacher_ids, responses, self.pad_id, device)
            self.sync()
            t2 = time.perf_counter()
            ids, mask, rows, trained_tokens = pack(student_ids, responses, self.pad_id, device)
            logits, _ = self.student(ids, mask, output_rows=rows, right_padded=True)
            per_token = distillation_loss(o["method"], logits, teacher_logits, o["temperature"], self.top_k, reduce=False)
            positions = world.sum(per_token.shape[0], device)
            loss = per_token.sum() / max(1.0, positions)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        del teacher_logits, logits
        world.sum_grads(self.params)
        loss_value = world.sum(float(loss), device)
        trained_tokens = int(world.sum(trained_tokens, device))
        reply_tokens = world.sum(sum(len(r) for r in responses), device)
        rows_total = world.sum(len(responses), device)
        grad_norm = global_grad_norm(self.params)
        if not math.isfinite(grad_norm):
            raise FloatingPointError(f"non-finite gradient norm ({grad_norm}) at loss {float(loss)}: step {planned['step']} skipped")
        if grad_norm > o["clipNorm"]:
            scale = o["clipNorm"] / (grad_norm + 1e-6)
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(scale)
        self.optimizer.step()
        self.sync()
        t3 = time.perf_counter()
        return {"event": "step", "step": planned["step"], "of": of, "loss": loss_value, "gradNorm": grad_norm,
                "responseTokens": reply_tokens / max(1.0, rows_total), "trainedTokens": trained_tokens,
                "timings": {"samplingMs": (t1 - t0) * 1e3, "teacherMs": (t2 - t1) * 1e3, "backwardMs": (t3 - t2) * 1e3}}


def run_round(job, device, precision, emit):
    cfg, o = job["model"], job["options"]
    replay = job.get("replay")
    plan = job["plan"]
    if replay is not None and len(replay) < len(plan):
        raise ValueError(f"replay: {len(replay)} steps of replies for a plan of {len(plan)} steps")
    tensors = read_folder(job["baseDir"])
    # LoRA: the base weights stay frozen; the round trains the adapter, continuing the round-start
    # version's own adapter when it has one (the job's `adapter`), so every version is the
    # base plus one adapter. The teacher is the round-start model: base plus that adapter (or none).
    lora = job.get("lora")
    start = job.get("adapter")
    adapter = read_file(start["file"]) if start else None
    if adapter is not None and not lora:
        merge_adapter(tensors, adapter, start)  # full-weight training from an adapter version
        adapter = None
    trainer = RoundTrainer(cfg, o, tensors, device, precision, job["padTokenId"], job["eosTokenIds"], lora, adapter)
    del tensors
    lead = trainer.world.rank == 0
    say = emit if lead else (lambda _e: None)
    say({"event": "ready", "device": str(device), "precision": precision, "torch": torch.__version__,
         "parameters": sum(p.numel() for p in trainer.params), "processes": trainer.world.size})
    for i, planned in enumerate(plan):
        say(trainer.step(planned, len(plan), None if replay is None else replay[i]))
        step = planned["step"]
        if lead and (step % o["checkpointEvery"] == 0 or i == len(plan) - 1):
            say({"event": "checkpoint", "step": step, "path": write_checkpoint(job["checkpointDir"], step, trainer.student, job["storeDtype"])})
    if lead:
        if lora:
            write_file(job["weightsOut"], trainer.student.adapter_tensors(), "F32")
        else:
            write_file(job["weightsOut"], trainer.student.named_tensors(), job["storeDtype"])
        say({"event": "done", "weights": job["weightsOut"]})
    if trainer.world.dist:
        trainer.world.dist.barrier()
        trainer.world.dist.destroy_process_group()
