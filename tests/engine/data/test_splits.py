"""Identity clustering and cluster-level splits: no leakage, identical sequences together."""

import random

import pytest

from engine.data.splits import assign_splits, cluster_sequences, identity



@pytest.fixture(scope="module")
def families(seqgen):
    # members 10-30 % mutated from the root: >= 50 % identical to it and to each other
    return seqgen.families(seed=7, n=30, max_length=250, max_mutation=0.3)


def test_identity_measure(seqgen):
    assert identity("MKTAYIAKQRQISFVKSHFSRQ", "MKTAYIAKQRQISFVKSHFSRQ") == 1.0
    rng = random.Random(1)
    a, b = seqgen.random(rng, 200), seqgen.random(rng, 200)
    assert identity(a, b) < 0.2
    assert 0.6 < identity(a, seqgen.mutate(rng, a, 0.3)) <= 0.75


def test_families_recovered(families):
    seqs = [s for fam in families for s in fam]
    labels = cluster_sequences(seqs, threshold=0.5)
    for k, fam in enumerate(families):
        assert len(set(labels[k * 5:(k + 1) * 5])) == 1, f"family {k} split across clusters"
    assert len(set(labels)) == len(families)  # random roots never merge


def test_identical_sequences_share_cluster(families):
    seqs = [families[0][0], families[1][0], families[0][0], families[2][0], families[0][0].lower().upper()]
    labels = cluster_sequences(seqs)
    assert labels[0] == labels[2] == labels[4]
    assert len({labels[0], labels[1], labels[3]}) == 3


def test_no_cluster_spans_two_splits(families):
    seqs = [s for fam in families for s in fam]
    clusters = cluster_sequences(seqs)
    splits = assign_splits(clusters, (0.8, 0.1, 0.1), seed=3)
    where = {}
    for c, s in zip(clusters, splits):
        assert where.setdefault(c, s) == s
    counts = {s: splits.count(s) for s in ("train", "valid", "test")}
    assert counts["valid"] > 0 and counts["test"] > 0 and counts["train"] > counts["valid"]
    assert splits == assign_splits(clusters, (0.8, 0.1, 0.1), seed=3)  # seeded
    assert splits != assign_splits(clusters, (0.8, 0.1, 0.1), seed=4)


def test_fractions_followed_for_many_small_clusters():
    clusters = list(range(1000))
    splits = assign_splits(clusters, (0.8, 0.1, 0.1), seed=0)
    assert abs(splits.count("train") - 800) <= 2 and abs(splits.count("test") - 100) <= 2


def test_member_linkage_closes_the_greedy_gap(seqgen):
    # A ~ B and B ~ C at ~60 % identity, A ~ C below 50 %: greedy (rep-only) clustering leaves C apart
    rng = random.Random(11)
    a = seqgen.random(rng, 300)
    b = seqgen.mutate(rng, a, 0.4)
    c = seqgen.mutate(rng, b, 0.4)
    assert identity(a, b) >= 0.5 and identity(b, c) >= 0.5 and identity(a, c) < 0.5
    greedy = cluster_sequences([a, b, c], link_members=False)
    assert greedy[0] == greedy[1] != greedy[2]
    linked = cluster_sequences([a, b, c])
    assert len(set(linked)) == 1


def test_stratified_dealing_spreads_a_scarce_stratum():
    # 1,000 bulk singletons, and 60 'structure' proteins in 12 clusters of 5 that chance could put in one split
    clusters = list(range(1000)) + [1000 + i // 5 for i in range(60)]
    strata = [""] * 1000 + ["structure"] * 60
    plain = assign_splits(clusters, (0.8, 0.1, 0.1), seed=3)
    strat = assign_splits(clusters, (0.8, 0.1, 0.1), seed=3, strata=strata, strata_fractions=(0.5, 0.25, 0.25))
    scarce = [s for s, st in zip(strat, strata) if st]
    assert scarce.count("train") == 30 and scarce.count("valid") == 15 and scarce.count("test") == 15
    assert all(len({strat[i] for i in range(1000 + 5 * c, 1005 + 5 * c)}) == 1 for c in range(12))  # whole clusters
    assert abs(strat.count("train") - 848) <= 3  # the bulk still fills the proteins' 80/10/10
    assert assign_splits(clusters, (0.8, 0.1, 0.1), seed=3, strata=[""] * 1060) == plain  # no stratum: unchanged


def test_fixed_clusters_keep_their_split_and_count():
    clusters = list(range(100)) + [100 + i // 2 for i in range(40)]
    strata = [""] * 100 + ["family:x"] * 40
    fixed = {100: "test", 101: "test", 102: "valid"}  # 6 of the stratum already held out
    out = assign_splits(clusters, (0.8, 0.1, 0.1), seed=0, strata=strata, strata_fractions=(0.7, 0.15, 0.15),
                        fixed=fixed)
    assert out[100:102] == ["test", "test"] and out[104:106] == ["valid", "valid"]
    scarce = out[100:]
    assert scarce.count("test") == 6 and scarce.count("valid") == 6  # 15 % of 40, with the fixed ones counted
    with pytest.raises(Exception, match="strata"):
        assign_splits(clusters, strata=["x"])
