"""FAISS, imported with its loader's INFO notes ("No module named swigfaiss_avx512") silenced."""

import logging

logging.getLogger("faiss.loader").setLevel(logging.WARNING)

import faiss  # noqa: E402

__all__ = ["faiss"]
