"""engine.evaluate.report: Markdown, escaped HTML and PNG plots from a result dict."""

import numpy as np

from engine.evaluate.evolution import family_similarity
from engine.evaluate.report import write_report


def fake_result():
    metrics = {"R@1": 0.5, "R@10": 0.9, "R@100": 1.0, "median_rank": 1.5, "MRR": 0.6, "n_queries": 20,
               "n_candidates": 20, "chance": {"R@1": 0.05, "R@10": 0.5, "R@100": 1.0}}
    rng = np.random.default_rng(0)
    evo = family_similarity(rng.standard_normal((30, 4)), [f"F{i % 3}" for i in range(30)])
    return {
        "split": "test", "rules": {"ties": "<b>pessimistic</b> & stated"},
        "retrieval": {"sequence->text": {**metrics, "kind": "trained"}, "text->structure": {**metrics, "kind": "emergent"}},
        "baselines": {"unaligned": {"sequence->text": metrics, "text->structure": metrics},
                      "random": {"sequence->text": metrics, "text->structure": metrics},
                      "classical": {},
                      "tmscore": {"text->structure": {**metrics, "n_candidates": 10, "R@10": 0.7}},
                      "length": {"sequence->text": {**metrics, "R@10": 0.825}}},
        "evolution": {"sequence": {"aligned": evo, "unaligned": evo}},
        "probes": {"family": {"aligned": {"accuracy": 0.8, "accuracy_std": 0.1, "macro_f1": 0.7, "majority_class": 0.4,
                                          "n": 30, "classes": 3}, "unaligned_encoder": None}},
    }


def test_report_files_tables_and_escaping(tmp_path):
    html_path = write_report(fake_result(), tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    html = html_path.read_text()
    assert "| sequence->text | trained | 0.500 | 0.900 |" in md
    assert "text->structure" in md and "emergent" in md
    assert "TM-score R@10" in md and "| 0.700 (n=10) |" in md  # a sampled TM-score baseline says on how many
    assert "length R@10" in md and "| 0.825 |" in md
    assert "<b>pessimistic</b>" not in html and "&lt;b&gt;pessimistic&lt;/b&gt; &amp; stated" in html
    assert "text-&gt;structure" in html
    for png in ("retrieval_r10.png", "evolution_sequence.png"):
        data = (tmp_path / "rep" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and png in html
