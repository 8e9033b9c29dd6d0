"""HTTP serving: request parsing, the retriever a request is answered by, the FastAPI app and
the ASGI middleware the ZenML deployment wraps around it."""
