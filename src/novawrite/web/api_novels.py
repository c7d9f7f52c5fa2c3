"""/api/novels: a user's novels, their volumes, chapters and chapter revisions.

Chapters and volumes send an ETag; their PATCH and DELETE honour ``If-Match``
(412 when it is not the current one), and so does a restore, which replaces the
chapter's text too.
"""

from __future__ import annotations

from starlette.responses import Response

from novawrite.web.http import JSON
from novawrite.web.routing import ApiRouter, Call
from novawrite.web.schemas import (
    ChapterCreate,
    ChapterDeleteQuery,
    ChapterOut,
    ChapterPatch,
    NovelCreate,
    NovelListOut,
    NovelOut,
    NovelPatch,
    RevisionListOut,
    VolumeFieldsOut,
    VolumePatch,
)
from novawrite.web.versioned import if_match, tagged

router = ApiRouter("novels")

CHAPTER = "/api/novels/{novel_id}/chapters/{chapter_id}"
VOLUME = "/api/novels/{novel_id}/volumes/{volume_id}"


def _changes(call: Call) -> dict[str, object]:
    return {name: getattr(call.body, name) for name in call.body.model_fields_set}


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
    return JSON(await call.services.novels.update(call.user.id, call.path_param("novel_id"), _changes(call)))


@router.route("DELETE", "/api/novels/{novel_id}", summary="Delete a novel, cancelling its tasks first", status=204)
async def delete_novel(call: Call) -> Response:
    services = call.services
    user_id = call.user.id
    novel_id = await services.novels.owned(user_id, call.path_param("novel_id"))  # 404 before touching any task
    await services.tasks.cancel_all_for_novel(user_id, novel_id)
    await services.novels.delete(user_id, novel_id)
    await services.tasks.novel_deleted()
    return Response(status_code=204)


# --- Volumes -----------------------------------------------------------------------------------


@router.route("GET", VOLUME, summary="A volume's fields (with its ETag)", response=VolumeFieldsOut)
async def get_volume(call: Call) -> Response:
    return tagged(
        await call.services.editing.volume(call.user.id, call.path_param("novel_id"), call.path_param("volume_id"))
    )


@router.route(
    "PATCH",
    VOLUME,
    summary="Change a volume's title or summary",
    body=VolumePatch,
    response=VolumeFieldsOut,
    errors=(412,),
)
async def patch_volume(call: Call) -> Response:
    volume = await call.services.editing.update_volume(
        call.user.id, call.path_param("novel_id"), call.path_param("volume_id"), _changes(call), if_match(call)
    )
    return tagged(volume)


@router.route(
    "POST",
    VOLUME + "/chapters",
    summary="Add a chapter at the end of a volume (the numbers after it move up by one)",
    body=ChapterCreate,
    response=ChapterOut,
    status=201,
)
async def add_chapter(call: Call) -> Response:
    novel_id = call.path_param("novel_id")
    chapter = await call.services.editing.add_chapter(
        call.user.id, novel_id, call.path_param("volume_id"), call.body.model_dump()
    )
    return tagged(chapter, status_code=201, location=f"/api/novels/{novel_id}/chapters/{chapter['id']}")


# --- Chapters ----------------------------------------------------------------------------------


@router.route("GET", CHAPTER, summary="A chapter with its text (and its ETag)", response=ChapterOut)
async def get_chapter(call: Call) -> Response:
    return tagged(
        await call.services.novels.chapter(call.user.id, call.path_param("novel_id"), call.path_param("chapter_id"))
    )


@router.route(
    "PATCH",
    CHAPTER,
    summary="Edit a chapter's title, summary or text (replaced text is kept as a revision)",
    body=ChapterPatch,
    response=ChapterOut,
    errors=(409, 412),
)
async def patch_chapter(call: Call) -> Response:
    chapter = await call.services.editing.update_chapter(
        call.user.id, call.path_param("novel_id"), call.path_param("chapter_id"), _changes(call), if_match(call)
    )
    return tagged(chapter)


@router.route(
    "DELETE",
    CHAPTER,
    summary="Delete a chapter, renumbering the rest (?force=true when it holds text)",
    query=ChapterDeleteQuery,
    status=204,
    errors=(409, 412),
)
async def delete_chapter(call: Call) -> Response:
    await call.services.editing.delete_chapter(
        call.user.id,
        call.path_param("novel_id"),
        call.path_param("chapter_id"),
        force=call.query.force,
        if_match=if_match(call),
    )
    return Response(status_code=204)


@router.route(
    "GET",
    CHAPTER + "/revisions",
    summary="Earlier texts of a chapter, newest first",
    response=RevisionListOut,
)
async def chapter_revisions(call: Call) -> Response:
    items = await call.services.novels.revisions(
        call.user.id, call.path_param("novel_id"), call.path_param("chapter_id")
    )
    return JSON({"items": items})


@router.route(
    "POST",
    CHAPTER + "/revisions/{revision_id}/restore",
    summary="Make a revision's text the chapter's content (the text it replaces becomes a revision)",
    response=ChapterOut,
    errors=(409, 412),
)
async def restore_revision(call: Call) -> Response:
    chapter = await call.services.editing.restore(
        call.user.id,
        call.path_param("novel_id"),
        call.path_param("chapter_id"),
        call.path_param("revision_id"),
        if_match(call),
    )
    return tagged(chapter)
