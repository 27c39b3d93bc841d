"""Retrieval-augmented answering: chunks, embeddings, indexer, retrieval, answer engines.

Knows nothing of HTTP: the chat layer calls `pipeline.answer_question` and forwards its events.
"""
