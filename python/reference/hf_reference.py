"""
Reference logits from Hugging Face transformers for oeld's parity test (test/hf-parity.test.ts):

  python hf_reference.py make OUT     random Qwen3-, Qwen2- and Llama-shaped models (with and
                                      without RoPE scaling: llama3, yarn, linear, dynamic), saved by
                                      transformers (config.json as the installed release writes
                                      it, model.safetensors), and their logits on fixed token ids
  python hf_reference.py template FOLDER CASES OUT
                                      the token ids transformers' apply_chat_template gives
                                      each case (messages, template variables) with the folder's
                                      tokenizer and chat template
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
    # RoPE scaling as Llama 3.x, YaRN (Qwen2.5's long-context setting), linear and dynamic NTK configure it.
    "llama3-scaled": dict(kind="LlamaConfig", vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, rope_theta=50000.0,
                          scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "qwen3-yarn": dict(kind="Qwen3Config", vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, max_position_embeddings=256, tie_word_embeddings=True, rope_theta=1000000.0,
                       scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}),
    "llama-linear": dict(kind="LlamaConfig", vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, max_position_embeddings=256, tie_word_embeddings=False, rope_theta=10000.0,
                         scaling={"rope_type": "linear", "factor": 2.0}),
    # Dynamic scaling acts only past max_position_embeddings: 8 here, for sequences of 12.
    "qwen2-dynamic": dict(kind="Qwen2Config", vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, max_position_embeddings=8, tie_word_embeddings=True, rope_theta=10000.0,
                          scaling={"rope_type": "dynamic", "factor": 2.0}),
}


def build(transformers, shape, with_scaling=True):
    shape = dict(shape)
    cls = getattr(transformers, shape.pop("kind"))
    rope_theta = shape.pop("rope_theta")
    scaling = shape.pop("scaling", None) if with_scaling else None
    shape.pop("scaling", None)
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 keeps the rotary base and its scaling in rope_parameters.
        shape["rope_parameters"] = {"rope_type": "default", "rope_theta": rope_theta, **(scaling or {})}
    else:
        shape["rope_theta"] = rope_theta
        if scaling:
            shape["rope_scaling"] = scaling
    return cls(**shape)


def make(out):
    import transformers

    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(build(transformers, shape), attn_implementation="eager").float().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)  # norms away from 1, biases away from 0
        folder = os.path.join(out, name)
        model.save_pretrained(folder, safe_serialization=True)
        with torch.no_grad():
            logits = model(torch.tensor(IDS)).logits
            # The same weights with the default rotary embedding: how much the scaling changes the logits.
            plain = transformers.AutoModelForCausalLM.from_config(build(transformers, shape, with_scaling=False), attn_implementation="eager").float().eval()
            plain.load_state_dict(model.state_dict())
            unscaled = plain(torch.tensor(IDS)).logits
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump({"transformers": transformers.__version__, "ids": IDS, "logits": logits.tolist(), "unscaledLogits": unscaled.tolist()}, f)
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


def template(folder, cases_file, out_file):
    """Token ids of each case's prompt (its messages and the assistant's opening) as transformers'
    apply_chat_template writes them with the folder's tokenizer and chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    with open(cases_file) as f:
        cases = json.load(f)
    ids = []
    for case in cases:
        r = tokenizer.apply_chat_template(case["messages"], add_generation_prompt=True, tokenize=True, **case.get("variables", {}))
        ids.append(list(r["input_ids"] if isinstance(r, dict) or hasattr(r, "keys") else r))
    with open(out_file, "w") as f:
        json.dump(ids, f)


if __name__ == "__main__":
    if sys.argv[1] == "template":
        template(*sys.argv[2:5])
    else:
        {"make": make, "torch": oeld_torch}[sys.argv[1]](sys.argv[2])
