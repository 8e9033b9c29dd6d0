"""Role embeddings and the [CAT] token: off by default; an untrained model is still the query."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias

from prime_model import ConfigError, EmbeddingPredictor, PredictorConfig
from prime_model.errors import PredictorError
from prime_model.model import GATE_SCALE
from tests.prime_model.test_residual import _config as residual_config


def _config(**overrides: object) -> PredictorConfig:
    return residual_config(**{"role_embedding": True, "concat_input": True, **overrides})


def _inputs(b: int = 4, n: int = 5) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    mask = torch.rand(b, n, generator=gen) > 0.3
    return {
        "context": F.normalize(torch.randn(b, n, 16, generator=gen), dim=-1),
        "query": F.normalize(torch.randn(b, 16, generator=gen), dim=-1),
        "context_mask": mask,
        "context_roles": torch.randint(1, 3, (b, n), generator=gen) * mask,
        "concat": F.normalize(torch.randn(b, 16, generator=gen), dim=-1),
    }


def test_untrained_model_with_roles_and_concat_predicts_the_query() -> None:
    torch.manual_seed(0)
    inputs = _inputs()
    out = EmbeddingPredictor(_config()).eval()(**inputs)
    assert torch.equal(out, F.normalize(inputs["query"], dim=-1))


def test_the_gate_mixes_concat_into_the_residual() -> None:
    torch.manual_seed(0)
    model = EmbeddingPredictor(_config()).eval()
    with torch.no_grad():
        model.concat_gate.fill_(0.5 / GATE_SCALE)
    inputs = _inputs()
    mix = F.normalize(inputs["query"] + 0.5 * inputs["concat"], dim=-1)
    assert torch.allclose(model(**inputs), mix, atol=1e-6)


def test_roles_change_the_prediction_once_trained_and_unknown_adds_nothing() -> None:
    torch.manual_seed(0)
    model = EmbeddingPredictor(_config()).eval()
    torch.nn.init.normal_(model.output_proj.weight, std=0.1)
    inputs = _inputs()
    with_roles = model(**inputs)
    unknown = model(**{**inputs, "context_roles": torch.zeros_like(inputs["context_roles"])})
    no_roles = model(**{**inputs, "context_roles": None})
    assert not torch.allclose(with_roles, unknown)
    assert torch.equal(unknown, no_roles)


def test_a_model_without_the_flags_has_no_new_parameters() -> None:
    plain = EmbeddingPredictor(_config(role_embedding=False, concat_input=False))
    names = {name for name, _ in plain.named_parameters()}
    assert not names & {"role_embedding.weight", "concat_proj.weight", "concat_gate"}
    assert plain.pos_embedding.shape[1] == 6 + 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"concat": None}, "reads concat"),
        ({"concat": torch.zeros(4, 15)}, "shaped like query"),
        ({"concat": torch.full((4, 16), float("nan"))}, "concat contains NaN"),
        ({"context_roles": torch.full((4, 5), 3)}, "ids outside"),
        ({"context_roles": torch.ones(4, 5)}, "int64"),
        ({"context_roles": torch.ones(4, 4, dtype=torch.long)}, "shape (B, N)"),
    ],
)
def test_bad_roles_or_concat_are_refused(change: dict[str, object], message: str) -> None:
    model = EmbeddingPredictor(_config()).eval()
    with pytest.raises(PredictorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model(**{**_inputs(), **change})


def test_concat_given_to_a_model_that_reads_none_is_refused() -> None:
    model = EmbeddingPredictor(_config(concat_input=False)).eval()
    with pytest.raises(PredictorError, match="no concat_input"):
        model(**_inputs())


def test_concat_input_needs_the_residual() -> None:
    with pytest.raises(ConfigError, match="needs residual=True"):
        _config(residual=False)
