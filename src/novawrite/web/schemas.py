"""Pydantic models of the request and response bodies of API.md.

Request models validate strictly (no "3" for 3, no null for a string) and ignore
unknown members. Response models document the shapes in OpenAPI; handlers build
the same shapes as plain dicts (see ``novawrite.services.views``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


Username = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, Field(min_length=8, max_length=256)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Genre = Annotated[str, Field(max_length=100)]
Synopsis = Annotated[str, Field(max_length=20_000)]
Language = Literal["zh", "en"]
ForeshadowingStatus = Literal["planted", "hinted", "resolved", "abandoned"]


class RegisterIn(Strict):
    username: Username
    password: Password


class LoginIn(Strict):
    username: Annotated[str, Field(max_length=256)]
    password: Annotated[str, Field(max_length=256)]


class UserOut(BaseModel):
    id: int
    username: str


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class NovelCreate(Strict):
    title: Title
    genre: Genre = ""
    synopsis: Synopsis = ""
    language: Language = "zh"


class NovelPatch(Strict):
    # An omitted member keeps its value; null is not a value (422): the default
    # is not validated, an explicit null is.
    model_config = ConfigDict(strict=True, extra="ignore", validate_default=False)

    title: Title = None  # type: ignore[assignment]
    genre: Genre = None  # type: ignore[assignment]
    synopsis: Synopsis = None  # type: ignore[assignment]
    language: Language = None  # type: ignore[assignment]
    outline: Annotated[str, Field(max_length=100_000)] = None  # type: ignore[assignment]


class ChapterSummaryOut(BaseModel):
    id: int
    number: int
    title: str
    summary: str
    word_count: int
    has_content: bool
    recap: str | None
    #: The text changed since the recap was made (an author's edit or a restore).
    recap_stale: bool


class VolumeOut(BaseModel):
    id: int
    number: int
    title: str
    summary: str
    chapters: list[ChapterSummaryOut]


class CharacterOut(BaseModel):
    id: int
    name: str
    role: str
    description: str
    traits: list[str]
    arc: str
    relationships: str


class WorldSettingOut(BaseModel):
    id: int
    name: str
    category: str
    description: str


class TimelineEventOut(BaseModel):
    id: int
    position: int
    time_label: str
    title: str
    description: str
    chapter_number: int | None


class ForeshadowingOut(BaseModel):
    id: int
    title: str
    description: str
    status: ForeshadowingStatus
    planted_chapter_id: int | None
    payoff_chapter_id: int | None
    #: The numbers of those chapters now (read-only: they follow the chapters' renumbering).
    planted_chapter: int | None
    payoff_chapter: int | None
    #: The payoff chapter has text and the thread is neither resolved nor abandoned.
    overdue: bool


class NovelSummaryOut(BaseModel):
    id: int
    title: str
    genre: str
    synopsis: str
    language: Language
    created_at: datetime
    updated_at: datetime


class NovelOut(NovelSummaryOut):
    outline: str | None
    volumes: list[VolumeOut]
    characters: list[CharacterOut]
    world_settings: list[WorldSettingOut]
    timeline_events: list[TimelineEventOut]
    foreshadowings: list[ForeshadowingOut]


class NovelListOut(BaseModel):
    items: list[NovelSummaryOut]


class ChapterOut(BaseModel):
    id: int
    volume_id: int
    number: int
    title: str
    summary: str
    content: str
    word_count: int
    recap: str | None
    recap_stale: bool


class RevisionOut(BaseModel):
    id: int
    created_at: datetime
    word_count: int
    content: str
    source: Literal["generated", "author", "restored"]


class RevisionListOut(BaseModel):
    items: list[RevisionOut]


TaskStatusName = Literal["pending", "running", "completed", "failed", "cancelled"]
#: API.md's task types. A filter is checked against the app's registry of kinds (tests
#: register their own), so this only documents the production values in OpenAPI.
TASK_TYPES = (
    "generate_outline",
    "generate_characters",
    "generate_world_settings",
    "generate_timeline_events",
    "generate_foreshadowings",
    "write_chapter_content",
    "recap_chapters",
    "write_chapters",
)
TaskTypeFilter = Annotated[str, Field(json_schema_extra={"enum": list(TASK_TYPES)})]


class TaskErrorOut(BaseModel):
    code: str
    message: str


class UsageOut(BaseModel):
    prompt_tokens: int
    output_tokens: int


class TaskOut(BaseModel):
    id: str
    novel_id: int
    user_id: int
    task_type: str
    status: TaskStatusName
    progress: Annotated[int, Field(ge=0, le=100)]
    message: str
    params: dict[str, Any]
    result: Any
    error: TaskErrorOut | None
    usage: UsageOut | None
    attempt: int
    retry_of: str | None
    parent_id: str | None
    cancel_requested: bool
    resume_at: datetime | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class TaskListOut(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


class ActiveTasksOut(BaseModel):
    items: list[TaskOut]


class TaskOutputOut(BaseModel):
    text: str
    complete: bool


class TaskHistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: TaskStatusName | None = None
    task_type: TaskTypeFilter | None = None
    novel_id: Annotated[int, Field(ge=0)] | None = None
    #: Only the children of one batch (write_chapters).
    parent_id: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: str | None = None


class NovelTasksQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: TaskStatusName | None = None
    task_type: TaskTypeFilter | None = None
    #: Only the tasks of one chapter (write_chapter_content); not in API.md, an addition.
    chapter_id: Annotated[int, Field(ge=0)] | None = None
    #: Only the children of one batch (write_chapters).
    parent_id: str | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: str | None = None


class HealthOut(BaseModel):
    status: str


# --- The author's hand: editing, items, export ---------------------------------------------

ItemName = Annotated[str, Field(min_length=1, max_length=200)]
ItemText = Annotated[str, Field(max_length=5_000)]
ChapterTitle = Annotated[str, Field(min_length=1, max_length=500)]
ChapterSummaryText = Annotated[str, Field(max_length=5_000)]
ChapterContent = Annotated[str, Field(max_length=200_000)]
Trait = Annotated[str, Field(max_length=200)]
Traits = Annotated[list[Trait], Field(max_length=50)]
#: A place in a list, or a chapter number: whole numbers from 1 (kept far inside the 32-bit columns).
Position = Annotated[int, Field(ge=1, le=1_000_000)]


class Patch(Strict):
    """A PATCH body: an omitted member keeps its value; null is not a value unless the field allows it."""

    model_config = ConfigDict(strict=True, extra="ignore", validate_default=False)


class VolumePatch(Patch):
    title: ChapterTitle = None  # type: ignore[assignment]
    summary: ChapterSummaryText = None  # type: ignore[assignment]


class VolumeFieldsOut(BaseModel):
    id: int
    number: int
    title: str
    summary: str


class ChapterCreate(Strict):
    title: ChapterTitle
    summary: ChapterSummaryText = ""


class ChapterPatch(Patch):
    title: ChapterTitle = None  # type: ignore[assignment]
    summary: ChapterSummaryText = None  # type: ignore[assignment]
    content: ChapterContent = None  # type: ignore[assignment]


class ChapterDeleteQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    #: Delete a chapter that holds text (content or revisions) all the same.
    force: bool = False


class CharacterCreate(Strict):
    name: ItemName
    role: ItemText = ""
    description: ItemText = ""
    traits: Traits = []
    arc: ItemText = ""
    relationships: ItemText = ""


class CharacterPatch(Patch):
    name: ItemName = None  # type: ignore[assignment]
    role: ItemText = None  # type: ignore[assignment]
    description: ItemText = None  # type: ignore[assignment]
    traits: Traits = None  # type: ignore[assignment]
    arc: ItemText = None  # type: ignore[assignment]
    relationships: ItemText = None  # type: ignore[assignment]


class WorldSettingCreate(Strict):
    name: ItemName
    category: ItemText = ""
    description: ItemText = ""


class WorldSettingPatch(Patch):
    name: ItemName = None  # type: ignore[assignment]
    category: ItemText = None  # type: ignore[assignment]
    description: ItemText = None  # type: ignore[assignment]


class TimelineEventCreate(Strict):
    title: ItemName
    time_label: ItemText = ""
    description: ItemText = ""
    #: Where the event goes (1 is first); the events from there on move down one. Default: last.
    position: Position | None = None
    chapter_number: Position | None = None


class TimelineEventPatch(Patch):
    title: ItemName = None  # type: ignore[assignment]
    time_label: ItemText = None  # type: ignore[assignment]
    description: ItemText = None  # type: ignore[assignment]
    position: Position = None  # type: ignore[assignment]
    chapter_number: Position | None = None


class ForeshadowingCreate(Strict):
    title: ItemName
    description: ItemText = ""
    status: ForeshadowingStatus = "planted"
    #: A chapter of this novel, else 422.
    planted_chapter_id: int | None = None
    payoff_chapter_id: int | None = None


class ForeshadowingPatch(Patch):
    title: ItemName = None  # type: ignore[assignment]
    description: ItemText = None  # type: ignore[assignment]
    status: ForeshadowingStatus = None  # type: ignore[assignment]
    planted_chapter_id: int | None = None
    payoff_chapter_id: int | None = None


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    #: Plain text unless asked otherwise.
    format: Literal["txt", "md", "epub"] = "txt"
