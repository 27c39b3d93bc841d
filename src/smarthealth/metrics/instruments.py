"""The service's metrics. Labels are bounded sets (route templates, engines, outcomes, ratings),
never a raw path, an id or anything about a patient."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = ("answered", "abstained", "fallback", "refused", "cancelled", "error")
RATINGS = ("up", "down")
REASONS = ("none", "incorrect", "incomplete", "wrong_source", "other")

HTTP_REQUESTS = Counter(
    "smarthealth_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
QUESTION_SECONDS = Histogram(
    "smarthealth_question_duration_seconds",
    "Time from a question's arrival to its complete answer, by answer engine.",
    ["engine"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ANSWERS = Counter(
    "smarthealth_answers",
    "Questions by how they ended: answered (cites the record), abstained (the record is "
    "silent), fallback (the LLM failed; the extractive answer was given), refused (before "
    "anything was read: forbidden, unknown patient, invalid, rate limited), cancelled, error.",
    ["outcome"],
)
FEEDBACK = Counter(
    "smarthealth_feedback",
    "Ratings submitted (a changed rating counts again), by rating and reason.",
    ["rating", "reason"],
)
INDEXED_PATIENTS = Counter(
    "smarthealth_indexer_patients",
    "Patients whose chunks the indexer rebuilt.",
)
EMBEDDED_TEXTS = Counter(
    "smarthealth_embedding_texts",
    "Distinct texts the indexer embedded.",
)
EMBEDDING_SECONDS = Counter(
    "smarthealth_embedding_seconds",
    "Seconds the indexer spent inside the embedding model.",
)
DB_CONNECTIONS_IN_USE = Gauge(
    "smarthealth_db_pool_connections_in_use",
    "Database connections checked out of the pools, summed over live workers.",
    multiprocess_mode="livesum",
)

# Every outcome, rating and reason is exported from the start (as 0): rates and ratios need
# the series to exist before the first event.
for _outcome in OUTCOMES:
    ANSWERS.labels(_outcome)
for _rating in RATINGS:
    for _reason in REASONS if _rating == "down" else ("none",):
        FEEDBACK.labels(_rating, _reason)


def count_answer(outcome: str) -> None:
    ANSWERS.labels(outcome).inc()


def observe_question(engine: str, seconds: float) -> None:
    QUESTION_SECONDS.labels(engine).observe(seconds)


def count_feedback(rating: str, reason: str | None) -> None:
    FEEDBACK.labels(rating, reason or "none").inc()


def count_request(method: str, route: str, status: int) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()


def count_indexer_pass(patients: int, texts: int, seconds: float) -> None:
    if patients:
        INDEXED_PATIENTS.inc(patients)
    if texts:
        EMBEDDED_TEXTS.inc(texts)
        EMBEDDING_SECONDS.inc(seconds)


def connection_checked_out() -> None:
    DB_CONNECTIONS_IN_USE.inc()


def connection_checked_in() -> None:
    DB_CONNECTIONS_IN_USE.dec()
