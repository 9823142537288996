"""Provider directory (api.md "Directory"): is a provider in a network on a date? Any valid key."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Path, Query

from ...repositories import reference as repo
from ..auth import Access, scoped_router
from ..deps import SessionDep
from ..problems import NotFound
from ..schemas.common import Identifier, IsoDate, Npi
from ..schemas.reference import ContractOut, DirectoryEntryOut

router = scoped_router(Access.ANY_KEY, prefix="/v1", tags=["directory"])


@router.get(
    "/networks/{code}/providers/{npi}",
    responses={404: {"description": "Unknown network", "content": {"application/problem+json": {}}}},
    summary="A provider's network status on a date",
    description="An unknown provider is simply not in network. `date` defaults to the server's today.",
)
def provider_network_status(
    code: Identifier,
    npi: Annotated[Npi, Path()],
    session: SessionDep,
    on: Annotated[IsoDate | None, Query(alias="date")] = None,
) -> DirectoryEntryOut:
    network = repo.network_by_code(session, code)
    if network is None:
        raise NotFound(f"no network {code!r}")
    day = on or date.today()
    provider = repo.provider_by_npi(session, npi)
    contract = repo.contract_in_effect(session, network.id, provider.id, day) if provider else None
    return DirectoryEntryOut(
        network_code=network.code,
        npi=npi,
        as_of=day,
        in_network=contract is not None,
        contract=ContractOut.of(contract) if contract else None,
    )
