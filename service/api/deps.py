"""FastAPI dependencies: the request's session is one transaction, committed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Commits when the endpoint returns, rolls back when it raises. scope="function" below makes
    that happen before the response is sent, so a 2xx always means committed.

    async, so opening the session costs no trip to the threadpool (it does no I/O: the connection
    is taken on first use, in the endpoint's thread); only the commit or rollback goes there.
    (POST /v1/claims takes no session: its claims are submitted in batches, services/batching.py.)
    """
    session = request.app.state.session_factory()
    session.begin()
    try:
        yield session
    except BaseException:
        with anyio.CancelScope(shield=True):  # release the connection even if the request is cancelled
            await run_in_threadpool(_finish, session, commit=False)
        raise
    with anyio.CancelScope(shield=True):
        await run_in_threadpool(_finish, session, commit=True)


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
