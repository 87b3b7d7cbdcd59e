"""A tiny Qwen2 chat model built on this machine, for running the real vLLM engine in tests and
in `claimcoder bench` (it needs torch, transformers and tokenizers: the cpu-llm extra; peft for
the LoRA adapter).

Nothing is downloaded: a byte-level BPE tokenizer is trained on the ICD-10-CM descriptions that
`simple-icd-10-cm` ships, wrapped with a ChatML chat template, and a 2-layer Qwen2 with random
weights is saved next to it (about 1.5 MB, ~5 s). `lora_adapter` adds a peft LoRA adapter with
random (non-zero) weights, so that it visibly changes what the model writes.

The weights are random: the model writes noise, which structured outputs shape into codes.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from drg.codeset.catalog import shipped_catalog

CHAT_TEMPLATE: Final = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS: Final = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
VOCAB_SIZE: Final = 2048
_DONE: Final = "claimcoder-tinymodel.json"


@dataclass(frozen=True, slots=True)
class TinyModel:
    path: Path
    lora_path: Path | None
    vocab_size: int


def _training_text(limit: int) -> list[str]:
    """Medical words and code shapes: descriptions and dotted codes of the FY2026 release."""
    lines: list[str] = []
    for record in shipped_catalog().records("2026-04"):
        lines.append(f"{record.dotted} {record.code} {record.description}")
        if len(lines) >= limit:
            break
    lines.append("<reasoning></reasoning><codes><code></code></codes>, ")
    return lines


def _build_tokenizer(path: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(20_000), trainer=trainer)
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # unannotated __init__
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(path))


def _build_model(path: Path, vocab_size: int, seed: int) -> None:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert isinstance(eos, int)
    assert isinstance(pad, int)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)  # type: ignore[no-untyped-call]  # unannotated __init__
    # A wider spread than the default init, so that greedy decoding depends on the input.
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
    model.save_pretrained(str(path), safe_serialization=True)
    generation = GenerationConfig(  # type: ignore[no-untyped-call]  # unannotated __init__
        eos_token_id=eos, pad_token_id=pad, do_sample=False
    )
    generation.save_pretrained(str(path))


def _build_lora(model_path: Path, lora_path: Path, seed: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2ForCausalLM

    base = Qwen2ForCausalLM.from_pretrained(str(model_path))
    torch.manual_seed(seed + 1)
    config = LoraConfig(
        r=8,
        lora_alpha=32,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        init_lora_weights=False,  # random A and B: the adapter changes outputs
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.3)
    peft_model.save_pretrained(str(lora_path))


def build_tiny_model(
    root: Path, *, lora: bool = True, vocab_size: int = VOCAB_SIZE, seed: int = 1234
) -> TinyModel:
    """Build (or reuse, when ``root`` already holds one) the tiny model under ``root``."""
    model_path = root / "model"
    lora_path = root / "lora" if lora else None
    done = root / _DONE
    wanted = {"vocab_size": vocab_size, "seed": seed, "lora": lora}
    if done.is_file() and json.loads(done.read_text()) == wanted:
        return TinyModel(model_path, lora_path, vocab_size)
    model_path.mkdir(parents=True, exist_ok=True)
    # Tokenizer training and torch may start thread pools; one builder at a time is enough.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _build_tokenizer(model_path, vocab_size)
    _build_model(model_path, vocab_size, seed)
    if lora_path is not None:
        _build_lora(model_path, lora_path, seed)
    done.write_text(json.dumps(wanted))
    return TinyModel(model_path, lora_path, vocab_size)


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    built = build_tiny_model(Path(sys.argv[1] if len(sys.argv) > 1 else "tinymodel"))
    print(built, f"{time.perf_counter() - started:.1f} s")
