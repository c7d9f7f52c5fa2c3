"""/api/novels: a user's novels, their chapters and chapter revisions."""

from __future__ import annotations

from starlette.responses import Response

from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import (
    ChapterOut,
    NovelCreate,
    NovelListOut,
    NovelOut,
    NovelPatch,
    RevisionListOut,
)

router = ApiRouter("novels")


@router.route("POST", "/api/novels", summary="Create a novel", body=NovelCreate, response=NovelOut, status=201)
async def create_novel(call: Call) -> Response:
    novel = await call.services.novels.create(call.user.id, call.body.model_dump())
    return JSON(novel, status_code=201, headers={"Location": f"/api/novels/{novel['id']}"})


@router.route("GET", "/api/novels", summary="The user's novels", response=NovelListOut)
async def list_novels(call: Call) -> Response:
    return JSON({"items": await call.services.novels.list(call.user.id)})


@router.route("GET", "/api/novels/{novel_id}", summary="A novel with its structure", response=NovelOut)
async def get_novel(call: Call) -> Response:
    return JSON(await call.services.novels.get(call.user.id, call.path_param("novel_id")))


@router.route("PATCH", "/api/novels/{novel_id}", summary="Change a novel's fields", body=NovelPatch, response=NovelOut)
async def patch_novel(call: Call) -> Response:
    changes = {name: getattr(call.body, name) for name in call.body.model_fields_set}
    return JSON(await call.services.novels.update(call.user.id, call.path_param("novel_id"), changes))


@router.route("DELETE", "/api/novels/{novel_id}", summary="Delete a novel, cancelling its tasks first", status=204)
async def delete_novel(call: Call) -> Response:
    services = call.services
    user_id = call.user.id
    novel_id = await services.novels.owned(user_id, call.path_param("novel_id"))  # 404 before touching any task
    await services.tasks.cancel_all_for_novel(user_id, novel_id)
    await services.novels.delete(user_id, novel_id)
    await services.tasks.novel_deleted()
    return Response(status_code=204)


@router.route(
    "GET", "/api/novels/{novel_id}/chapters/{chapter_id}", summary="A chapter with its text", response=ChapterOut
)
async def get_chapter(call: Call) -> Response:
    return JSON(
        await call.services.novels.chapter(call.user.id, call.path_param("novel_id"), call.path_param("chapter_id"))
    )


@router.route(
    "GET",
    "/api/novels/{novel_id}/chapters/{chapter_id}/revisions",
    summary="Earlier texts of a chapter, newest first",
    response=RevisionListOut,
)
async def chapter_revisions(call: Call) -> Response:
    items = await call.services.novels.revisions(
        call.user.id, call.path_param("novel_id"), call.path_param("chapter_id")
    )
    return JSON({"items": items})
