"""FastAPI dependencies: the request's session is one transaction, committed once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session


def get_session(request: Request) -> Iterator[Session]:
    factory = request.app.state.session_factory
    with factory() as session, session.begin():
        # Commits when the endpoint returns, rolls back when it raises. scope="function" below
        # makes that happen before the response is sent, so a 2xx always means committed.
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
