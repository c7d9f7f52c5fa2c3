"""Who may call, from each process's copy of the account: one read per user at a time, and a
read that a change overtook is not kept."""

from __future__ import annotations

import asyncio
from typing import Any

from novawrite.services.users import Account, Users
from tests.conftest import Api
from tests.waiting import until


class CountedReads:
    """Wraps ``Users._load`` (the real query): counts the reads and can hold them until released."""

    def __init__(self, users: Users) -> None:
        self.real = users._load
        self.count = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()
        users._load = self  # type: ignore[method-assign]

    async def __call__(self, user_id: int) -> Account | None:
        self.count += 1
        self.started.set()
        await self.gate.wait()
        return await self.real(user_id)


async def _user(api: Api) -> tuple[Users, int, CountedReads]:
    """A registered user, no copy of the account kept, and its reads counted and held until released."""
    h = await api.register()
    r = await api.client.get("/api/auth/me", headers=h)
    assert r.status_code == 200, r.text
    users: Users = api.services.users
    users.forget(None)
    reads = CountedReads(users)
    reads.gate.clear()
    return users, int(r.json()["id"]), reads


async def test_requests_that_miss_at_once_share_one_read_and_the_copy_is_kept(api: Api) -> None:
    users, user_id, reads = await _user(api)
    waiting: list[asyncio.Future[Any]] = []
    for _ in range(5):  # requests keep arriving while the read is in flight, as polls under load do
        waiting.append(asyncio.ensure_future(users.account(user_id)))
        await asyncio.sleep(0)  # one turn: this request has missed the copy and found the read
    assert reads.started.is_set()
    reads.gate.set()
    accounts = await asyncio.gather(*waiting)
    assert reads.count == 1
    assert all(a is not None and a.id == user_id for a in accounts)
    assert await users.account(user_id) is accounts[0]  # kept: no further read
    assert reads.count == 1


async def test_a_read_overtaken_by_a_change_is_not_kept(api: Api) -> None:
    users, user_id, reads = await _user(api)
    first = asyncio.ensure_future(users.account(user_id))
    await reads.started.wait()
    users.forget(user_id)  # a logout or a password change lands while the read is in flight
    reads.gate.set()
    assert (await first) is not None
    await users.account(user_id)
    assert reads.count == 2  # the overtaken read was not kept: the next request read again


async def test_a_fresh_read_does_not_wait_for_an_older_one(api: Api) -> None:
    users, user_id, reads = await _user(api)
    older = asyncio.ensure_future(users.account(user_id))
    await reads.started.wait()
    fresh = asyncio.ensure_future(users.account(user_id, fresh=True))

    async def second_read() -> bool:
        return reads.count == 2

    await until(second_read, timeout=5, what="the fresh request's own read")
    reads.gate.set()
    await asyncio.gather(older, fresh)
    assert await users.account(user_id) is await fresh  # the fresher read is the one kept
    assert reads.count == 2
