"""What a token cap saves one request: texts encoded one per call, whole vs cut.

Part of benchmarks/encoder_quality.py (``--savings 32,64,128``): a cap is only worth keeping if
retrieval holds (that module) and the time it saves is real (this one). Timed with the serving
engine (ONNX fp32, one intra-op thread) where it loads, else torch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from prime_model.encode.encoders import YEncoder
from prime_model.encode.token_caps import keep_heads, keep_tails
from prime_model.errors import PrimeError

logger = logging.getLogger("benchmarks.encoder_savings")
ENCODER_TOKENS = 254  # MiniLM's 256 minus [CLS]/[SEP]: what the encoder reads of a long text


def encode_savings(
    frame: pd.DataFrame, encoder: YEncoder, tokenizer: Any, caps: Sequence[int], sample: int = 200
) -> dict[str, Any]:
    """What each cap saves a request, on ``frame`` (doc2dial): the newest history entry (the
    system response a new turn brings) and the history + query text, encoded one text per call
    as a server does, whole (the encoder's 256 tokens) vs cut, interleaved text by text."""
    turns = frame[frame["history"].map(len) > 0].sample(n=sample, random_state=0, replace=False)
    newest = [h[-1] for h in turns["history"]]
    joined = keep_tails(
        [" ".join([*h, q]) for h, q in zip(turns["history"], turns["query"], strict=True)],
        tokenizer,
        256,
    )
    out: dict[str, Any] = {"turns": len(turns), "encoder": getattr(encoder, "identity", "?")}
    cuts: dict[str, tuple[list[str], Callable[[list[str], int], list[str]]]] = {
        "newest history entry": (newest, lambda t, n: keep_heads(t, tokenizer, n)),
        "history + query": (joined, lambda t, n: keep_tails(t, tokenizer, n)),
    }
    for label, (texts, cut) in cuts.items():
        lists = {"whole": list(texts), **{f"cap {n}": cut(list(texts), n) for n in caps}}
        timed = _timed(lists, encoder, tokenizer)
        for name in lists:
            if name != "whole":
                timed[name]["ms_saved"] = timed["whole"]["ms"] - timed[name]["ms"]
        out[label] = timed
    return out


def _timed(
    lists: dict[str, list[str]], encoder: YEncoder, tokenizer: Any
) -> dict[str, dict[str, float]]:
    """Mean tokens (as the encoder reads them: at most 254) and mean ms per one-text call, for
    each list; text i of every list is timed back to back (best of 2), so a machine whose load
    drifts during the run charges every list alike."""
    encoder.encode(next(iter(lists.values()))[:2])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in lists}
    for i in range(len(next(iter(lists.values())))):
        for name, texts in lists.items():
            runs = []
            for _ in range(2):
                clock = time.perf_counter()
                encoder.encode([texts[i]])
                runs.append(time.perf_counter() - clock)
            times[name].append(min(runs))
    out: dict[str, dict[str, float]] = {}
    for name, texts in lists.items():
        counts = [
            len(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in texts
        ]
        out[name] = {
            "tokens": sum(min(c, ENCODER_TOKENS) for c in counts) / len(counts),
            "ms": 1000 * sum(times[name]) / len(times[name]),
        }
    return out


def timing_encoder(reference: YEncoder) -> YEncoder:
    """The serving engine (ONNX fp32, one intra-op thread), else torch: no cache in front."""
    try:
        from prime_model.encode.encoders import EncoderConfig  # noqa: PLC0415
        from prime_model.encode.engine import load_encoder  # noqa: PLC0415

        return load_encoder(EncoderConfig(engine="onnx"), threads=1)
    except (ImportError, PrimeError) as exc:
        logger.warning("timing with torch: %s", exc)
        return reference
