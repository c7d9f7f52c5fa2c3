"""GeminiProvider: the real google-genai SDK against the project's fake Gemini server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.factory import build_provider
from novawrite.providers.gemini import GeminiProvider, split_base_url
from novawrite.settings import Settings, SettingsError
from tests.fakes import Fail, FakeGemini, Hang, Stream, Text

KEY = "test-key-123"
MODEL = "gemini-test-flash"
PROMPT = Prompt(kind="outline", system="You are a novelist.", user="Outline a story.")


class Outline(BaseModel):
    title: str
    chapters: list[str]


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY, models=[MODEL]) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeGemini) -> AsyncIterator[GeminiProvider]:
    provider = GeminiProvider(api_key=KEY, model=MODEL, base_url=fake.base_url, timeout=5)
    yield provider
    await provider.aclose()


async def collect(provider: GeminiProvider, prompt: Prompt = PROMPT) -> list[Completion]:
    return [piece async for piece in provider.stream_text(prompt)]


async def failure_of_json(provider: GeminiProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.generate_json(PROMPT, Outline)
    return caught.value


# --- answers ---------------------------------------------------------------------------


async def test_json_answer_carries_text_and_usage(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.push(Text('{"title": "T", "chapters": ["a"]}', prompt_tokens=12, output_tokens=34))

    completion = await provider.generate_json(PROMPT, Outline)

    assert completion == Completion('{"title": "T", "chapters": ["a"]}', Usage(12, 34))
    (call,) = fake.model_calls
    assert call.path == f"/v1beta/models/{MODEL}:generateContent"
    assert call.headers["x-goog-api-key"] == KEY
    body = call.json()
    assert body["contents"][0]["parts"][0]["text"] == PROMPT.user
    assert body["systemInstruction"]["parts"][0]["text"] == PROMPT.system
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == Outline.model_json_schema()


async def test_invalid_json_comes_back_raw_for_the_generators_to_repair(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Text('{"title": "cut off'))

    completion = await provider.generate_json(PROMPT, Outline)

    assert completion.text == '{"title": "cut off'


async def test_stream_pieces_concatenate_and_usage_sums_to_the_total(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Stream(["Once ", "upon ", "a time."], prompt_tokens=20, output_tokens=9))

    pieces = await collect(provider)

    assert "".join(p.text for p in pieces) == "Once upon a time."
    total = sum((p.usage for p in pieces), Usage())
    assert total == Usage(20, 9)
    (call,) = fake.model_calls
    assert call.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert call.query["alt"] == "sse"
    assert call.headers["x-goog-api-key"] == KEY


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, (None, "v1beta")),
        ("http://127.0.0.1:9", ("http://127.0.0.1:9", "v1beta")),
        ("http://proxy.example/gemini/", ("http://proxy.example/gemini/", "v1beta")),
        ("http://proxy.example/gemini/v1", ("http://proxy.example/gemini/", "v1")),
        ("https://generativelanguage.googleapis.com/v1beta/", ("https://generativelanguage.googleapis.com/", "v1beta")),
    ],
)
def test_a_version_at_the_end_of_the_base_url_picks_the_api_version(
    base_url: str | None, expected: tuple[str | None, str]
) -> None:
    assert split_base_url(base_url) == expected


async def test_base_url_with_a_version_calls_that_version(fake: FakeGemini) -> None:
    provider = GeminiProvider(api_key=KEY, model=MODEL, base_url=f"{fake.base_url}/v1", timeout=5)
    try:
        await provider.generate_json(PROMPT, Outline)
    finally:
        await provider.aclose()

    assert fake.model_calls[0].path == f"/v1/models/{MODEL}:generateContent"


async def test_factory_builds_gemini_from_settings(fake: FakeGemini) -> None:
    settings = Settings(provider="gemini", gemini_api_key=KEY, gemini_model=MODEL, gemini_base_url=fake.base_url)
    provider = build_provider(settings)
    try:
        assert isinstance(provider, GeminiProvider)
        assert not provider.is_demo
        await provider.generate_json(PROMPT, Outline)
    finally:
        await provider.aclose()
    assert fake.model_calls[0].headers["x-goog-api-key"] == KEY


def test_factory_rejects_an_unknown_provider() -> None:
    with pytest.raises(SettingsError, match="Unknown provider"):
        build_provider(Settings(provider="unknown"))


def test_factory_refuses_gemini_without_a_key() -> None:
    with pytest.raises(SettingsError, match="GEMINI_API_KEY"):
        build_provider(Settings(provider="gemini", gemini_api_key=None))


# --- transient failures ----------------------------------------------------------------


async def test_503_is_transient_and_the_sdk_does_not_retry_it(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.push(Fail(503, "The model is overloaded."))

    error = await failure_of_json(provider)

    assert error.transient and not error.rate_limited
    assert error.status == 503
    assert "overloaded" in error.message
    assert len(fake.model_calls) == 1  # the engine retries, not the SDK


async def test_503_on_a_stream_is_transient(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.push(Fail(503))

    with pytest.raises(ProviderError) as caught:
        await collect(provider)

    assert caught.value.transient and caught.value.status == 503


async def test_429_with_retry_after_header(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.push(Fail(429, "Quota exceeded", headers={"Retry-After": "12"}))

    error = await failure_of_json(provider)

    assert error.transient and error.rate_limited
    assert error.code == "provider_rate_limited"
    assert error.retry_after == 12.0


async def test_429_with_retry_info_in_the_body(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.push(Fail(429, "Quota exceeded", retry_delay="7.5s"))

    error = await failure_of_json(provider)

    assert error.rate_limited and error.retry_after == 7.5


async def test_429_on_a_stream_is_rate_limited(fake: FakeGemini, provider: GeminiProvider) -> None:
    fake.push(Fail(429, retry_delay="3s"))

    with pytest.raises(ProviderError) as caught:
        await collect(provider)

    assert caught.value.rate_limited and caught.value.retry_after == 3.0


async def test_stream_cut_mid_way_raises_transient_from_the_iteration(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Stream(["one ", "two ", "three"], cut_after=2))
    received: list[str] = []

    with pytest.raises(ProviderError) as caught:
        async for piece in provider.stream_text(PROMPT):
            received.append(piece.text)

    assert caught.value.transient
    assert received == ["one ", "two "]


async def test_stream_that_ends_without_a_finish_reason_is_transient(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Stream(["one ", "two"], unfinished=True))

    with pytest.raises(ProviderError) as caught:
        await collect(provider)

    assert caught.value.transient
    assert "ended before" in caught.value.message


async def test_unreachable_server_is_transient() -> None:
    with FakeGemini() as server:
        closed_url = server.base_url  # nothing listens here once the server stops
    provider = GeminiProvider(api_key=KEY, model=MODEL, base_url=closed_url, timeout=5)
    try:
        error = await failure_of_json(provider)
        with pytest.raises(ProviderError) as caught:
            await collect(provider)
    finally:
        await provider.aclose()

    assert error.transient and caught.value.transient


async def test_json_call_times_out_as_a_whole(fake: FakeGemini) -> None:
    provider = GeminiProvider(api_key=KEY, model=MODEL, base_url=fake.base_url, timeout=0.3)
    fake.push(Hang())
    try:
        error = await failure_of_json(provider)
    finally:
        await provider.aclose()

    assert error.transient and "0.3" in error.message
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=1.0)


async def test_stream_times_out_when_silent_between_chunks_not_over_its_length(fake: FakeGemini) -> None:
    provider = GeminiProvider(api_key=KEY, model=MODEL, base_url=fake.base_url, timeout=1.0)
    # Longer in total than the timeout, but never silent for that long.
    fake.push(Stream(["a", "b", "c", "d", "e", "f"], delay=0.2))
    fake.push(Stream(["a", "b"], hang_after=1))
    try:
        pieces = await collect(provider)
        received: list[str] = []
        with pytest.raises(ProviderError) as caught:
            async for piece in provider.stream_text(PROMPT):
                received.append(piece.text)
    finally:
        await provider.aclose()

    assert "".join(p.text for p in pieces) == "abcdef"
    assert received == ["a"]
    assert caught.value.transient and "silent" in caught.value.message
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=1.0)


# --- fatal failures --------------------------------------------------------------------


async def test_wrong_api_key_is_fatal_and_says_to_check_the_key(fake: FakeGemini) -> None:
    provider = GeminiProvider(api_key="wrong-key", model=MODEL, base_url=fake.base_url, timeout=5)
    try:
        error = await failure_of_json(provider)
    finally:
        await provider.aclose()

    assert not error.transient and error.status == 400
    assert "API key" in error.message and "GEMINI_API_KEY" in error.message


async def test_unknown_model_is_fatal_and_names_the_model(fake: FakeGemini) -> None:
    provider = GeminiProvider(api_key=KEY, model="gemini-nope", base_url=fake.base_url, timeout=5)
    try:
        error = await failure_of_json(provider)
        with pytest.raises(ProviderError) as caught:
            await collect(provider)
    finally:
        await provider.aclose()

    for failure in (error, caught.value):
        assert not failure.transient and failure.status == 404
        assert '"gemini-nope"' in failure.message and "NOVAWRITE_GEMINI_MODEL" in failure.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "invalid"),
        (401, "GEMINI_API_KEY"),
        (403, "GEMINI_API_KEY"),
        (404, "NOVAWRITE_GEMINI_MODEL"),
    ],
)
async def test_client_errors_are_fatal_with_a_hint(
    fake: FakeGemini, provider: GeminiProvider, status: int, expected: str
) -> None:
    fake.push(Fail(status, "Nope."))

    error = await failure_of_json(provider)

    assert not error.transient and not error.rate_limited
    assert error.status == status
    assert expected in error.message and "Nope." in error.message
    assert len(fake.model_calls) == 1


# --- stopping a stream -----------------------------------------------------------------


async def test_cancelling_the_reading_task_closes_the_upstream_connection(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Stream(["first ", "second"], hang_after=1))
    first = asyncio.Event()

    async def read() -> None:
        async for _ in provider.stream_text(PROMPT):
            first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), timeout=5)
    assert fake.open_connections == 1

    task.cancel()
    await asyncio.wait({task}, timeout=5)

    assert task.cancelled()
    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)


async def test_cancel_while_waiting_for_the_first_chunk_closes_the_connection(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Hang())
    task = asyncio.create_task(collect(provider))
    await fake.wait_until(lambda: len(fake.model_calls) == 1, timeout=5)  # the request is in

    task.cancel()
    await asyncio.wait({task}, timeout=5)

    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)


async def test_closing_the_iterator_early_closes_the_upstream_connection(
    fake: FakeGemini, provider: GeminiProvider
) -> None:
    fake.push(Stream(["first ", "second"], hang_after=1))
    stream = provider.stream_text(PROMPT)

    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)
