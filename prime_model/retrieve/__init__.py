"""Retrieval: the index over the corpus and the online service that answers a conversation."""
