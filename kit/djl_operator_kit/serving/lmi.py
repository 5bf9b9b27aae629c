"""A local stand-in for LMI's built-in LLM handler: the request/response contract of the
djl-lmi and djl-tensorrtllm containers, on a (tiny) Hugging Face causal LM.

The contract, as LMI documents it (djl-serving ``serving/docs/lmi/user_guides/
lmi_input_output_schema.md`` and ``chat_input_output_schema.md``):

* ``{"inputs": str | [str], "parameters": {...}}`` -> ``{"generated_text": str}``
  (a list of them for a list of inputs); the prompt is not repeated unless
  ``return_full_text`` is true.
* ``{"messages": [{"role", "content"}, ...], "max_tokens": N, ...}`` -> an
  OpenAI-style ``chat.completion`` object.
* ``"stream": true`` in either body streams JSON lines (``application/jsonlines``)
  as tokens are generated: ``{"token": {"id", "text", "log_prob"}, "generated_text"}``
  (the last line carries the whole text) for the first schema,
  ``chat.completion.chunk`` objects for the second. SageMaker's
  InvokeEndpointWithResponseStream forwards those bytes as they come.

Rolling batch stand-in: one scheduler thread runs the model one token step at a
time over every active sequence; requests join at the next step and leave when
done (continuous batching, as LMI's rolling batch does), up to
``option.max_rolling_batch_size``. ``option.rolling_batch=disable`` runs one
request at a time to the end, which is what a plain sync handler does. Each step
recomputes the whole (left-padded) sequences: no KV cache, fine for the tiny
models the tests build, and the same cost for both modes. Decoding is greedy
unless ``do_sample``/``temperature`` say otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

LLM_TASKS = ("text-generation", "text2text-generation")
DEFAULT_MAX_NEW_TOKENS = 30  # LMI's default for max_new_tokens
DEFAULT_MAX_ROLLING_BATCH_SIZE = 32  # LMI defaults to 256; the local stand-in runs on a CPU
MAX_INPUTS = 64
ROLES = ("system", "user", "assistant")
JSONLINES = "application/jsonlines"


class LmiRequestError(ValueError):
    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = int(status)


# -- parameters -------------------------------------------------------------------------------


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LmiRequestError(f"{name!r} must be an integer from {low} to {high}; got {value!r}")
    return value


def _float(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LmiRequestError(f"{name!r} must be a number; got {value!r}")
    if not low <= value <= high:
        raise LmiRequestError(f"{name!r} must be from {low} to {high}; got {value!r}")
    return float(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise LmiRequestError(f"{name!r} must be true or false; got {value!r}")
    return value


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None


_INPUT_PARAMETERS = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "seed", "return_full_text")
_CHAT_FIELDS = ("messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stream")


def _sampling(values: dict[str, Any], max_key: str) -> Sampling:
    do_sample = _bool("do_sample", values["do_sample"]) if "do_sample" in values else None
    temperature = _float("temperature", values["temperature"], 0.0, 100.0) if "temperature" in values else None
    if do_sample is False:
        temperature = 0.0
    elif do_sample and not temperature:
        temperature = 1.0
    return Sampling(
        max_new_tokens=_int(max_key, values[max_key], 1, 4096) if max_key in values else DEFAULT_MAX_NEW_TOKENS,
        temperature=temperature or 0.0,
        top_p=_float("top_p", values["top_p"], 0.0, 1.0) if "top_p" in values else 1.0,
        top_k=_int("top_k", values["top_k"], 0, 100000) if "top_k" in values else 0,
        seed=_int("seed", values["seed"], 0, 2**63 - 1) if "seed" in values else None,
    )


@dataclass(frozen=True)
class LmiRequest:
    prompts: tuple[str, ...]
    sampling: Sampling
    chat: bool
    stream: bool
    single: bool = True
    return_full_text: bool = False


def parse(body: bytes, content_type: str | None) -> LmiRequest:
    """One request body in either schema; LmiRequestError names what is wrong."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise LmiRequestError(
            f"unsupported content type {content_type!r}: send application/json", HTTPStatus.UNSUPPORTED_MEDIA_TYPE
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise LmiRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise LmiRequestError('expected a JSON object: {"inputs", "parameters"} or {"messages"}')
    stream = _bool("stream", document["stream"]) if "stream" in document else False
    if "messages" in document:
        unknown = sorted(set(document) - set(_CHAT_FIELDS))
        if unknown:
            raise LmiRequestError(f"unsupported field(s) for the messages API: {', '.join(unknown)}")
        messages = document["messages"]
        if not isinstance(messages, list) or not messages:
            raise LmiRequestError('"messages" must be a non-empty list of {"role", "content"} objects')
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or set(message) - {"role", "content", "name"}:
                raise LmiRequestError(f'"messages[{i}]" must be an object with "role" and "content"')
            if message.get("role") not in ROLES:
                raise LmiRequestError(f'"messages[{i}].role" must be one of {", ".join(ROLES)}')
            if not isinstance(message.get("content"), str):
                raise LmiRequestError(f'"messages[{i}].content" must be a string')
        max_key = "max_completion_tokens" if "max_completion_tokens" in document else "max_tokens"
        return LmiRequest((json.dumps(messages),), _sampling(document, max_key), chat=True, stream=stream)
    unknown = sorted(set(document) - {"inputs", "parameters", "stream"})
    if unknown or "inputs" not in document:
        what = f"unknown field(s) {', '.join(unknown)}" if unknown else '"inputs" is required'
        raise LmiRequestError(f'wrong JSON shape: {what}; expected {{"inputs", "parameters"}} or {{"messages"}}')
    inputs = document["inputs"]
    single = isinstance(inputs, str)
    prompts = [inputs] if single else inputs
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise LmiRequestError('"inputs" must be a non-empty string or a non-empty list of them')
    if len(prompts) > MAX_INPUTS:
        raise LmiRequestError(f'"inputs" has {len(prompts)} prompts; at most {MAX_INPUTS}')
    if stream and not single:
        raise LmiRequestError('streaming takes one prompt: "inputs" must be a string when "stream" is true')
    parameters = document.get("parameters", {})
    if not isinstance(parameters, dict):
        raise LmiRequestError('"parameters" must be a JSON object')
    unknown = sorted(set(parameters) - set(_INPUT_PARAMETERS))
    if unknown:
        raise LmiRequestError(
            f"unsupported parameter(s): {', '.join(unknown)}; supported: {', '.join(sorted(_INPUT_PARAMETERS))}"
        )
    full = _bool("return_full_text", parameters["return_full_text"]) if "return_full_text" in parameters else False
    return LmiRequest(
        tuple(prompts),
        _sampling(parameters, "max_new_tokens"),
        chat=False,
        stream=stream,
        single=single,
        return_full_text=full,
    )


