"""The FastAPI application: routers, middleware, error envelope and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from smarthealth import __version__
from smarthealth.audit.routes import router as audit_router
from smarthealth.auth.routes import router as auth_router
from smarthealth.auth.secret import resolve_secret_key
from smarthealth.chat.pipeline import QuestionPipeline
from smarthealth.chat.routes import router as chat_router
from smarthealth.chat.websocket import router as websocket_router
from smarthealth.clinical.patient_routes import router as patients_router
from smarthealth.clinical.routes import router as catalog_router
from smarthealth.config import Settings, get_settings, to_libpq_url
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.db.server import DatabaseServer, open_database_server
from smarthealth.db.session import Database
from smarthealth.errors import install_error_handlers
from smarthealth.feedback.routes import router as feedback_router
from smarthealth.fhir.routes import router as fhir_router
from smarthealth.log_config import configure_logging, is_configured, wants_json
from smarthealth.metrics.http import MetricsMiddleware
from smarthealth.metrics.instruments import count_indexer_pass
from smarthealth.metrics.pool import watch_pool
from smarthealth.metrics.routes import router as metrics_router
from smarthealth.middleware import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    UnhandledErrorMiddleware,
)
from smarthealth.rag.embeddings import create_embedder
from smarthealth.rag.engines.factory import create_answer_engine
from smarthealth.rag.indexer import BackgroundIndexer
from smarthealth.rag.planner import warm_up_planner
from smarthealth.system.routes import router as system_router
from smarthealth.users.routes import router as users_router
from smarthealth.web.routes import router as web_router

log = structlog.get_logger(__name__)

# The top of /docs and /redoc: who may call, the error envelope, and the WebSocket (which
# OpenAPI cannot describe) with Spanish examples.
API_DESCRIPTION = (Path(__file__).parent / "system" / "api_description.md").read_text("utf-8")


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    """Build the app. `database_url` overrides the settings (tests point it at their database)."""
    settings = settings or get_settings()
    secret_key = resolve_secret_key(settings)  # refuses to build the app without a usable one
    if not is_configured():  # a worker process (gunicorn, `serve --workers`): set up its logs
        configure_logging(settings.log_level, json=wants_json(settings.log_format))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server: DatabaseServer | None = None
        url = database_url
        if url is None:
            server = await asyncio.to_thread(open_database_server, settings)
            url = server.url
        engine = create_engine(url, pool_size=settings.db_pool_size)
        watch_pool(engine)
        database = Database(engine=engine, sessions=create_sessionmaker(engine), url=url)
        embedder = create_embedder(settings)
        app.state.database = database
        app.state.pipeline = QuestionPipeline(database, embedder, create_answer_engine(settings))
        indexer = BackgroundIndexer(to_libpq_url(url), embedder, on_pass=count_indexer_pass)
        app.state.indexer = indexer
        indexer_task = asyncio.create_task(indexer.run(), name="chunk-indexer")
        # Load the query model and the planner's vocabularies now, not on the first question.
        warm_up = asyncio.create_task(embedder.embed_query("consulta"), name="embedder-warm-up")
        planner_warm_up = asyncio.create_task(asyncio.to_thread(warm_up_planner))
        log.info("startup", embedded=server is not None and server.embedded is not None)
        try:
            yield
        finally:
            for task in (indexer_task, warm_up, planner_warm_up):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await engine.dispose()
            if server is not None:
                await asyncio.to_thread(server.stop)
            log.info("shutdown")

    app = FastAPI(
        title="SmartHealth",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.secret_key = secret_key
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        )
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(system_router)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(catalog_router)
    app.include_router(patients_router)
    app.include_router(chat_router)
    app.include_router(websocket_router)
    app.include_router(audit_router)
    app.include_router(fhir_router)
    app.include_router(feedback_router)
    app.include_router(metrics_router)
    app.include_router(web_router)
    return app
