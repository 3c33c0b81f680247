#!/usr/bin/env python3
"""
The torch trainer's GPU check (issue #18), one script for a GPU machine with torch and no Node:

  1. the shipped model's round on the GPU against the CPU figures: the replay job that
     bench/gpu/prepare-gpu-check.ts wrote here (.build/gpu-check/: a planned round of the shipped base
     model with its replies, and the per-step losses the tfjs and torch trainers computed on this
     repository's CPU machine), run in float32 (goal: every step's loss within 1e-3 of the CPU
     figures) and under bf16 autocast (reported); each precision twice, to measure what a re-derivation
     of a GPU-trained version can hold to (issue #19: identical weights, or the largest difference);
  2. one OPCD step of a randomly initialised Qwen3-0.6B-shaped model (sequences of 1024 tokens:
     768 prompt, 256 sampled), full-weight under bf16 autocast and LoRA r=16 on every projection:
     tokens per second, MFU of the student's forward+backward+update and of the whole step against
     the GPU's dense bf16 peak, peak memory.

  python bench/gpu/gpu-check.py --out DIR [--batch 16] [--smoke]

--smoke runs both parts on the CPU with a tiny model shape, to check the script itself. Results go
to DIR/gpu-check.json and stdout.
"""
import argparse
import json
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

import torch  # noqa: E402

from oeld_trainer.round import RoundTrainer, run_round  # noqa: E402
from oeld_trainer.safetensors_io import read_file  # noqa: E402

# Dense bf16 peaks (tensor cores, no sparsity), FLOP/s.
PEAKS = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989.4e12), ("H200", 989.4e12), ("A100", 312e12), ("L40S", 362e12)]

QWEN3_06B = {
    "family": "qwen3", "vocabSize": 151936, "hidden": 1024, "intermediate": 3072, "layers": 28, "heads": 16, "kvHeads": 8,
    "headDim": 128, "eps": 1e-6, "ropeTheta": 1000000.0, "maxPositions": 40960, "tiedEmbeddings": True,
    "qkvBias": False, "oBias": False, "qkNorm": True, "eosTokenIds": [151645],
}
SMOKE = {**QWEN3_06B, "vocabSize": 512, "hidden": 64, "intermediate": 128, "layers": 2, "heads": 4, "kvHeads": 2, "headDim": 16, "eosTokenIds": [1]}


def say(*a):
    print(*a, flush=True)


def peak_flops(device):
    if device.type != "cuda":
        return None, "cpu"
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAKS:
        if key in name:
            return peak, name
    return None, name


def part1(device, out):
    folder = os.path.join(ROOT, ".build", "gpu-check")
    with open(os.path.join(folder, "shipped-job.json")) as f:
        job = json.load(f)
    with open(os.path.join(folder, "cpu-reference.json")) as f:
        reference = json.load(f)
    job["baseDir"] = os.path.join(ROOT, "models", "oeld-base")
    results = {}
    for precision in ("float32", "bf16-autocast"):
        job["weightsOut"] = os.path.join(out, f"shipped-{precision}.safetensors")
        job["checkpointDir"] = os.path.join(out, f"shipped-{precision}-ckpt")
        steps = []
        t0 = time.perf_counter()
        run_round(job, device, precision, lambda e: steps.append(e) if e["event"] == "step" else None)
        seconds = time.perf_counter() - t0
        losses = [s["loss"] for s in steps]
        worst = {name: max(abs(a - b) for a, b in zip(losses, ref)) for name, ref in reference["losses"].items()}
        results[precision] = {"losses": losses, "gradNorms": [s["gradNorm"] for s in steps], "worstLossDifference": worst, "seconds": seconds}
        say(f"part 1, {precision}: losses {['%.6f' % x for x in losses]}; largest difference from the CPU figures {json.dumps({k: '%.2e' % v for k, v in worst.items()})}; {seconds:.1f} s")
        # The same job again: does a GPU re-derive the same weights (oeld rederive), and if not, how far apart?
        first = job["weightsOut"]
        job["weightsOut"] = os.path.join(out, f"shipped-{precision}-again.safetensors")
        job["checkpointDir"] = os.path.join(out, f"shipped-{precision}-again-ckpt")
        run_round(job, device, precision, lambda e: None)
        a, b = read_file(first), read_file(job["weightsOut"])
        diffs = [float((a[k].float() - b[k].float()).abs().max()) for k in a]
        results[precision]["rederive"] = {"identical": all(torch.equal(a[k], b[k]) for k in a), "maxAbsDifference": max(diffs) if diffs else 0.0}
        say(f"part 1, {precision}, run twice: {'identical weights' if results[precision]['rederive']['identical'] else 'weights differ by up to %.3e' % results[precision]['rederive']['maxAbsDifference']}")
    goal = all(v <= 1e-3 for v in results["float32"]["worstLossDifference"].values())
    say(f"part 1 goal (float32 losses within 1e-3 of the CPU's): {'met' if goal else 'NOT met'}")
    results["goalMet"] = goal
    return results


