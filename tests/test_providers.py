"""The model providers' contract, run against the project's fake servers: the real google-genai
SDK against the fake Gemini, real httpx against the fake OpenAI-compatible server.

Every test in the first sections runs once per provider (``backend``): answers,
transient and fatal failures, and stopping a stream mean the same thing whichever
model is behind them. What only one provider has (Gemini's base-URL versions and
retry info in the body, the OpenAI server's URL forms and ``retry-after-ms``)
comes last, per provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from novawrite.providers.base import Completion, Prompt, Provider, ProviderError, Usage
from novawrite.providers.factory import build_provider
from novawrite.providers.gemini import GeminiProvider, split_base_url
from novawrite.providers.openai_compat import OpenAICompatProvider, chat_completions_url
from novawrite.settings import Settings, SettingsError
from tests.fakes import Fail, FakeGemini, FakeHTTPServer, FakeOpenAI, Hang, Request, Stream, Text

PROMPT = Prompt(kind="outline", system="You are a novelist.", user="Outline a story.")


class Outline(BaseModel):
    title: str
    chapters: list[str]


# --- The two backends -------------------------------------------------------------------


def _gemini_json_call(call: Request, backend: Backend) -> None:
    assert call.path == f"/v1beta/models/{backend.model}:generateContent"
    assert call.headers["x-goog-api-key"] == backend.key
    body = call.json()
    assert body["contents"][0]["parts"][0]["text"] == PROMPT.user
    assert body["systemInstruction"]["parts"][0]["text"] == PROMPT.system
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == Outline.model_json_schema()


def _gemini_stream_call(call: Request, backend: Backend) -> None:
    assert call.path == f"/v1beta/models/{backend.model}:streamGenerateContent"
    assert call.query["alt"] == "sse"
    assert call.headers["x-goog-api-key"] == backend.key


def _openai_json_call(call: Request, backend: Backend) -> None:
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {backend.key}"
    body = call.json()
    assert body["model"] == backend.model
    assert body["messages"] == [
        {"role": "system", "content": PROMPT.system},
        {"role": "user", "content": PROMPT.user},
    ]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Outline", "schema": Outline.model_json_schema(), "strict": False},
    }
    assert "stream" not in body


def _openai_stream_call(call: Request, backend: Backend) -> None:
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {backend.key}"
    body = call.json()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@dataclass(frozen=True)
class Backend:
    name: str
    key: str
    model: str
    #: fake(api_key=..., models=[...]) -> a started-on-enter fake server.
    fake: Callable[..., Any]
    #: make(base_url, model, api_key, timeout) -> the provider.
    make: Callable[[str, str, str, float], Provider]
    settings: Callable[[str, str, str], Settings]
    cls: type
    check_json_call: Callable[[Request, Backend], None]
    check_stream_call: Callable[[Request, Backend], None]
    auth_header: Callable[[str], tuple[str, str]]
    #: The status a wrong key gets, and the environment variables the hints name.
    wrong_key_status: int
    key_variable: str
    model_variable: str
    #: The hint of each client error status.
    hints: dict[int, str]
    #: What a stream's message says when it went silent for the timeout.
    silent_stream: str


BACKENDS = {
    "gemini": Backend(
        name="gemini",
        key="test-key-123",
        model="gemini-test-flash",
        fake=FakeGemini,
        make=lambda url, model, key, timeout: GeminiProvider(api_key=key, model=model, base_url=url, timeout=timeout),
        settings=lambda url, model, key: Settings(
            provider="gemini", gemini_api_key=key, gemini_model=model, gemini_base_url=url
        ),
        cls=GeminiProvider,
        check_json_call=_gemini_json_call,
        check_stream_call=_gemini_stream_call,
        auth_header=lambda key: ("x-goog-api-key", key),
        wrong_key_status=400,
        key_variable="GEMINI_API_KEY",
        model_variable="NOVAWRITE_GEMINI_MODEL",
        hints={400: "invalid", 401: "GEMINI_API_KEY", 403: "GEMINI_API_KEY", 404: "NOVAWRITE_GEMINI_MODEL"},
        silent_stream="silent",
    ),
    "openai": Backend(
        name="openai",
        key="sk-test-123",
        model="qwen-test",
        fake=FakeOpenAI,
        make=lambda url, model, key, timeout: OpenAICompatProvider(
            base_url=url, model=model, api_key=key, timeout=timeout
        ),
        settings=lambda url, model, key: Settings(
            provider="openai", openai_base_url=url, openai_api_key=key, openai_model=model
        ),
        cls=OpenAICompatProvider,
        check_json_call=_openai_json_call,
        check_stream_call=_openai_stream_call,
        auth_header=lambda key: ("authorization", f"Bearer {key}"),
        wrong_key_status=401,
        key_variable="NOVAWRITE_OPENAI_API_KEY",
        model_variable="NOVAWRITE_OPENAI_MODEL",
        hints={
            400: "invalid",
            401: "NOVAWRITE_OPENAI_API_KEY",
            403: "NOVAWRITE_OPENAI_API_KEY",
            404: "NOVAWRITE_OPENAI_BASE_URL",
        },
        silent_stream="timed out",
    ),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
def fake(backend: Backend) -> Iterator[FakeHTTPServer]:
    with backend.fake(api_key=backend.key, models=[backend.model]) as server:
        yield server


@pytest.fixture
async def provider(backend: Backend, fake: FakeHTTPServer) -> AsyncIterator[Provider]:
    provider = backend.make(fake.base_url, backend.model, backend.key, 5)
    yield provider
    await provider.aclose()


OtherProvider = Callable[..., AbstractAsyncContextManager[Provider]]


@pytest.fixture
def other_provider(backend: Backend, fake: FakeHTTPServer) -> OtherProvider:
    """A provider on the same fake with one setting changed (key, model, timeout)."""

    @asynccontextmanager
    async def make(*, key: str | None = None, model: str | None = None, timeout: float = 5) -> AsyncIterator[Provider]:
        provider = backend.make(fake.base_url, model or backend.model, key or backend.key, timeout)
        try:
            yield provider
        finally:
            await provider.aclose()

    return make


async def collect(provider: Provider, prompt: Prompt = PROMPT) -> list[Completion]:
    return [piece async for piece in provider.stream_text(prompt)]


async def failure_of_json(provider: Provider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.generate_json(PROMPT, Outline)
    return caught.value


async def failure_of_stream(provider: Provider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(provider)
    return caught.value


# --- Answers ----------------------------------------------------------------------------


async def test_json_answer_carries_text_and_usage(backend: Backend, fake: Any, provider: Provider) -> None:
    fake.push(Text('{"title": "T", "chapters": ["a"]}', prompt_tokens=12, output_tokens=34))

    completion = await provider.generate_json(PROMPT, Outline)

    assert completion == Completion('{"title": "T", "chapters": ["a"]}', Usage(12, 34))
    (call,) = fake.model_calls
    backend.check_json_call(call, backend)


async def test_invalid_json_comes_back_raw_for_the_generators_to_repair(fake: Any, provider: Provider) -> None:
    fake.push(Text('{"title": "cut off'), Text("Sure! Here are the names: Lin"))

    assert (await provider.generate_json(PROMPT, Outline)).text == '{"title": "cut off'
    assert (await provider.generate_json(PROMPT, Outline)).text == "Sure! Here are the names: Lin"


async def test_stream_pieces_concatenate_and_usage_sums_to_the_total(
    backend: Backend, fake: Any, provider: Provider
) -> None:
    fake.push(Stream(["Once ", "upon ", "a time."], prompt_tokens=20, output_tokens=9))

    pieces = await collect(provider)

    assert "".join(p.text for p in pieces) == "Once upon a time."
    assert sum((p.usage for p in pieces), Usage()) == Usage(20, 9)
    (call,) = fake.model_calls
    backend.check_stream_call(call, backend)


async def test_factory_builds_the_provider_from_settings(backend: Backend, fake: Any) -> None:
    provider = build_provider(backend.settings(fake.base_url, backend.model, backend.key))
    try:
        assert isinstance(provider, backend.cls)
        assert not provider.is_demo
        await provider.generate_json(PROMPT, Outline)
    finally:
        await provider.aclose()
    header, value = backend.auth_header(backend.key)
    assert fake.model_calls[0].headers[header] == value


# --- Transient failures -----------------------------------------------------------------


async def test_5xx_is_transient_and_the_client_does_not_retry_it(fake: Any, provider: Provider) -> None:
    fake.push(Fail(503, "The model is overloaded."), Fail(503), Fail(502))

    error = await failure_of_json(provider)
    on_stream = [await failure_of_stream(provider), await failure_of_stream(provider)]

    assert error.transient and not error.rate_limited
    assert error.status == 503 and "overloaded" in error.message
    assert [(e.transient, e.rate_limited, e.status) for e in on_stream] == [(True, False, 503), (True, False, 502)]
    assert len(fake.model_calls) == 3  # the engine retries, not the client


async def test_429_with_a_retry_after_header(fake: Any, provider: Provider) -> None:
    fake.push(Fail(429, "Quota exceeded", headers={"Retry-After": "12"}))

    error = await failure_of_json(provider)

    assert error.transient and error.rate_limited
    assert error.code == "provider_rate_limited"
    assert error.retry_after == 12.0


async def test_stream_cut_mid_way_raises_transient_from_the_iteration(fake: Any, provider: Provider) -> None:
    fake.push(Stream(["one ", "two ", "three"], cut_after=2))
    received: list[str] = []

    with pytest.raises(ProviderError) as caught:
        async for piece in provider.stream_text(PROMPT):
            received.append(piece.text)

    assert caught.value.transient
    assert received == ["one ", "two "]


async def test_stream_that_ends_without_a_finish_is_transient(fake: Any, provider: Provider) -> None:
    fake.push(Stream(["one ", "two"], unfinished=True))

    error = await failure_of_stream(provider)

    assert error.transient and "ended before" in error.message


async def test_unreachable_server_is_transient(backend: Backend) -> None:
    with backend.fake() as server:
        closed_url = server.base_url  # nothing listens here once the server stops
    provider = backend.make(closed_url, backend.model, backend.key, 5)
    try:
        error = await failure_of_json(provider)
        on_stream = await failure_of_stream(provider)
    finally:
        await provider.aclose()

    assert error.transient and on_stream.transient


async def test_json_call_times_out_as_a_whole(fake: Any, other_provider: OtherProvider) -> None:
    fake.push(Hang())
    async with other_provider(timeout=0.3) as provider:
        error = await failure_of_json(provider)

    assert error.transient and "0.3" in error.message
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=1.0)


async def test_stream_times_out_when_silent_between_chunks_not_over_its_length(
    backend: Backend, fake: Any, other_provider: OtherProvider
) -> None:
    # Longer in total than the timeout, but never silent for that long.
    fake.push(Stream(["a", "b", "c", "d", "e", "f"], delay=0.2))
    fake.push(Stream(["a", "b"], hang_after=1))
    received: list[str] = []
    async with other_provider(timeout=1.0) as provider:
        pieces = await collect(provider)
        with pytest.raises(ProviderError) as caught:
            async for piece in provider.stream_text(PROMPT):
                received.append(piece.text)

    assert "".join(p.text for p in pieces) == "abcdef"
    assert received == ["a"]
    assert caught.value.transient and backend.silent_stream in caught.value.message
    await fake.wait_until(lambda: fake.open_connections == 0, timeout=1.0)


# --- Fatal failures ---------------------------------------------------------------------


async def test_wrong_api_key_is_fatal_and_says_to_check_the_key(
    backend: Backend, other_provider: OtherProvider
) -> None:
    async with other_provider(key="wrong-key") as provider:
        error = await failure_of_json(provider)

    assert not error.transient and error.status == backend.wrong_key_status
    assert "API key" in error.message and backend.key_variable in error.message


async def test_unknown_model_is_fatal_and_names_the_model(backend: Backend, other_provider: OtherProvider) -> None:
    async with other_provider(model="model-nope") as provider:
        error = await failure_of_json(provider)
        on_stream = await failure_of_stream(provider)

    for failure in (error, on_stream):
        assert not failure.transient and failure.status == 404
        assert '"model-nope"' in failure.message and backend.model_variable in failure.message


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_fatal_with_a_hint(
    backend: Backend, fake: Any, provider: Provider, status: int
) -> None:
    fake.push(Fail(status, "Nope."))

    error = await failure_of_json(provider)

    assert not error.transient and not error.rate_limited
    assert error.status == status
    assert backend.hints[status] in error.message and "Nope." in error.message
    assert len(fake.model_calls) == 1


# --- Stopping a stream ------------------------------------------------------------------


async def test_cancelling_the_reading_task_closes_the_upstream_connection(fake: Any, provider: Provider) -> None:
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


async def test_cancel_while_waiting_for_the_first_chunk_closes_the_connection(fake: Any, provider: Provider) -> None:
    fake.push(Hang())
    task = asyncio.create_task(collect(provider))
    await fake.wait_until(lambda: len(fake.model_calls) == 1, timeout=5)  # the request is in

    task.cancel()
    await asyncio.wait({task}, timeout=5)

    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)


async def test_closing_the_iterator_early_closes_the_upstream_connection(fake: Any, provider: Provider) -> None:
    fake.push(Stream(["first ", "second"], hang_after=1))
    stream = provider.stream_text(PROMPT)

    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    await fake.wait_until(lambda: fake.open_connections == 0 and fake.abandoned == 1, timeout=1.0)


# --- Settings ---------------------------------------------------------------------------


def test_factory_rejects_an_unknown_provider() -> None:
    with pytest.raises(SettingsError, match="Unknown provider"):
        build_provider(Settings(provider="unknown"))


def test_factory_refuses_gemini_without_a_key() -> None:
    with pytest.raises(SettingsError, match="GEMINI_API_KEY"):
        build_provider(Settings(provider="gemini", gemini_api_key=None))


# --- Gemini only ------------------------------------------------------------------------

GEMINI = BACKENDS["gemini"]


@pytest.fixture
def gemini_fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=GEMINI.key, models=[GEMINI.model]) as server:
        yield server


@pytest.fixture
async def gemini(gemini_fake: FakeGemini) -> AsyncIterator[Provider]:
    provider = GEMINI.make(gemini_fake.base_url, GEMINI.model, GEMINI.key, 5)
    yield provider
    await provider.aclose()


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
def test_gemini_a_version_at_the_end_of_the_base_url_picks_the_api_version(
    base_url: str | None, expected: tuple[str | None, str]
) -> None:
    assert split_base_url(base_url) == expected


async def test_gemini_base_url_with_a_version_calls_that_version(gemini_fake: FakeGemini) -> None:
    provider = GEMINI.make(f"{gemini_fake.base_url}/v1", GEMINI.model, GEMINI.key, 5)
    try:
        await provider.generate_json(PROMPT, Outline)
    finally:
        await provider.aclose()

    assert gemini_fake.model_calls[0].path == f"/v1/models/{GEMINI.model}:generateContent"


async def test_gemini_429_with_retry_info_in_the_body(gemini_fake: FakeGemini, gemini: Provider) -> None:
    gemini_fake.push(Fail(429, "Quota exceeded", retry_delay="7.5s"), Fail(429, retry_delay="3s"))

    error = await failure_of_json(gemini)
    on_stream = await failure_of_stream(gemini)

    assert error.rate_limited and error.retry_after == 7.5
    assert on_stream.rate_limited and on_stream.retry_after == 3.0


# --- OpenAI-compatible only -------------------------------------------------------------

OPENAI = BACKENDS["openai"]


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=OPENAI.key, models=[OPENAI.model]) as server:
        yield server


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
def test_openai_base_url_with_or_without_the_version(base_url: str, expected: str) -> None:
    assert chat_completions_url(base_url) == expected


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
async def test_openai_base_url_forms_reach_the_server(openai_fake: FakeOpenAI, suffix: str) -> None:
    provider = OPENAI.make(openai_fake.base_url + suffix, OPENAI.model, OPENAI.key, 5)
    try:
        await provider.generate_json(PROMPT, Outline)
    finally:
        await provider.aclose()
    assert openai_fake.model_calls[0].path == "/v1/chat/completions"


async def test_openai_a_server_under_a_path_prefix() -> None:
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


async def test_openai_429_with_retry_after_ms_on_a_stream(openai_fake: FakeOpenAI) -> None:
    openai_fake.push(Fail(429, headers={"retry-after-ms": "1500"}))
    provider = OPENAI.make(openai_fake.base_url, OPENAI.model, OPENAI.key, 5)
    try:
        error = await failure_of_stream(provider)
    finally:
        await provider.aclose()

    assert error.rate_limited and error.transient and error.retry_after == 1.5
