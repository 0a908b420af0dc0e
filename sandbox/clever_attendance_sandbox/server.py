"""Run both stand-ins in one process, on loopback ports, and say where they are."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from pathlib import Path

import uvicorn

from clever_attendance_sandbox import clever_api, upload_api
from clever_attendance_sandbox.faults import CleverFaults, UploadFaults
from clever_attendance_sandbox.generator import District, iso_z, presets


def _server(app, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                         access_log=False, lifespan="off"))


def _port(server: uvicorn.Server) -> int:
    return server.servers[0].sockets[0].getsockname()[1]


async def serve(*, host: str, clever_port: int, upload_port: int, districts: list[str], seed: int,
                now: datetime | None, db: str, clever_faults: CleverFaults, upload_faults: UploadFaults,
                state_file: str | None, client_id: str | None = None, client_secret: str | None = None,
                api_key: str | None = None) -> None:
    built = [District(spec, seed) for spec in presets(districts)]
    clever = clever_api.CleverState(built, now, client_id, client_secret, clever_faults)
    upload = upload_api.UploadState(db, api_key, upload_faults)
    servers = [_server(clever_api.create_app(clever), host, clever_port),
               _server(upload_api.create_app(upload), host, upload_port)]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            await asyncio.gather(*tasks)
            raise SystemExit("sandbox: a server did not start")
        await asyncio.sleep(0.02)
    info = {
        "clever_url": f"http://{host}:{_port(servers[0])}",
        "upload_url": f"http://{host}:{_port(servers[1])}",
        "clever_client_id": clever.client_id, "clever_client_secret": clever.client_secret,
        "upload_api_key": upload.api_key, "db": db, "now": iso_z(clever.now), "seed": seed,
        "districts": {d.spec.slug: d.id for d in built}, "pid": os.getpid(),
    }
    if state_file:
        path = Path(state_file)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.chmod(0o600)
        tmp.rename(path)  # readers never see half a file
    print("sandbox ready " + json.dumps(info), flush=True)
    await asyncio.gather(*tasks)
