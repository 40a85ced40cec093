"""HTTP service: FastAPI app, settings, metrics and the retrieval engine it wraps."""
