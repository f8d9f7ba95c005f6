"""The local identity provider (`local` and `test` profiles only): mint tokens, publish the JWKS."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.core.devissuer import get_dev_issuer
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.schemas import DevTokenIn

settings = start()
if not settings.is_local or settings.auth_provider != "local":
    raise SystemExit("the local identity provider runs only with PROFILE=local|test and AUTH_PROVIDER=local")
router = Router()


@router.route("POST", "/dev/token")
def token(req: ApiRequest) -> ApiResponse:
    data = req.json_body(DevTokenIn)
    minted = get_dev_issuer().mint(data.sub, data.expires_in, email=data.email, name=data.name)
    return json_response(200, {"id_token": minted})


@router.route("GET", "/dev/jwks.json")
def jwks(req: ApiRequest) -> ApiResponse:
    return json_response(200, get_dev_issuer().jwks(), **{"Cache-Control": "public, max-age=300"})


@functions_framework.http
def devauth(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
