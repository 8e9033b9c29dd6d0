"""A predictor with role_embedding and concat_input through every inference path: eager, the
static-shape (compiled) path, ONNX fp32 and int8, and batch prediction from a turn table."""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.bench.benchmark import run_benchmark
from prime_model.encode.encoding import encode_turns
from prime_model.errors import ExportError, PredictorError
from prime_model.export.export import export_verified, random_batches
from prime_model.export.int8 import quantize_verified
from prime_model.export.quantize import predict_all
from prime_model.runtime.batch_prediction import predict_turns
from prime_model.runtime.calibration import random_batch
from prime_model.runtime.inference import EagerPredictor, FloatArray, parity, to_numpy
from prime_model.runtime.onnx_file import VerifiedOnnx
from prime_model.runtime.onnx_runtime import OnnxPredictor
from prime_model.runtime.optimized import OptimizedPredictor
from tests.conftest import CountingEncoder, make_encoded
from tests.prime_model.runtime.inference_support import CONFIG, random_inputs

FLAGS = PredictorConfig(
    **{**CONFIG.model_dump(), "residual": True, "role_embedding": True, "concat_input": True}
)


def flagged_model(config: PredictorConfig = FLAGS) -> EmbeddingPredictor:
    """Residual models start as query-only; move the new weights off their zero init so that
    roles and concat change the prediction (else a parity check could not see them dropped)."""
    torch.manual_seed(0)
    model = EmbeddingPredictor(config).eval()
    with torch.no_grad():
        model.output_proj.weight.normal_(0.0, 0.2)
        if config.concat_input:
            model.concat_gate.fill_(0.5)
        if config.role_embedding:
            model.role_embedding.weight[1:].normal_(0.0, 0.5)
    return model


def tiny() -> EmbeddingPredictor:
    torch.manual_seed(0)
    return EmbeddingPredictor(CONFIG).eval()


@cache
def exported() -> VerifiedOnnx:
    encoded = make_encoded(m=20, n=FLAGS.max_context_length, d=FLAGS.input_dim)
    gen = torch.Generator().manual_seed(1)
    roles = torch.randint(1, 3, encoded.context_mask.shape, generator=gen) * encoded.context_mask
    concat = torch.nn.functional.normalize(torch.randn(20, FLAGS.input_dim, generator=gen), dim=-1)
    encoded = type(encoded)(**{**vars(encoded), "context_roles": roles, "concat": concat})
    return export_verified(flagged_model(), reference_inputs=encoded)


def inputs(batch: int, turns: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    context, query, mask = random_inputs(batch, turns, seed=seed)
    rng = np.random.default_rng(seed + 100)
    roles = rng.integers(0, 3, (batch, turns))
    concat = rng.standard_normal((batch, FLAGS.input_dim)).astype(np.float32)
    return context, query, mask, roles, concat


def eager(model: EmbeddingPredictor, *arrays: np.ndarray) -> FloatArray:
    with torch.inference_mode():
        return to_numpy(model(*(torch.from_numpy(a) for a in arrays)))


def test_onnx_graph_takes_roles_and_concat_and_matches_eager() -> None:
    graph = onnx.load_model_from_string(exported().data).graph
    assert [i.name for i in graph.input] == [
        "context",
        "query",
        "context_mask",
        "context_roles",
        "concat",
    ]
    assert [o.name for o in graph.output] == ["embedding"]
    model, predictor = flagged_model(), OnnxPredictor(exported())
    for batch, turns in ((1, 4), (5, 2), (3, 0)):
        arrays = inputs(batch, turns, seed=batch)
        want = eager(model, *arrays) if turns else None
        got = predictor.predict(*arrays)
        if want is not None:
            np.testing.assert_allclose(got, want, atol=1e-5)
    context, query, mask, roles, concat = inputs(2, 3)
    as_unknown = predictor.predict(context, query, mask, np.zeros_like(roles), concat)
    np.testing.assert_allclose(predictor.predict(context, query, mask, None, concat), as_unknown)
    assert not np.allclose(predictor.predict(context, query, mask, roles, concat), as_unknown)


def test_only_the_flags_add_graph_inputs() -> None:
    roles_only = PredictorConfig(**{**CONFIG.model_dump(), "role_embedding": True})
    verified = export_verified(flagged_model(roles_only))
    graph = onnx.load_model_from_string(verified.data).graph
    assert [i.name for i in graph.input] == ["context", "query", "context_mask", "context_roles"]
    context, query, mask, roles, _ = inputs(3, 4)
    got = OnnxPredictor(verified).predict(context, query, mask, roles)
    want = eager(flagged_model(roles_only), context, query, mask, roles)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert all(b.context_roles is None and b.concat is None for b in random_batches(tiny()))


def test_static_shape_backend_pads_roles_and_concat_like_eager() -> None:
    model = flagged_model()
    predictor = OptimizedPredictor(model, compile=False, buckets=(4, 8))
    predictor.warmup()
    arrays = inputs(3, 2, seed=7)  # padded to bucket 4 and to 4 turns
    np.testing.assert_allclose(predictor.predict(*arrays), eager(model, *arrays), atol=1e-5)


def test_int8_runs_the_flagged_graph_close_to_fp32() -> None:
    fp32, int8 = OnnxPredictor(exported()), OnnxPredictor(quantize_verified(exported()))
    batch = random_batch(FLAGS, 8, FLAGS.max_context_length, seed=0)
    assert batch.context_roles is not None and batch.concat is not None
    assert parity(int8.predict_batch(batch), fp32.predict_batch(batch)).min_cosine > 0.99
    encoded = make_encoded(m=10, n=FLAGS.max_context_length, d=FLAGS.input_dim)
    with pytest.raises(PredictorError, match="reads concat"):
        predict_all(fp32, encoded)  # encoded without concat: named, not an ORT error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"concat": None}, "this model reads concat"),
        ({"roles": np.full((2, 3), 3)}, r"context_roles holds ids outside \[0, 3\)"),
        ({"roles": np.zeros((2, 3), np.float32)}, "context_roles must be integer role ids"),
        ({"roles": np.zeros((2, 2), np.int64)}, r"context_roles must have shape \(B, N\)"),
        ({"concat": np.zeros((2, 5), np.float32)}, r"concat must have shape \(B, D\)"),
        ({"concat": np.full((2, 16), np.nan, np.float32)}, "concat"),
    ],
)
def test_bad_roles_or_concat_are_typed_errors_on_every_backend(
    change: dict[str, np.ndarray | None], message: str
) -> None:
    context, query, mask, good_roles, good_concat = inputs(2, 3)
    roles, concat = change.get("roles", good_roles), change.get("concat", good_concat)
    for predictor in (EagerPredictor(flagged_model()), OnnxPredictor(exported())):
        with pytest.raises(PredictorError, match=message):
            predictor.predict(context, query, mask, roles, concat)


