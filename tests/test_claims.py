"""The dispatcher's claim across processes: a queue head that another process is taking
right now does not cost this one its turn; it takes that user's next task instead."""

from __future__ import annotations

import asyncpg
import pytest

from novawrite.db.raw import asyncpg_dsn
from tests.test_group_commit import OWNER, Kit, _insert, kit  # noqa: F401 (kit: the fixture)


async def _pks(kit: Kit) -> list[int]:
    async with kit.db.raw_read() as tx:
        return [r[0] for r in await tx.fetch("SELECT pk FROM tasks ORDER BY pk")]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_head_another_process_is_claiming_gives_way_to_the_users_next_task(kit: Kit, database_url: str) -> None:
    for novel_id in kit.novel_ids:
        await _insert(kit, novel_id)
    head, second, third = await _pks(kit)
    other = await asyncpg.connect(asyncpg_dsn(database_url))  # another process, in the middle of its claim
    try:
        async with other.transaction():
            await other.execute("SELECT pk FROM tasks WHERE pk = $1 FOR UPDATE", head)
            (taken,) = await kit.store.claim_oldest([kit.user_id], OWNER, 30.0)
            assert taken.pk == second
            # the same user twice: the next task each time, never one that is taken
            assert [t.pk for t in await kit.store.claim_oldest([kit.user_id] * 2, OWNER, 30.0)] == [third]
        # the other process let the head go (its claim rolled back): it is this user's head again
        (taken,) = await kit.store.claim_oldest([kit.user_id], OWNER, 30.0)
        assert taken.pk == head
    finally:
        await other.close()


async def test_a_claim_takes_each_users_oldest_task(kit: Kit) -> None:
    for novel_id in kit.novel_ids:
        await _insert(kit, novel_id)
    first, second, _third = await _pks(kit)
    claimed = await kit.store.claim_oldest([kit.user_id], OWNER, 30.0)
    assert [t.pk for t in claimed] == [first]
    assert claimed[0].user_id == kit.user_id and claimed[0].seq == 2
    assert [t.pk for t in await kit.store.claim_oldest([kit.user_id], OWNER, 30.0)] == [second]
