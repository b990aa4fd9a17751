"""Who gives way when a free node is full: the fair-share rule on its own."""

from __future__ import annotations

from sharedllm.node.fair_share import Capacity, Holding, to_reclaim

MB = 1 << 20
NODE = Capacity(cache_bytes=32 * MB, sessions=8)


def held(sid: str, client: str, mb: int, idle_s: float = 60.0) -> Holding:
    return Holding(sid, client, mb * MB, idle_s)


def test_nothing_is_taken_while_the_newcomer_fits():
    hog = [held("h1", "hog", 20)]
    assert to_reclaim(hog, "new", 8 * MB, NODE, idle_s=10) == []


def test_a_lone_client_may_fill_an_idle_node_and_gives_way_to_a_second():
    hog = [held("h1", "hog", 30)]
    # Two clients present: each is owed 16 MB; the newcomer asks 8, the hog holds 30.
    assert to_reclaim(hog, "new", 8 * MB, NODE, idle_s=10) == ["h1"]


def test_a_newcomer_asking_more_than_its_share_gets_nothing():
    hog = [held("h1", "hog", 30)]
    assert to_reclaim(hog, "new", 17 * MB, NODE, idle_s=10) == []


def test_a_session_in_use_is_never_taken():
    hog = [held("h1", "hog", 30, idle_s=2.0)]
    assert to_reclaim(hog, "new", 8 * MB, NODE, idle_s=10) == []


def test_the_longest_idle_session_of_the_most_over_client_goes_first():
    sessions = [
        held("a1", "a", 4, idle_s=30),
        held("a2", "a", 4, idle_s=90),
        held("b1", "b", 12, idle_s=20),  # b is the most over its share (32/3 MB each)
        held("b2", "b", 10, idle_s=80),
    ]
    assert to_reclaim(sessions, "new", 6 * MB, NODE, idle_s=10) == ["b2"]


def test_only_as_much_is_taken_as_the_newcomer_needs():
    sessions = [held("a1", "a", 15), held("b1", "b", 15, idle_s=61)]
    # Three clients: each owed 10.7 MB; both are over, and one giving way is enough.
    assert to_reclaim(sessions, "new", 4 * MB, NODE, idle_s=10) == ["b1"]


def test_a_client_at_its_share_keeps_its_sessions():
    sessions = [held("a1", "a", 8), held("b1", "b", 8), held("c1", "c", 8), held("d1", "d", 8)]
    # Five clients: each owed 6.4 MB; all four are over, so the newcomer's 6 MB comes from one.
    assert len(to_reclaim(sessions, "new", 6 * MB, NODE, idle_s=10)) == 1
    at_share = [held("a1", "a", 16), held("b1", "b", 16, idle_s=1)]
    # Three clients, owed 10.7 MB each: a is over but b's busy session cannot go; a's can.
    assert to_reclaim(at_share, "new", 10 * MB, NODE, idle_s=10) == ["a1"]


def test_slots_count_as_well_as_bytes():
    few = Capacity(cache_bytes=32 * MB, sessions=4)
    hog = [held(f"h{i}", "hog", 1, idle_s=10 + i) for i in range(4)]
    assert to_reclaim(hog, "new", 1 * MB, few, idle_s=10) == ["h3"]


def test_nothing_is_closed_in_vain():
    # The hog's idle session frees 10 MB, not the 16 asked; its busy one cannot go.
    sessions = [held("h1", "hog", 10), held("h2", "hog", 20, idle_s=1)]
    assert to_reclaim(sessions, "new", 16 * MB, NODE, idle_s=10) == []


def test_seeded_random_nodes_keep_the_rule():
    """Over 3,000 random nodes: whatever is taken makes room, comes only from clients over
    their share and idle long enough, and goes only to a newcomer within its share."""
    import random

    rng = random.Random(22)
    taken_any = 0
    for _ in range(3000):
        capacity = Capacity(rng.randint(8, 64) * MB, rng.randint(1, 12))
        sessions: list[Holding] = []
        room = capacity.cache_bytes
        for i in range(rng.randint(0, capacity.sessions)):
            mb = rng.randint(1, max(1, room // MB))
            if mb * MB > room:
                break
            room -= mb * MB
            sessions.append(held(f"s{i}", rng.choice("abcd"), mb, rng.uniform(0, 30)))
        client = rng.choice("abcdn")
        need = rng.randint(1, 32) * MB
        ids = to_reclaim(sessions, client, need, capacity, idle_s=10)
        if not ids:
            continue
        taken_any += 1
        clients = {h.client for h in sessions} | {client}
        share = capacity.cache_bytes / len(clients)
        own = sum(h.reserved for h in sessions if h.client == client)
        assert own + need <= share
        by_id = {h.session_id: h for h in sessions}
        assert len(set(ids)) == len(ids)
        for sid in ids:
            gone = by_id[sid]
            assert gone.client != client and gone.idle_s >= 10
            theirs = [h for h in sessions if h.client == gone.client]
            slots = capacity.sessions / len(clients)
            assert sum(h.reserved for h in theirs) > share or len(theirs) > slots
        kept = [h for h in sessions if h.session_id not in ids]
        assert sum(h.reserved for h in kept) + need <= capacity.cache_bytes
        assert len(kept) + 1 <= capacity.sessions
    assert taken_any > 100  # the rule was exercised, not only its refusals
