"""/api/novels/{novel_id}/characters, /world-settings, /timeline-events, /foreshadowings: item by item.

Each list has the same four routes: POST (201, the item), and GET, PATCH and
DELETE of one item, which send its ETag and honour ``If-Match``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from starlette.responses import Response

from novawrite.services.items import CHARACTERS, FORESHADOWINGS, TIMELINE_EVENTS, WORLD_SETTINGS, ItemKind
from novawrite.web.routing import ApiRouter, Call, Handler
from novawrite.web.schemas import (
    CharacterCreate,
    CharacterOut,
    CharacterPatch,
    ForeshadowingCreate,
    ForeshadowingOut,
    ForeshadowingPatch,
    TimelineEventCreate,
    TimelineEventOut,
    TimelineEventPatch,
    WorldSettingCreate,
    WorldSettingOut,
    WorldSettingPatch,
)
from novawrite.web.versioned import if_match, tagged

router = ApiRouter("items")


@dataclass(frozen=True)
class ItemRoutes:
    kind: ItemKind
    #: The list's path segment, and the name of its items' id in the path.
    segment: str
    id_name: str
    create: type[BaseModel]
    patch: type[BaseModel]
    out: type[BaseModel]


LISTS = (
    ItemRoutes(CHARACTERS, "characters", "character_id", CharacterCreate, CharacterPatch, CharacterOut),
    ItemRoutes(
        WORLD_SETTINGS, "world-settings", "world_setting_id", WorldSettingCreate, WorldSettingPatch, WorldSettingOut
    ),
    ItemRoutes(
        TIMELINE_EVENTS,
        "timeline-events",
        "timeline_event_id",
        TimelineEventCreate,
        TimelineEventPatch,
        TimelineEventOut,
    ),
    ItemRoutes(
        FORESHADOWINGS, "foreshadowings", "foreshadowing_id", ForeshadowingCreate, ForeshadowingPatch, ForeshadowingOut
    ),
)


def _named(handler: Handler, name: str) -> Handler:
    handler.__name__ = name
    return handler


def _register(spec: ItemRoutes) -> None:
    kind = spec.kind
    collection = f"/api/novels/{{novel_id}}/{spec.segment}"
    one = f"{collection}/{{{spec.id_name}}}"
    noun = kind.noun.lower()
    snake = spec.id_name.removesuffix("_id")

    async def create(call: Call) -> Response:
        novel_id = call.path_param("novel_id")
        item = await call.services.items.create(call.user.id, novel_id, kind, call.body.model_dump())
        return tagged(item, status_code=201, location=f"/api/novels/{novel_id}/{spec.segment}/{item['id']}")

    async def get(call: Call) -> Response:
        return tagged(
            await call.services.items.get(
                call.user.id, call.path_param("novel_id"), kind, call.path_param(spec.id_name)
            )
        )

    async def patch(call: Call) -> Response:
        changes = {name: getattr(call.body, name) for name in call.body.model_fields_set}
        item = await call.services.items.update(
            call.user.id, call.path_param("novel_id"), kind, call.path_param(spec.id_name), changes, if_match(call)
        )
        return tagged(item)

    async def delete(call: Call) -> Response:
        await call.services.items.delete(
            call.user.id, call.path_param("novel_id"), kind, call.path_param(spec.id_name), if_match(call)
        )
        return Response(status_code=204)

    router.route(
        "POST", collection, summary=f"Add a {noun}", body=spec.create, response=spec.out, status=201, errors=(409,)
    )(_named(create, f"create_{snake}"))
    router.route("GET", one, summary=f"A {noun} (with its ETag)", response=spec.out)(_named(get, f"get_{snake}"))
    router.route("PATCH", one, summary=f"Change a {noun}", body=spec.patch, response=spec.out, errors=(409, 412))(
        _named(patch, f"patch_{snake}")
    )
    router.route("DELETE", one, summary=f"Delete a {noun}", status=204, errors=(412,))(
        _named(delete, f"delete_{snake}")
    )


for _spec in LISTS:
    _register(_spec)