# -- generation ---------------------------------------------------------------------------------


@dataclass
class Token:
    id: int
    text: str
    log_prob: float


@dataclass
class _Sequence:
    prompt_ids: list[int]
    sampling: Sampling
    limit: int
    tokens: queue.Queue[Token | None] = field(default_factory=queue.Queue)
    generated: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "length"
    generator: Any = None


class Engine:
    """The model and the step loop (one thread), batching every active sequence per step."""

    def __init__(self, model_id: str, task: str, max_batch: int, max_model_len: int | None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        if task not in LLM_TASKS:
            raise ValueError(f"LMI's handler serves {', '.join(LLM_TASKS)}, not {task!r}")
        self.torch = torch
        # One intra-op thread: the step loop is the only model user, and idle OpenMP workers
        # spinning between steps would take the CPU the HTTP threads stream with.
        torch.set_num_threads(1)
        self.task = task
        self.tokenizer = AutoTokenizer.from_pretrained(model_id, local_files_only=True)
        auto = AutoModelForCausalLM if task == "text-generation" else AutoModelForSeq2SeqLM
        self.model = auto.from_pretrained(model_id, local_files_only=True).eval()
        config = self.model.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 2048
        self.max_len = int(min(positions, max_model_len or positions))
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.eos_id = self.tokenizer.eos_token_id
        self.max_batch = max_batch
        self._incoming: queue.Queue[_Sequence] = queue.Queue()
        self._stop = threading.Event()
        self.steps = 0
        self._thread = threading.Thread(target=self._loop, name="lmi-rolling-batch", daemon=True)
        self._thread.start()

    # -- prompts ---------------------------------------------------------------------------------
    def prompt_for(self, request: LmiRequest, prompt: str) -> str:
        if not request.chat:
            return prompt
        messages = json.loads(prompt)
        if getattr(self.tokenizer, "chat_template", None):
            return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        # No chat template (the tiny test models): role-tagged lines, the assistant's turn last.
        return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"

    def submit(self, prompt: str, sampling: Sampling) -> _Sequence:
        ids = list(self.tokenizer(prompt)["input_ids"])
        if self.task == "text-generation":
            room = self.max_len - len(ids)
            if room < 1:
                raise LmiRequestError(
                    f"the prompt has {len(ids)} tokens; the model takes {self.max_len} in all", HTTPStatus.BAD_REQUEST
                )
        else:
            ids = ids[: self.max_len]
            room = self.max_len - 1
        sequence = _Sequence(ids, sampling, min(sampling.max_new_tokens, room))
        if sampling.seed is not None:
            sequence.generator = self.torch.Generator().manual_seed(sampling.seed)
        self._incoming.put(sequence)
        return sequence

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    # -- the step loop ---------------------------------------------------------------------------
    def _loop(self) -> None:
        active: list[_Sequence] = []
        while not self._stop.is_set():
            if not active:
                try:
                    active.append(self._incoming.get(timeout=0.2))
                except queue.Empty:
                    continue
            while len(active) < self.max_batch:  # join at the next step
                try:
                    active.append(self._incoming.get_nowait())
                except queue.Empty:
                    break
            try:
                finished = self._step(active)
            except Exception as exc:  # the scheduler outlives a failing step; its sequences end
                log.exception("generation step failed")
                for sequence in active:
                    sequence.finish_reason = f"error: {type(exc).__name__}: {exc}"
                    sequence.tokens.put(None)
                active = []
                continue
            active = [s for s in active if s not in finished]

    def _step(self, active: list[_Sequence]) -> list[_Sequence]:
        torch = self.torch
        self.steps += 1
        with torch.inference_mode():
            logits = self._next_logits(active)
        finished = []
        for row, sequence in enumerate(active):
            scores = logits[row].float()
            log_probs = torch.log_softmax(scores, dim=-1)
            token = self._choose(scores, sequence)
            before = sequence.text
            sequence.generated.append(token)
            sequence.text = str(self.tokenizer.decode(sequence.generated, skip_special_tokens=True))
            done_eos = token == self.eos_id
            text = "" if done_eos else sequence.text[len(before) :]
            sequence.tokens.put(Token(token, text, float(log_probs[token])))
            if done_eos or len(sequence.generated) >= sequence.limit:
                sequence.finish_reason = "stop" if done_eos else "length"
                sequence.tokens.put(None)
                finished.append(sequence)
        return finished

    def _next_logits(self, active: list[_Sequence]) -> Any:
        torch = self.torch
        if self.task == "text-generation":
            rows = [s.prompt_ids + s.generated for s in active]
            width = max(map(len, rows))
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):  # left padding: every row's next token is at the right edge
                ids[i, width - len(row) :] = torch.tensor(row)
                mask[i, width - len(row) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            return self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1, :]
        start = self.model.config.decoder_start_token_id
        out = []
        for s in active:  # encoder-decoder: one sequence at a time (still interleaved per step)
            encoder = torch.tensor([s.prompt_ids])
            decoder = torch.tensor([[start, *s.generated]])
            out.append(self.model(input_ids=encoder, decoder_input_ids=decoder).logits[0, -1, :])
        return torch.stack(out)

    def _choose(self, scores: Any, sequence: _Sequence) -> int:
        torch = self.torch
        sampling = sequence.sampling
        if sampling.temperature <= 0:
            return int(scores.argmax())
        scores = scores / sampling.temperature
        if sampling.top_k:
            threshold = torch.topk(scores, min(sampling.top_k, scores.shape[-1])).values[-1]
            scores = scores.masked_fill(scores < threshold, -math.inf)
        probs = torch.softmax(scores, dim=-1)
        if sampling.top_p < 1.0:
            ordered, order = probs.sort(descending=True)
            keep = ordered.cumsum(-1) - ordered < sampling.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
            probs = probs / probs.sum()
        return int(torch.multinomial(probs, 1, generator=sequence.generator))


