"""DJL Serving Python handler for Hugging Face text models.

DJL Serving imports this file (``option.entryPoint=model.py``) and calls
``handle(inputs)``: first with an empty Input carrying the model's properties
(we load then), then once per request or per batch of requests. Everything is
configured through ``serving.properties``; DJL passes ``option.X`` keys as ``X``,
and this handler accepts both spellings so it also runs under other hosts.

It runs inside AWS's DJL containers (transformers 4.x) and locally under
``djl-operator-kit serve`` (transformers 5.x), so it uses ``AutoTokenizer``,
``AutoModel*`` and ``generate`` rather than pipelines, which transformers 5
trimmed. This file ships alone next to ``djl_compat.py``: it must not import the
operator.

Properties read (``option.`` prefix optional): ``model_id`` (hub id or local
path; falls back to ``model_dir``), ``task``, ``dtype``, ``revision``,
``trust_remote_code``, ``pooling``, ``tensor_parallel_degree``, ``device_id``.

Errors never escape ``handle``: a bad request gets a 4xx Output naming the
problem, a failing model a 5xx with the exception's message.

DJL's Python engine calls ``handle`` in one of two modes (djl-serving,
``engines/python/setup/djl_python``):

* sync (``python_sync_engine.py``): ``outputs = handle(inputs)`` on the worker's
  only thread, one request or one batch at a time; the answer must be an
  ``Output`` or ``None`` (sent as 204).
* async (``python_async_engine.py``, ``option.async_mode=true``, which LMI's
  config recommender turns on for text-generation models when
  ``option.rolling_batch`` is unset): every request is submitted to an asyncio
  event loop as it arrives and the engine runs ``outputs = await handle(inputs)``
  there; the awaited value must be an ``Output``, an async generator of them, or
  ``None``.

``handle`` tells the two apart by whether it is called on a running event loop
(the async engine's coroutine calls it there; the sync engine has no loop) and
in async mode returns a coroutine that runs the same blocking work on one
worker thread, so the loop keeps accepting requests while the model computes;
requests that arrive meanwhile share the worker's next call.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import torch

try:  # the real thing inside a DJL container
    from djl_python import Input, Output
except ImportError:  # djl-operator-kit serve, tests
    from djl_compat import Input, Output

# Input is re-exported on purpose: hosts (djl-operator-kit serve) build requests with
# the same class the handler was written against.
__all__ = ["Input", "Output", "handle", "load_count", "model_runs"]

logger = logging.getLogger(__name__)

TASKS = (
    "feature-extraction",
    "text-generation",
    "text2text-generation",
    "summarization",
    "fill-mask",
    "text-classification",
    "token-classification",
)
POOLINGS = ("mean", "cls", "none")
DTYPES = ("fp32", "fp16", "bf16", "int8", "auto")
# Cap on texts per request: one request must not be able to exhaust the device.
MAX_INPUTS_PER_REQUEST = 256
DEFAULT_MAX_NEW_TOKENS = 64
JSON_SHAPE = '{"inputs": str | [str], "parameters": {...}}'


class BadRequest(ValueError):
    """The caller's fault: becomes a 4xx Output, never a crash."""

    def __init__(self, message: str, code: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = int(code)


class ConfigError(ValueError):
    """serving.properties asks for something this handler cannot do."""


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------
def _property(properties: dict[str, str], name: str) -> str | None:
    # DJL hands option.X over as X; a host that passes both spellings must not
    # let one silently shadow the other.
    prefixed, plain = properties.get(f"option.{name}"), properties.get(name)
    if prefixed is not None and plain is not None and str(prefixed).strip() != str(plain).strip():
        raise ConfigError(f"option.{name}={prefixed!r} and {name}={plain!r} disagree; set it once")
    value = prefixed if prefixed is not None else plain
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def _choice(properties: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = _property(properties, name) or default
    if value not in allowed:
        raise ConfigError(f"option.{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _flag(properties: dict[str, str], name: str) -> bool:
    value = (_property(properties, name) or "false").lower()
    if value not in ("true", "false"):
        raise ConfigError(f"option.{name} must be true or false; got {value!r}")
    return value == "true"


def _positive_int(properties: dict[str, str], name: str, default: int) -> int:
    value = _property(properties, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"option.{name} must be a positive integer; got {value!r}")
    return number


@dataclass(frozen=True)
class Config:
    model_id: str
    task: str
    dtype: str | None
    revision: str | None
    trust_remote_code: bool
    pooling: str
    tensor_parallel_degree: int
    device_id: int

    @property
    def is_local(self) -> bool:
        return os.path.isdir(self.model_id)

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> Config:
        model_dir = _property(properties, "model_dir")
        model_id = _property(properties, "model_id") or model_dir
        if model_id is None:
            raise ConfigError("option.model_id is required (a Hugging Face model id or a local path)")
        if model_id.startswith("s3://"):
            # DJL Serving downloads s3 prefixes and hands us the local copy.
            raise ConfigError(f"option.model_id {model_id!r} is an S3 prefix the host did not download")
        if model_dir and not os.path.isabs(model_id) and os.path.isdir(os.path.join(model_dir, model_id)):
            model_id = os.path.join(model_dir, model_id)  # weights shipped inside the artifact
        dtype = _property(properties, "dtype")
        if dtype is not None and dtype not in DTYPES:
            raise ConfigError(f"option.dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
        device_id = _property(properties, "device_id")
        return cls(
            model_id=model_id,
            task=_choice(properties, "task", TASKS, "feature-extraction"),
            dtype=dtype,
            revision=_property(properties, "revision"),
            trust_remote_code=_flag(properties, "trust_remote_code"),
            pooling=_choice(properties, "pooling", POOLINGS, "none"),
            tensor_parallel_degree=_positive_int(properties, "tensor_parallel_degree", 1),
            device_id=int(device_id) if device_id and device_id.lstrip("-").isdigit() else 0,
        )


# --------------------------------------------------------------------------
# Request parsing and parameter validation (pure)
# --------------------------------------------------------------------------
Validator = Callable[[str, Any], Any]


def _integer(low: int, high: int) -> Validator:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadRequest(f"parameter {name!r} must be an integer from {low} to {high}; got {value!r}")
        return value

    return check


def _number(low: float, high: float, *, low_open: bool = False) -> Validator:
    def check(name: str, value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok and (value < low or value > high or (low_open and value == low)):
            ok = False
        if not ok:
            bound = f"above {low}" if low_open else f"from {low}"
            raise BadRequest(f"parameter {name!r} must be a number {bound} to {high}; got {value!r}")
        return float(value)

    return check


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"parameter {name!r} must be true or false; got {value!r}")
    return value


def _pooling(name: str, value: Any) -> str:
    if value not in POOLINGS:
        raise BadRequest(f"parameter {name!r} must be one of {', '.join(POOLINGS)}; got {value!r}")
    return str(value)


def _labels(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"parameter {name!r} must be a list of label names; got {value!r}")
    return list(value)


_GENERATION: dict[str, Validator] = {
    "max_new_tokens": _integer(1, 4096),
    "min_new_tokens": _integer(0, 4096),
    "do_sample": _boolean,
    "temperature": _number(0.0, 100.0, low_open=True),
    "top_k": _integer(1, 1000),
    "top_p": _number(0.0, 1.0, low_open=True),
    "num_beams": _integer(1, 16),
    "repetition_penalty": _number(0.0, 100.0, low_open=True),
}

# What each task accepts in "parameters"; anything else is refused by name.
PARAMETERS: dict[str, dict[str, Validator]] = {
    "feature-extraction": {"pooling": _pooling, "normalize": _boolean},
    "text-generation": {**_GENERATION, "return_full_text": _boolean},
    "text2text-generation": _GENERATION,
    "summarization": _GENERATION,
    "fill-mask": {"top_k": _integer(1, 100)},
    "text-classification": {"top_k": _integer(1, 1000)},
    "token-classification": {"ignore_labels": _labels},
}


def validate_parameters(task: str, parameters: Any) -> dict[str, Any]:
    """Check ``parameters`` against the task's table; return them normalised."""
    if not isinstance(parameters, dict):
        raise BadRequest(f'"parameters" must be a JSON object; got {type(parameters).__name__}')
    allowed = PARAMETERS[task]
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unsupported parameter(s) for task {task}: {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(allowed)) or 'none'}"
        )
    return {name: allowed[name](name, value) for name, value in parameters.items()}


@dataclass(frozen=True)
class Request:
    texts: tuple[str, ...]
    parameters: dict[str, Any]
    single: bool  # reply with one result, not a list

    @property
    def group_key(self) -> str:
        """Requests with equal parameters share one forward pass."""
        return json.dumps(self.parameters, sort_keys=True)


def _decode(body: bytes | bytearray | None) -> str:
    try:
        return bytes(body or b"").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid UTF-8: {exc}") from None


def parse_request(task: str, content_type: str | None, body: bytes | bytearray | None) -> Request:
    """Turn one request's content type and body into texts and parameters."""
    media_type = (content_type or "text/plain").split(";")[0].strip().lower()
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if not media_type.startswith("text/") and not is_json:
        raise BadRequest(
            f"unsupported content type {content_type!r}: send text/plain or application/json",
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    text = _decode(body)
    if not is_json:
        if not text.strip():
            raise BadRequest("empty text: the request body is empty")
        return Request((text,), {}, single=True)
    if not text.strip():
        raise BadRequest(f"empty text: the request body is empty; expected {JSON_SHAPE}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"wrong JSON shape: expected {JSON_SHAPE}; got a {type(document).__name__}")
    unknown = sorted(set(document) - {"inputs", "parameters"})
    if unknown:
        raise BadRequest(f"wrong JSON shape: unknown field(s) {', '.join(unknown)}; expected {JSON_SHAPE}")
    if "inputs" not in document:
        raise BadRequest(f'wrong JSON shape: "inputs" is required; expected {JSON_SHAPE}')
    inputs = document["inputs"]
    single = isinstance(inputs, str)
    texts = [inputs] if single else inputs
    if not isinstance(texts, list) or not texts:
        raise BadRequest(f'wrong JSON shape: "inputs" must be a string or a non-empty list of strings; got {inputs!r}')
    if len(texts) > MAX_INPUTS_PER_REQUEST:
        raise BadRequest(f'"inputs" has {len(texts)} texts; at most {MAX_INPUTS_PER_REQUEST} per request')
    for i, item in enumerate(texts):
        where = '"inputs"' if single else f'"inputs[{i}]"'
        if not isinstance(item, str):
            raise BadRequest(f"wrong JSON shape: {where} must be a string; got {type(item).__name__}")
        if not item.strip():
            raise BadRequest(f"empty text: {where} is empty")
    parameters = validate_parameters(task, document.get("parameters", {}))
    return Request(tuple(texts), parameters, single=single)


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------
def _auto_class(task: str) -> Any:
    import transformers

    return {
        "feature-extraction": transformers.AutoModel,
        "text-generation": transformers.AutoModelForCausalLM,
        "text2text-generation": transformers.AutoModelForSeq2SeqLM,
        "summarization": transformers.AutoModelForSeq2SeqLM,
        "fill-mask": transformers.AutoModelForMaskedLM,
        "text-classification": transformers.AutoModelForSequenceClassification,
        "token-classification": transformers.AutoModelForTokenClassification,
    }[task]


def _dtype_kwargs(dtype: str | None, on_cuda: bool) -> dict[str, Any]:
    import transformers

    # transformers 5 renamed torch_dtype to dtype; DJL containers ship 4.x.
    key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    if dtype is None:
        return {}
    if dtype == "int8":
        if not on_cuda:
            raise ConfigError("option.dtype=int8 needs a CUDA device (bitsandbytes 8-bit weights)")
        return {"quantization_config": transformers.BitsAndBytesConfig(load_in_8bit=True), "device_map": "auto"}
    if dtype == "auto":
        return {key: "auto"}
    return {key: {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]}


class Service:
    """Holds the one loaded model and answers requests with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config: Config | None = None
        self.load_error: str | None = None
        self.load_count = 0
        self.runs = 0  # calls of the model code (a batch is one)
        self.model: Any = None
        self.tokenizer: Any = None
        self.device: torch.device = torch.device("cpu")
        self.max_length = 512
        self._model_inputs: set[str] = set()

    # -- loading ------------------------------------------------------------
    def ensure_loaded(self, properties: dict[str, str]) -> None:
        with self._lock:
            if self.model is not None or self.load_error is not None:
                return
            try:
                self._load(Config.from_properties(properties))
            except Exception as exc:  # kept: every later call reports it instead of reloading
                logger.exception("model load failed")
                self.load_error = f"model failed to load: {type(exc).__name__}: {exc}"

    def _load(self, config: Config) -> None:
        from transformers import AutoTokenizer

        self.load_count += 1
        on_cuda = torch.cuda.is_available()
        common: dict[str, Any] = {"trust_remote_code": config.trust_remote_code}
        if config.revision and not config.is_local:
            common["revision"] = config.revision
        if config.is_local:
            common["local_files_only"] = True  # a path never needs the hub
        logger.info("loading %s for %s (dtype=%s, cuda=%s)", config.model_id, config.task, config.dtype, on_cuda)
        tokenizer = AutoTokenizer.from_pretrained(config.model_id, **common)
        kwargs = {**common, **_dtype_kwargs(config.dtype, on_cuda)}
        if on_cuda and config.tensor_parallel_degree > 1:
            kwargs.setdefault("device_map", "auto")  # shard over the visible GPUs (accelerate)
        model = _auto_class(config.task).from_pretrained(config.model_id, **kwargs)
        if "device_map" not in kwargs:
            device = torch.device(f"cuda:{config.device_id}" if on_cuda else "cpu")
            model.to(device)
        model.eval()
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ConfigError(f"the tokenizer of {config.model_id} has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        if config.task == "text-generation":
            tokenizer.padding_side = "left"  # generation continues from the right edge
        if config.task == "fill-mask" and tokenizer.mask_token is None:
            raise ConfigError(f"the tokenizer of {config.model_id} has no mask token for fill-mask")
        positions = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
        self.max_length = int(min(tokenizer.model_max_length, positions))
        self._model_inputs = set(inspect.signature(model.forward).parameters)
        self.device = model.device
        self.tokenizer, self.model, self.config = tokenizer, model, config

    # -- requests -----------------------------------------------------------
    def handle(self, inputs: Any) -> Any:
        self.ensure_loaded(inputs.get_properties())
        if self.load_error is not None:
            return Output().error(self.load_error, code=500, message="model load failure")
        if inputs.is_empty():
            return None  # DJL's load call, or a warm-up ping
        items = inputs.get_batches()
        results: list[Any] = [self._parse(item) for item in items]
        try:
            self._run(results)
        except Exception as exc:  # model failure: the whole batch fails, the worker lives on
            logger.exception("inference failed")
            return Output().error(f"{type(exc).__name__}: {exc}", code=500)
        return _reply(results, batched=inputs.is_batch())

    def handle_each(self, requests: list[Any]) -> list[Any]:
        """Several separate requests (the async engine's, which DJL never batches) in one
        forward pass per parameter set; one Output (or None) per request."""
        if not requests:
            return []
        self.ensure_loaded(requests[0].get_properties())
        if self.load_error is not None:
            return [Output().error(self.load_error, code=500, message="model load failure") for _ in requests]
        answers: list[Any] = [None] * len(requests)
        live = [i for i, request in enumerate(requests) if not request.is_empty()]
        results: list[Any] = [self._parse(requests[i]) for i in live]
        try:
            self._run(results)
        except Exception as exc:  # model failure: these requests fail, the worker lives on
            logger.exception("inference failed")
            return [
                Output().error(f"{type(exc).__name__}: {exc}", code=500) if i in live else None
                for i in range(len(requests))
            ]
        for i, result in zip(live, results, strict=True):
            answers[i] = _reply([result], batched=False)
        return answers

    def _parse(self, item: Any) -> Request | BadRequest:
        assert self.config is not None
        try:
            request = parse_request(self.config.task, item.get_property("Content-Type"), item.get_as_bytes())
            if self.config.task == "fill-mask":
                _require_mask(request, self.tokenizer.mask_token)
            return request
        except BadRequest as exc:
            return exc

    def _run(self, results: list[Any]) -> None:
        """Replace each Request in ``results`` by its answer, one forward pass per parameter set."""
        self.runs += 1
        groups: dict[str, list[int]] = {}
        for index, result in enumerate(results):
            if isinstance(result, Request):
                groups.setdefault(result.group_key, []).append(index)
        assert self.config is not None
        runner = getattr(self, "_" + self.config.task.replace("-", "_").replace("text2text", "seq2seq"))
        with torch.inference_mode():
            for members in groups.values():
                texts = [text for i in members for text in results[i].texts]
                answers = iter(runner(texts, results[members[0]].parameters))
                for i in members:
                    request = results[i]
                    answer = [next(answers) for _ in request.texts]
                    results[i] = answer[0] if request.single else answer

    def _encode(self, texts: list[str], **extra: Any) -> Any:
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_token_type_ids="token_type_ids" in self._model_inputs,
            **extra,
        )
        return encoded.to(self.device)

    # -- tasks ----------------------------------------------------------------
    def _feature_extraction(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        assert self.config is not None
        encoded = self._encode(texts)
        hidden = self.model(**encoded).last_hidden_state.float()
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooling = parameters.get("pooling", self.config.pooling)
        if pooling == "none":  # per-token vectors, padding removed
            lengths = encoded["attention_mask"].bool()
            vectors = [hidden[i][lengths[i]] for i in range(hidden.shape[0])]
        else:
            if pooling == "mean":
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            else:  # cls
                pooled = hidden[:, 0]
            vectors = list(pooled)
        if parameters.get("normalize"):
            vectors = [torch.nn.functional.normalize(v, p=2, dim=-1) for v in vectors]
        return [v.cpu().tolist() for v in vectors]

    def _generate(self, encoded: Any, parameters: dict[str, Any], room: int) -> Any:
        """``generate`` with at most ``room`` new tokens: past the model's position
        table, generation indexes out of range instead of stopping."""
        options = {k: v for k, v in parameters.items() if k != "return_full_text"}
        options["max_new_tokens"] = min(options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS), room)
        if "min_new_tokens" in options:
            options["min_new_tokens"] = min(options["min_new_tokens"], options["max_new_tokens"])
        return self.model.generate(**encoded, pad_token_id=self.tokenizer.pad_token_id, **options)

    def _text_generation(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        encoded = self._encode(texts)
        prompt_length = encoded["input_ids"].shape[1]
        room = self.max_length - prompt_length
        if room < 1:  # the prompt already fills the context: nothing can be added
            generated = [""] * len(texts)
        else:
            output = self._generate(encoded, parameters, room)
            # Decode whole sequences and cut the decoded prompt off, as HF's pipeline
            # does: decoding the new ids alone loses the space that joins them on.
            full = self.tokenizer.batch_decode(output, skip_special_tokens=True)
            prompts = self.tokenizer.batch_decode(encoded["input_ids"], skip_special_tokens=True)
            generated = [f[len(p) :] for f, p in zip(full, prompts, strict=True)]
        full = parameters.get("return_full_text", True)
        return [{"generated_text": (text + new if full else new)} for text, new in zip(texts, generated, strict=True)]

    def _seq2seq_generation(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        # The decoder's start token takes one of its positions.
        output = self._generate(self._encode(texts), parameters, self.max_length - 1)
        return [{"generated_text": t} for t in self.tokenizer.batch_decode(output, skip_special_tokens=True)]

    def _summarization(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        return [{"summary_text": r["generated_text"]} for r in self._seq2seq_generation(texts, parameters)]

    def _fill_mask(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        encoded = self._encode(texts)
        logits = self.model(**encoded).logits.float()
        top_k = min(parameters.get("top_k", 5), logits.shape[-1])
        ids = encoded["input_ids"]
        answers: list[Any] = []
        for row in range(ids.shape[0]):
            per_mask = []
            for position in (ids[row] == self.tokenizer.mask_token_id).nonzero().flatten().tolist():
                scores, tokens = logits[row, position].softmax(-1).topk(top_k)
                candidates = []
                for score, token in zip(scores.tolist(), tokens.tolist(), strict=True):
                    filled = ids[row].clone()
                    filled[position] = token
                    candidates.append(
                        {
                            "score": score,
                            "token": token,
                            "token_str": self.tokenizer.decode([token]),
                            "sequence": self.tokenizer.decode(filled, skip_special_tokens=True),
                        }
                    )
                per_mask.append(candidates)
            # One mask (the usual case) -> its candidates; several -> one list per mask, as HF does.
            answers.append(per_mask[0] if len(per_mask) == 1 else per_mask)
        return answers

    def _labels(self) -> dict[int, str]:
        return {int(k): str(v) for k, v in self.model.config.id2label.items()}

    def _text_classification(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        logits = self.model(**self._encode(texts)).logits.float()
        multi_label = getattr(self.model.config, "problem_type", None) == "multi_label_classification"
        probabilities = logits.sigmoid() if multi_label else logits.softmax(-1)
        labels = self._labels()
        k = min(parameters.get("top_k", 1), probabilities.shape[-1])
        answers: list[Any] = []
        for row in probabilities:
            scores, indices = row.topk(k)
            ranked = [{"label": labels[i], "score": s} for s, i in zip(scores.tolist(), indices.tolist(), strict=True)]
            answers.append(ranked if "top_k" in parameters else ranked[0])
        return answers

    def _token_classification(self, texts: list[str], parameters: dict[str, Any]) -> list[Any]:
        encoded = self._encode(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
        offsets = encoded.pop("offset_mapping").tolist()
        special = encoded.pop("special_tokens_mask").bool() | ~encoded["attention_mask"].bool()
        probabilities = self.model(**encoded).logits.float().softmax(-1)
        labels = self._labels()
        ignore = set(parameters.get("ignore_labels", ["O"]))
        answers: list[Any] = []
        for row in range(probabilities.shape[0]):
            scores, predicted = probabilities[row].max(-1)
            tokens = self.tokenizer.convert_ids_to_tokens(encoded["input_ids"][row].tolist())
            entities = []
            for index in range(len(tokens)):
                label = labels[int(predicted[index])]
                if special[row, index] or label in ignore:
                    continue
                start, end = offsets[row][index]
                entities.append(
                    {
                        "entity": label,
                        "score": float(scores[index]),
                        "index": index,
                        "word": tokens[index],
                        "start": start,
                        "end": end,
                    }
                )
            answers.append(entities)
        return answers


def _require_mask(request: Request, mask_token: str) -> None:
    for i, text in enumerate(request.texts):
        if mask_token not in text:
            where = "the text" if request.single else f'"inputs[{i}]"'
            raise BadRequest(f"fill-mask input must contain the mask token {mask_token!r}; {where} has none")


def _error_body(error: BadRequest) -> dict[str, Any]:
    return {"code": error.code, "message": HTTPStatus(error.code).phrase, "error": str(error)}


def _reply(results: list[Any], *, batched: bool) -> Any:
    """Build DJL's Output: one body, or for a batch one ``batch_NNN.data`` entry per request.

    DJL gives a batch's status code to every request in it, so a bad request in a
    batch carries its error in its own body, and its own status in the
    ``batch_NNN.code`` property (``djl-operator-kit serve`` honours it; DJL ignores it).
    """
    if not batched:
        (result,) = results
        if isinstance(result, BadRequest):
            return Output().error(str(result), code=result.code, message=HTTPStatus(result.code).phrase)
        return Output().add_property("content-type", "application/json").add_as_json(result)
    output = Output().add_property("content-type", "application/json")
    for index, result in enumerate(results):
        if isinstance(result, BadRequest):
            output.add_property(f"batch_{index:03d}.code", str(result.code))
            result = _error_body(result)
        output.add_as_json(result, key=f"batch_{index:03d}.data")
    return output


_service = Service()
# The async engine's worker thread: one, so model calls stay one at a time, as on a sync worker.
_async_worker: ThreadPoolExecutor | None = None
_async_worker_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _async_worker
    with _async_worker_lock:
        if _async_worker is None:
            _async_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="djl-model")
        return _async_worker


# Most requests one worker call takes in async mode.
MAX_ASYNC_BATCH = 32


class _AsyncBatcher:
    """The async engine hands over one request per coroutine and never batches; requests
    that arrive while the worker thread computes are run together on its next call, one
    forward pass per parameter set, as the sync engine's batching would. State is only
    touched on the engine's one event loop."""

    def __init__(self) -> None:
        self.pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self.draining = False
        self._task: asyncio.Task[None] | None = None  # kept: the loop holds tasks only weakly

    async def submit(self, inputs: Any) -> Any:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        self.pending.append((inputs, answer))
        if not self.draining:
            self.draining = True
            self._task = loop.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_ASYNC_BATCH], self.pending[MAX_ASYNC_BATCH:]
                try:
                    outputs = await loop.run_in_executor(_worker(), _service.handle_each, [i for i, _ in batch])
                except Exception as exc:  # handle_each answers model failures itself; this is a bug
                    for _, answer in batch:
                        if not answer.done():  # a caller may have given up (cancelled)
                            answer.set_exception(exc)
                    continue
                for (_, answer), output in zip(batch, outputs, strict=True):
                    if not answer.done():
                        answer.set_result(output)
        finally:
            self.draining = False


_async_batcher = _AsyncBatcher()


async def _handle_async(inputs: Any) -> Any:
    """The async engine's call: batched with whatever else is waiting, run on the worker thread."""
    return await _async_batcher.submit(inputs)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def handle(inputs: Any) -> Any | Coroutine[Any, Any, Any]:
    """DJL Serving's entry point, in both python-engine modes (see the module docstring):
    an Output or None when called synchronously, a coroutine of one on an event loop."""
    if _on_event_loop():
        return _handle_async(inputs)
    return _service.handle(inputs)


def load_count() -> int:
    """How many times this worker loaded the model (tests assert it is one)."""
    return _service.load_count


def model_runs() -> int:
    """How many times the model code ran (a batch is one); tests check batching with it."""
    return _service.runs
