"""OpenAICompatProvider: real httpx against the project's fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, ProviderError, Usage
from novawrite.providers.factory import build_provider
from novawrite.providers.openai_compat import OpenAICompatProvider, chat_completions_url
from novawrite.settings import Settings
from tests.fakes import Fail, FakeOpenAI, Hang, Stream, Text

KEY = "sk-test-123"
MODEL = "qwen-test"
PROMPT = Prompt(kind="chapter", system="You are a novelist.", user="Write chapter one.")


class Characters(BaseModel):
    names: list[str]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY, models=[MODEL]) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAICompatProvider]:
    provider = OpenAICompatProvider(base_url=fake.base_url, model=MODEL, api_key=KEY, timeout=5)
    yield provider
    await provider.aclose()


async def collect(provider: OpenAICompatProvider) -> list[Completion]:
    return [piece async for piece in provider.stream_text(PROMPT)]


async def failure_of_json(provider: OpenAICompatProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.generate_json(PROMPT, Characters)
    return caught.value


# --- answers ---------------------------------------------------------------------------


async def test_json_answer_carries_text_and_usage(fake: FakeOpenAI, provider: OpenAICompatProvider) -> None:
    fake.push(Text('{"names": ["Lin"]}', prompt_tokens=15, output_tokens=6))

    completion = await provider.generate_json(PROMPT, Characters)

    assert completion == Completion('{"names": ["Lin"]}', Usage(15, 6))
    (call,) = fake.model_calls
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    body = call.json()
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": PROMPT.system},
        {"role": "user", "content": PROMPT.user},
    ]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Characters", "schema": Characters.model_json_schema(), "strict": False},
    }
    assert "stream" not in body


async def test_invalid_json_comes_back_raw(fake: FakeOpenAI, provider: OpenAICompatProvider) -> None:
    fake.push(Text("Sure! Here are the names: Lin"))

    assert (await provider.generate_json(PROMPT, Characters)).text == "Sure! Here are the names: Lin"


async def test_stream_pieces_concatenate_and_usage_comes_from_the_usage_chunk(
    fake: FakeOpenAI, provider: OpenAICompatProvider
) -> None:
    fake.push(Stream(["It was ", "a dark ", "night."], prompt_tokens=30, output_tokens=8))

    pieces = await collect(provider)

    assert "".join(p.text for p in pieces) == "It was a dark night."
    assert sum((p.usage for p in pieces), Usage()) == Usage(30, 8)
    body = fake.model_calls[0].json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://localhost:11434", "http://localhost:11434/v1/chat/completions"),
        ("http://localhost:11434/", "http://localhost:11434/v1/chat/completions"),
        ("http://localhost:8000/v1", "http://localhost:8000/v1/chat/completions"),
        ("http://localhost:8000/v1/", "http://localhost:8000/v1/chat/completions"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/chat/completions"),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        ),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ],
)
def test_base_url_with_or_without_the_version(base_url: str, expected: str) -> None:
    assert chat_completions_url(base_url) == expected


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
async def test_base_url_forms_reach_the_server(fake: FakeOpenAI, suffix: str) -> None:
    provider = OpenAICompatProvider(base_url=fake.base_url + suffix, model=MODEL, api_key=KEY, timeout=5)
    try:
        await provider.generate_json(PROMPT, Characters)
    finally:
        await provider.aclose()
    assert fake.model_calls[0].path == "/v1/chat/completions"


async def test_a_server_under_a_path_prefix() -> None:
    with FakeOpenAI(prefix="/api/v1") as server:
        provider = OpenAICompatProvider(base_url=server.api_base, timeout=5)
        try:
            pieces = await collect(provider)
        finally:
            await provider.aclose()
        (call,) = server.model_calls
    assert "".join(p.text for p in pieces) == '{"ok": true}'
    assert call.path == "/api/v1/chat/completions"
    # Without a key or model, neither is sent (llama.cpp and vLLM need neither).
    assert "authorization" not in call.headers
    assert "model" not in call.json()


async def test_factory_builds_openai_from_settings(fake: FakeOpenAI) -> None:
    settings = Settings(provider="openai", openai_base_url=fake.base_url, openai_api_key=KEY, openai_model=MODEL)
    provider = build_provider(settings)
    try:
        assert isinstance(provider, OpenAICompatProvider)
        assert not provider.is_demo
        await provider.generate_json(PROMPT, Characters)
    finally:
        await provider.aclose()
    assert fake.model_calls[0].headers["authorization"] == f"Bearer {KEY}"


# --- transient failures ----------------------------------------------------------------


async def test_503_is_transient(fake: FakeOpenAI, provider: OpenAICompatProvider) -> None:
    fake.push(Fail(503, "Overloaded"), Fail(502))

    error = await failure_of_json(provider)
    with pytest.raises(ProviderError) as caught:
        await collect(provider)

    assert error.transient and error.status == 503 and "Overloaded" in error.message
    assert caught.value.transient and caught.value.status == 502
    assert len(fake.model_calls) == 2


async def test_429_with_retry_after(fake: FakeOpenAI, provider: OpenAICompatProvider) -> None:
    fake.push(Fail(429, "Slow down", headers={"Retry-After": "20"}), Fail(429, headers={"retry-after-ms": "1500"}))

    first = await failure_of_json(provider)
    with pytest.raises(ProviderError) as caught:
        await collect(provider)

    assert first.rate_limited and first.transient and first.retry_after == 20.0
    assert first.code == "provider_rate_limited"
    assert caught.value.rate_limited and caught.value.retry_after == 1.5


async def test_stream_cut_mid_way_raises_transient_from_the_iteration(
    fake: FakeOpenAI, provider: OpenAICompatProvider
) -> None:
    fake.push(Stream(["one ", "two ", "three"], cut_after=2))
    received: list[str] = []

    with pytest.raises(ProviderError) as caught:
        async for piece in provider.stream_text(PROMPT):
            received.append(piece.text)

    assert caught.value.transient
    assert received == ["one ", "two "]


async def test_stream_without_finish_or_done_is_transient(fake: FakeOpenAI, provider: OpenAICompatProvider) -> None:
    fake.push(Stream(["one ", "two"], unfinished=True))

    with pytest.raises(ProviderError) as caught:
        await collect(provider)

    assert caught.value.transient and "ended before" in caught.value.message


async def test_unreachable_server_is_transient() -> None:
    with FakeOpenAI() as server:
        closed_url = server.base_url
    provider = OpenAICompatProvider(base_url=closed_url, timeout=5)
    try:
        error = await failure_of_json(provider)
        with pytest.raises(ProviderError) as caught:
            await collect(provider)
    finally:
        await provider.aclose()

    assert error.transient and caught.value.transient


async def test_json_call_times_out_as_a_whole(fake: FakeOpenAI) -> None:
    provider = OpenAICompatProvider(base_url=fake.base_url, model=MODEL, api_key=KEY, timeout=0.3)
    fake.push(Hang())
    try:
        error = await failure_of_json(provider)
    finally:
        await provider.aclose()

    assert error.transient
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=1.0)


async def test_stream_times_out_when_silent_between_chunks_not_over_its_length(fake: FakeOpenAI) -> None:
    provider = OpenAICompatProvider(base_url=fake.base_url, model=MODEL, api_key=KEY, timeout=1.0)
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
    assert caught.value.transient
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=1.0)


# --- fatal failures --------------------------------------------------------------------


async def test_wrong_api_key_is_fatal_and_says_to_check_the_key(fake: FakeOpenAI) -> None:
    provider = OpenAICompatProvider(base_url=fake.base_url, model=MODEL, api_key="sk-wrong", timeout=5)
    try:
        error = await failure_of_json(provider)
    finally:
        await provider.aclose()

    assert not error.transient and error.status == 401
    assert "API key" in error.message and "NOVAWRITE_OPENAI_API_KEY" in error.message


async def test_unknown_model_is_fatal_and_names_the_model(fake: FakeOpenAI) -> None:
    provider = OpenAICompatProvider(base_url=fake.base_url, model="llama-nope", api_key=KEY, timeout=5)
    try:
        error = await failure_of_json(provider)
        with pytest.raises(ProviderError) as caught:
            await collect(provider)
    finally:
        await provider.aclose()

    for failure in (error, caught.value):
        assert not failure.transient and failure.status == 404
        assert '"llama-nope"' in failure.message and "NOVAWRITE_OPENAI_MODEL" in failure.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "invalid"),
        (401, "NOVAWRITE_OPENAI_API_KEY"),
        (403, "NOVAWRITE_OPENAI_API_KEY"),
        (404, "NOVAWRITE_OPENAI_BASE_URL"),
    ],
)
async def test_client_errors_are_fatal_with_a_hint(
    fake: FakeOpenAI, provider: OpenAICompatProvider, status: int, expected: str
) -> None:
    fake.push(Fail(status, "Nope."))

    error = await failure_of_json(provider)

    assert not error.transient and not error.rate_limited and error.status == status
    assert expected in error.message and "Nope." in error.message


# --- stopping a stream -----------------------------------------------------------------


async def test_cancelling_the_reading_task_closes_the_upstream_connection(
    fake: FakeOpenAI, provider: OpenAICompatProvider
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
    fake: FakeOpenAI, provider: OpenAICompatProvider
) -> None:
    fake.push(Hang())
    task = asyncio.create_task(collect(provider))
    await fake.wait_until(lambda: len(fake.model_calls) == 1, timeout=5)  # the request is in

    task.cancel()
    await asyncio.wait({task}, timeout=5)

    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)


async def test_closing_the_iterator_early_closes_the_upstream_connection(
    fake: FakeOpenAI, provider: OpenAICompatProvider
) -> None:
    fake.push(Stream(["first ", "second"], hang_after=1))
    stream = provider.stream_text(PROMPT)

    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)
