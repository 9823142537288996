"""The benchmark's baseline: the least any FastAPI claims endpoint must do.

It parses the claim JSON into the service's own request model (ClaimIn: the same validation of
NPIs, codes, money and dates) and echoes it back as JSON. The benchmark starts it exactly like
the service (same uvicorn, same number of workers, access log off), so the ratio of the
service's claims/s to this app's requests/s is the price of adjudication itself: the database
round trips, the rules, posting and the service's middleware.

An `async def` endpoint, as the FastAPI tutorial writes one: it skips the threadpool hop that
the service's sync endpoints take, which makes this baseline the faster (stricter) one.
"""

from __future__ import annotations

from fastapi import FastAPI, status

from service.api.schemas.claims import ClaimIn

app = FastAPI(title="Claims benchmark baseline")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/claims", status_code=status.HTTP_201_CREATED)
async def echo_claim(claim: ClaimIn) -> ClaimIn:
    return claim
