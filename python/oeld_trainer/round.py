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

from .losses import forward_kl_loss, opcd_loss
from .model import Transformer
from .safetensors_io import read_folder, write_file
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
    logits, _ = model(ids, mask, output_rows=rows)
    return logits


def global_grad_norm(params):
    total = 0.0
    for p in params:
        if p.grad is not None:
            total += float(p.grad.detach().double().pow(2).sum())
    return math.sqrt(total)


def write_checkpoint(folder, step, student, dtype_name):
    os.makedirs(folder, exist_ok=True)
    name = f"step-{step:05d}"
    path = os.path.join(folder, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    write_file(os.path.join(path, "model.safetensors"), student.named_tensors(), dtype_name)
    for old in os.listdir(folder):
        if old.startswith("step-") and old != name:
            shutil.rmtree(os.path.join(folder, old), ignore_errors=True)
    return path


def run_round(job, device, precision, emit):
    cfg, o = job["model"], job["options"]
    pad_id, eos_ids = job["padTokenId"], job["eosTokenIds"]
    replay = job.get("replay")
    plan = job["plan"]
    if replay is not None and len(replay) < len(plan):
        raise ValueError(f"replay: {len(replay)} steps of replies for a plan of {len(plan)} steps")
    tensors = read_folder(job["baseDir"])
    student = Transformer(cfg, tensors, trainable=True).to(device)
    teacher = Transformer(cfg, tensors, trainable=False).to(device).eval()
    del tensors
    params = [p for p in student.parameters() if p.requires_grad]
    emit({"event": "ready", "device": str(device), "precision": precision, "torch": torch.__version__,
          "parameters": sum(p.numel() for p in params)})
    optimizer = torch.optim.AdamW(params, lr=o["learningRate"], betas=(0.9, 0.999), eps=1e-8, weight_decay=o["weightDecay"])
    top_k = min(o["topK"], cfg["vocabSize"])
    autocast = precision == "bf16-autocast"
    on_policy = o["method"] == "opcd"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i, planned in enumerate(plan):
        student_ids = [e["studentIds"] for e in planned["examples"]]
        teacher_ids = [e["teacherIds"] for e in planned["examples"]]
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            if replay is not None:
                responses = replay[i]
            else:
                responses = generate(student if on_policy else teacher, student_ids if on_policy else teacher_ids,
                                     o["maxNewTokens"], o["temperature"], eos_ids, pad_id, planned["sampleSeed"], device)
            sync()
            t1 = time.perf_counter()
            with torch.no_grad():
                teacher_logits = response_logits(teacher, teacher_ids, responses, pad_id, device)
            sync()
            t2 = time.perf_counter()
            ids, mask, rows, trained_tokens = pack(student_ids, responses, pad_id, device)
            logits, _ = student(ids, mask, output_rows=rows)
            loss_fn = opcd_loss if on_policy else forward_kl_loss
            loss = loss_fn(logits, teacher_logits, o["temperature"], top_k)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        del teacher_logits, logits
        grad_norm = global_grad_norm(params)
        if not math.isfinite(grad_norm):
            raise FloatingPointError(f"non-finite gradient norm ({grad_norm}) at loss {float(loss)}: step {planned['step']} skipped")
        if grad_norm > o["clipNorm"]:
            scale = o["clipNorm"] / (grad_norm + 1e-6)
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(scale)
        optimizer.step()
        sync()
        t3 = time.perf_counter()
        step = planned["step"]
        emit({"event": "step", "step": step, "of": len(plan), "loss": float(loss), "gradNorm": grad_norm,
              "responseTokens": sum(len(r) for r in responses) / max(1, len(responses)), "trainedTokens": trained_tokens,
              "timings": {"samplingMs": (t1 - t0) * 1e3, "teacherMs": (t2 - t1) * 1e3, "backwardMs": (t3 - t2) * 1e3}})
        if step % o["checkpointEvery"] == 0 or i == len(plan) - 1:
            emit({"event": "checkpoint", "step": step, "path": write_checkpoint(job["checkpointDir"], step, student, job["storeDtype"])})
    write_file(job["weightsOut"], student.named_tensors(), job["storeDtype"])
    emit({"event": "done", "weights": job["weightsOut"]})