def tokens_of(sequence: _Sequence) -> Iterator[Token]:
    while True:
        token = sequence.tokens.get()
        if token is None:
            if sequence.finish_reason.startswith("error"):
                raise RuntimeError(sequence.finish_reason)
            return
        yield token


# -- answers ------------------------------------------------------------------------------------


def _line(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode() + b"\n"


class LmiService:
    """Parses a request, runs it on the engine, and answers whole or as JSON lines."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self.engine = engine
        self.model_name = model_name

    def answer(self, request: LmiRequest) -> tuple[bytes, str]:
        """The whole answer (no streaming)."""
        sequences = [self.engine.submit(self.engine.prompt_for(request, p), request.sampling) for p in request.prompts]
        for sequence in sequences:
            for _ in tokens_of(sequence):
                pass
        if request.chat:
            (sequence,) = sequences
            return _line(self._completion(sequence)).rstrip(b"\n"), "application/json"
        results = [
            {"generated_text": (prompt + s.text) if request.return_full_text else s.text}
            for prompt, s in zip(request.prompts, sequences, strict=True)
        ]
        return json.dumps(results[0] if request.single else results, ensure_ascii=False).encode(), "application/json"

    def stream(self, request: LmiRequest) -> Iterator[bytes]:
        """JSON lines, one per token, as the engine makes them."""
        prompt = request.prompts[0]
        sequence = self.engine.submit(self.engine.prompt_for(request, prompt), request.sampling)
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        first = True
        pending: Token | None = None
        for token in tokens_of(sequence):
            if pending is not None:
                yield self._chunk(request, ident, created, pending, first, None, sequence)
                first = False
            pending = token
        if pending is not None:
            yield self._chunk(request, ident, created, pending, first, sequence.finish_reason, sequence)

    def _chunk(
        self,
        request: LmiRequest,
        ident: str,
        created: int,
        token: Token,
        first: bool,
        finish: str | None,
        sequence: _Sequence,
    ) -> bytes:
        if request.chat:
            delta: dict[str, Any] = {"content": token.text}
            if first:
                delta = {"role": "assistant", **delta}
            return _line(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model_name,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                }
            )
        line: dict[str, Any] = {"token": {"id": token.id, "text": token.text, "log_prob": token.log_prob}}
        line["generated_text"] = sequence.text if finish is not None else None
        return _line(line)

    def _completion(self, sequence: _Sequence) -> dict[str, Any]:
        prompt_tokens, completion_tokens = len(sequence.prompt_ids), len(sequence.generated)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": sequence.text},
                    "logprobs": None,
                    "finish_reason": sequence.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
