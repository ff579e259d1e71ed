"""Shared fixtures for explorer tests: one tiny synthetic world per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tiny_world lives beside the tests


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    """Store, checkpoint and embeddings built through the engine's public API (see tiny_world.py)."""
    import torch

    from tiny_world import build_world

    torch.set_num_threads(1)
    return build_world(tmp_path_factory.mktemp("explorer-world"))


@pytest.fixture()
def options(world):
    from explorer.options import AppOptions

    return AppOptions(str(world["store"]), str(world["checkpoint"]), str(world["embeddings"]))


@pytest.fixture()
def fast_projection(monkeypatch):
    """Replace UMAP by a 2-D PCA in unit tests of views (UMAP itself runs in the served/browser tests)."""
    import engine.projection as P

    from tiny_world import pca_project

    monkeypatch.setattr(P, "project", pca_project)
    return pca_project