def random_tensors(cfg, device, seed):
    """Hugging Face-named weights drawn N(0, 0.02) (norms 1), on the device."""
    from oeld_trainer.model import EMBED, FINAL_NORM, layer_names

    g = torch.Generator(device="cpu").manual_seed(seed)
    H, I, d = cfg["hidden"], cfg["intermediate"], cfg["headDim"]
    q_out, kv_out = cfg["heads"] * d, cfg["kvHeads"] * d
    t = {EMBED: torch.randn(cfg["vocabSize"], H, generator=g) * 0.02, FINAL_NORM: torch.ones(H)}
    for i in range(cfg["layers"]):
        n = layer_names(i)
        t[n["input_norm"]] = torch.ones(H)
        t[n["post_norm"]] = torch.ones(H)
        t[n["q_norm"]] = torch.ones(d)
        t[n["k_norm"]] = torch.ones(d)
        for key, shape in (("q", (q_out, H)), ("k", (kv_out, H)), ("v", (kv_out, H)), ("o", (H, q_out)), ("gate", (I, H)), ("up", (I, H)), ("down", (H, I))):
            t[n[key]] = torch.randn(*shape, generator=g) * 0.02
    return {k: v.to(device) for k, v in t.items()}


def step_flops(cfg, batch, seq, reply, lora):
    """Model FLOPs of the student's forward+backward on `batch` rows of `seq` tokens, logits on `reply` rows each:
    matmuls 2 per multiply-add, causal attention (half of the scores), backward twice the forward
    for full weights and once (inputs only, the adapters' share negligible) with LoRA."""
    H, I, d, L = cfg["hidden"], cfg["intermediate"], cfg["headDim"], cfg["layers"]
    q_out, kv_out = cfg["heads"] * d, cfg["kvHeads"] * d
    per_token_layer = 2 * (H * q_out + 2 * H * kv_out + q_out * H + 3 * H * I) + 2 * 2 * q_out * (seq / 2)
    forward = batch * seq * L * per_token_layer + batch * reply * 2 * H * cfg["vocabSize"]
    return forward * (2 if lora else 3)


