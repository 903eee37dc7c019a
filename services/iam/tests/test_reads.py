"""Where IAM's reads run: bounded ones on the event loop from a snapshot of the last commit, those
that may go through a whole table on the log's thread."""

from __future__ import annotations

import threading

from photoncloud.common.replication import LocalLog
from photoncloud.iam.commands import Cmp, Commit, Insert
from photoncloud.iam.machine import IamStateMachine
from photoncloud.iam.records import Organization
from photoncloud.iam.store import Records, SqliteIamStore


class Watched(SqliteIamStore):
    """Notes the thread each find and count runs on."""

    threads: list[int]

    def find(self, *args, **kwargs):
        self.threads.append(threading.get_ident())
        return super().find(*args, **kwargs)

    def count(self, *args, **kwargs):
        self.threads.append(threading.get_ident())
        return super().count(*args, **kwargs)


async def test_bounded_reads_run_on_the_loop_and_whole_table_reads_on_the_log(tmp_path) -> None:
    store = Watched(tmp_path / "iam.sqlite3")
    store.threads = []
    log = LocalLog(IamStateMachine(store))
    records = Records(log, store)
    loop = threading.get_ident()
    try:
        org = Organization("o1", "acme", "Acme", "", 1.0, 1.0)
        await log.propose(Commit(changes=(Insert(org),)))
        assert await records.get(Organization, "o1") == org  # a point read (get is not watched)
        bounded = [records.find(Organization, [("name", "acme")]), records.find(Organization, limit=1),
                   records.count(Organization, [("id", ["o1", "o2"])])]
        whole = [records.find(Organization), records.find(Organization, [("name", Cmp("prefix", "a"))]),
                 records.count(Organization)]
        assert [await read for read in bounded] == [[org], [org], 1]
        assert store.threads == [loop] * 3
        store.threads.clear()
        assert [await read for read in whole] == [[org], [org], 1]
        assert len(store.threads) == 3 and loop not in store.threads
    finally:
        await log.close()
        await store.close()
