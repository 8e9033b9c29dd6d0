"""Build time: a trained model -> verified ONNX files (fp32 and, where it holds, int8).

Imports :mod:`prime_model.runtime` (to run what it builds and check it); runtime never imports
this package, so serving never exports or quantises on the fly.
"""
