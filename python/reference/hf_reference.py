"""
Reference logits from Hugging Face transformers for oeld's parity test (test/hf-parity.test.ts):

  python hf_reference.py make OUT     random Qwen3-, Qwen2- and Llama-shaped models, saved by
                                      transformers (config.json as the installed release writes
                                      it, model.safetensors), and their logits on fixed token ids
  python hf_reference.py torch OUT    the logits of python/oeld_trainer's model on the same ids,
                                      from each folder's resolved.json (the configuration as oeld's
                                      TypeScript resolved it)

Needs torch and transformers (scripts/ensure-transformers.sh makes a virtual environment with
them from this machine's package index). Float32, eager attention.
"""
import json
import os
import sys

import torch

IDS = [[5, 17, 42, 99, 3, 250, 7, 64, 128, 11, 200, 33], [9, 8, 7, 6, 5, 4, 3, 2, 1, 290, 280, 270]]

SHAPES = {
    # rope_theta away from 10000, so a runtime that ignores where transformers 5 writes it differs.
    "qwen3": dict(kind="Qwen3Config", vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=24, max_position_embeddings=256, tie_word_embeddings=True, rope_theta=1000000.0),
    "qwen2": dict(kind="Qwen2Config", vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False, rope_theta=500000.0),
    "llama": dict(kind="LlamaConfig", vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=8,
                  num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=False, rope_theta=50000.0, attention_bias=True),
}


def make(out):
    import transformers

    torch.manual_seed(0)
    for name, shape in SHAPES.items():
        shape = dict(shape)
        cls = getattr(transformers, shape.pop("kind"))
        rope_theta = shape.pop("rope_theta")
        config = cls(**shape)
        # transformers 5 keeps the rotary base in rope_parameters; earlier releases in rope_theta.
        if getattr(config, "rope_parameters", None) is not None:
            config.rope_parameters["rope_theta"] = rope_theta
        else:
            config.rope_theta = rope_theta
        model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").float().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # norms away from 1, biases away from 0
        folder = os.path.join(out, name)
        model.save_pretrained(folder, safe_serialization=True)
        with torch.no_grad():
            logits = model(torch.tensor(IDS)).logits
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump({"transformers": transformers.__version__, "ids": IDS, "logits": logits.tolist()}, f)
    print(json.dumps({"transformers": transformers.__version__, "models": list(SHAPES)}))


def oeld_torch(out):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from oeld_trainer.model import Transformer
    from oeld_trainer.safetensors_io import read_folder

    result = {}
    for name in SHAPES:
        folder = os.path.join(out, name)
        with open(os.path.join(folder, "resolved.json")) as f:
            cfg = json.load(f)
        model = Transformer(cfg, read_folder(folder), trainable=False).eval()
        ids = torch.tensor(IDS)
        with torch.no_grad():
            logits, _ = model(ids, torch.ones_like(ids))
        result[name] = logits.tolist()
    with open(os.path.join(out, "oeld-torch.json"), "w") as f:
        json.dump(result, f)
    print(json.dumps({"torch": torch.__version__}))


if __name__ == "__main__":
    {"make": make, "torch": oeld_torch}[sys.argv[1]](sys.argv[2])