def part2(device, out, cfg, batch, seq, reply, precision):
    peak, name = peak_flops(device)
    prompt = seq - reply
    knowledge = 128 if seq >= 512 else 8
    g = torch.Generator().manual_seed(7)
    o = {"method": "opcd", "steps": 3, "batchSize": batch, "learningRate": 1e-5, "weightDecay": 0.01, "clipNorm": 1.0,
         "temperature": 0.7, "topK": 256, "maxNewTokens": reply, "checkpointEvery": 1000, "seed": 1}
    results = {}
    for label, lora in (("full-weight", None), ("lora-r16", {"rank": 16, "alpha": 32, "targets": ["q", "k", "v", "o", "gate", "up", "down"]})):
        torch.cuda.empty_cache() if device.type == "cuda" else None
        torch.cuda.reset_peak_memory_stats(device) if device.type == "cuda" else None
        tensors = random_tensors(cfg, device, seed=3)
        trainer = RoundTrainer(cfg, o, tensors, device, precision, pad_id=0, eos_ids=[], lora=lora)
        del tensors
        reports = []
        for step in range(1, 4):  # step 1 warms up (kernels, allocator); steps 2 and 3 are measured
            ids = torch.randint(2, cfg["vocabSize"], (batch, prompt + knowledge), generator=g).tolist()
            planned = {"step": step, "sampleSeed": step, "examples": [{"studentIds": r[knowledge:], "teacherIds": r} for r in ids]}
            r = trainer.step(planned, 3)
            reports.append(r)
            say(f"part 2, {label}, step {step}: sampling {r['timings']['samplingMs']:.0f} ms, teacher {r['timings']['teacherMs']:.0f} ms, student {r['timings']['backwardMs']:.0f} ms; {r['responseTokens']:.0f} reply tokens a row; loss {r['loss']:.4f}")
        measured = reports[1:]
        ms = {k: sum(r["timings"][k] for r in measured) / len(measured) for k in ("samplingMs", "teacherMs", "backwardMs")}
        tokens = batch * seq
        flops = step_flops(cfg, batch, seq, reply, lora is not None)
        step_s = sum(ms.values()) / 1e3
        res = {
            "timingsMs": ms, "tokensPerStep": tokens,
            "studentTokensPerSecond": tokens / (ms["backwardMs"] / 1e3), "stepTokensPerSecond": tokens / step_s,
            "trainedParameters": sum(p.numel() for p in trainer.params),
            "peakMemoryGiB": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        }
        if peak:
            res["mfuStudent"] = flops / (ms["backwardMs"] / 1e3) / peak
            res["mfuStep"] = flops / step_s / peak
        results[label] = res
        say(f"part 2, {label}: student forward+backward+update {res['studentTokensPerSecond']:.0f} tokens/s"
            + (f" (MFU {100 * res['mfuStudent']:.1f}% of {name}'s {peak / 1e12:.0f} TFLOP/s)" if peak else "")
            + f"; whole step {res['stepTokensPerSecond']:.0f} tokens/s" + (f" (MFU {100 * res['mfuStep']:.1f}%)" if peak else "")
            + (f"; peak memory {res['peakMemoryGiB']:.1f} GiB" if res["peakMemoryGiB"] is not None else ""))
        del trainer
    full, lora = results["full-weight"], results["lora-r16"]
    results["loraToFullStudentTokensPerSecond"] = lora["studentTokensPerSecond"] / full["studentTokensPerSecond"]
    results["loraToFullStepTokensPerSecond"] = lora["stepTokensPerSecond"] / full["stepTokensPerSecond"]
    say(f"part 2 goals: MFU >= 35% (full weight, student): {('%.1f%%' % (100 * full['mfuStudent'])) if peak else 'no peak known'}; "
        f"LoRA r=16 >= 1.5x full-weight tokens/s: student {results['loraToFullStudentTokensPerSecond']:.2f}x, whole step {results['loraToFullStepTokensPerSecond']:.2f}x")
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--skip-part1", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    device = torch.device("cpu" if a.smoke else "cuda")
    say(f"torch {torch.__version__}; device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    t0 = time.perf_counter()
    if not a.skip_part1:
        result["shippedRound"] = part1(device, a.out)
    if a.smoke:
        result["qwen3Step"] = part2(device, a.out, SMOKE, 2, 64, 16, "float32")
    else:
        batch = a.batch
        while True:
            try:
                result["qwen3Step"] = part2(device, a.out, QWEN3_06B, batch, 1024, 256, "bf16-autocast")
                result["batch"] = batch
                break
            except torch.cuda.OutOfMemoryError:
                if batch == 1:
                    raise
                batch //= 2
                say(f"out of memory; again with batch {batch}")
    result["seconds"] = time.perf_counter() - t0
    with open(os.path.join(a.out, "gpu-check.json"), "w") as f:
        json.dump(result, f, indent=2)
    say(f"done in {result['seconds']:.0f} s; {os.path.join(a.out, 'gpu-check.json')}")


if __name__ == "__main__":
    main()
