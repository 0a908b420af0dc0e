"""The app's district tokens: Clever's token list, asked for and read one way by both Clever clients."""

from __future__ import annotations

import re
from typing import Any

from clever_attendance.errors import CleverAuthError, CleverContractError, CleverUnavailableError
from clever_attendance.retry_policy import CleverAnswer

STEP = "looking up the district token"
TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # what an Authorization header may carry


def token_list_request(oauth_url: str, client_id: str, secret: str, district: str | None = None) -> dict[str, Any]:
    """The GET of the app's district tokens (only `district`'s when given), by client id and secret (HTTP Basic),
    as keyword arguments that both `requests` and `httpx` take."""
    params = {"owner_type": "district", **({"district": district} if district else {})}
    return {"url": f"{oauth_url}/oauth/tokens", "params": params, "auth": (client_id, secret)}


def district_tokens(answer: CleverAnswer | Exception, district: str) -> dict[str, object]:
    """The token list's answer (or the network error that stopped it) as {district id: token}.

    Not retried: a refusal is a CleverAuthError, an outage a CleverUnavailableError (Airflow retries the task),
    a list outside Clever's contract a CleverContractError; each names `district`, whose lookup it was.
    """
    if isinstance(answer, Exception):
        raise CleverUnavailableError(district, STEP, type(answer).__name__)
    if answer.status in (401, 403):
        raise CleverAuthError(district, STEP, f"HTTP {answer.status}: app credentials refused")
    if answer.status != 200:
        raise CleverUnavailableError(district, STEP, f"HTTP {answer.status}")
    tokens: dict[str, object] = {}
    try:
        for item in answer.body["data"]:
            tokens.setdefault(item["owner"]["id"], item["access_token"])
    except (KeyError, TypeError):
        raise CleverContractError(district, STEP, "the answer is not a list of tokens") from None
    return tokens


def token_of(tokens: dict[str, object], district: str) -> str:
    """The district's bearer token in the app's list."""
    if district not in tokens:
        raise CleverAuthError(district, STEP, "Clever has no token: is the app shared with the district?")
    token = tokens[district]
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise CleverContractError(district, STEP, "the district token is not a bearer token")
    return token