def test_a_model_without_concat_input_refuses_concat() -> None:
    context, query, mask, _, concat = inputs(2, 3)
    with pytest.raises(PredictorError, match="has no concat_input"):
        EagerPredictor(tiny()).predict(context, query, mask, None, concat)


def _turns() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "conversation_id": ["a", "a", "a", "b", "b"],
            "turn": [0, 1, 2, 0, 1],
            "history": [[], ["hi"], ["hi", "hello there"], [], ["what?"]],
            "query": ["hi", "who?", "and then?", "what?", "why?"],
            "history_roles": [[], ["user"], ["user", "system"], None, ["user"]],
        }
    )


def test_batch_prediction_reads_roles_and_concat_as_training_encoded_them() -> None:
    model, encoder = flagged_model(), CountingEncoder(dim=FLAGS.input_dim)
    turns = _turns()
    out = predict_turns(turns, EagerPredictor(model), encoder, batch_size=2)
    encoded = encode_turns(
        turns.assign(target="t", target_id=None), encoder, FLAGS.max_context_length, concat=True
    )
    assert encoded.context_roles is not None
    with torch.inference_mode():
        want = model(**encoded.rows(torch.arange(len(turns)))).numpy()
    np.testing.assert_allclose(np.stack(out["embedding"].tolist()), want, atol=1e-5)
    unknown = predict_turns(turns.drop(columns="history_roles"), EagerPredictor(model), encoder)
    assert not np.allclose(np.stack(unknown["embedding"].tolist()), want, atol=1e-4)


def test_batch_prediction_of_a_plain_model_ignores_the_roles_column() -> None:
    encoder = CountingEncoder(dim=CONFIG.input_dim)
    with_roles = predict_turns(_turns(), EagerPredictor(tiny()), encoder)
    without = predict_turns(_turns().drop(columns="history_roles"), EagerPredictor(tiny()), encoder)
    np.testing.assert_array_equal(
        np.stack(with_roles["embedding"].tolist()), np.stack(without["embedding"].tolist())
    )


def test_reference_inputs_without_concat_fail_the_export_by_name() -> None:
    encoded = make_encoded(m=4, n=FLAGS.max_context_length, d=FLAGS.input_dim)
    with pytest.raises(ExportError, match="reference inputs hold none"):
        export_verified(flagged_model(), reference_inputs=encoded)


def test_the_latency_benchmark_times_a_flagged_model_on_every_onnx_backend() -> None:
    report = run_benchmark(
        flagged_model(), ("eager", "onnx", "onnx-int8"), (2,), repeats=2, budget_s=2.0
    )
    assert {r.backend for r in report.rows} == {"eager", "onnx", "onnx-int8"}
    assert report.recall is not None and report.recall.holds("onnx")
