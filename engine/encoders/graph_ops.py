"""Graph-batch helpers for the residue-graph GNN, in plain torch.

A batch of graphs is stored disjointly: node rows of graph 0, then graph 1, ... with `batch[i]` the
graph of node i (sorted). These three functions are all the GNN needs. They are written here rather
than taken from torch-geometric because importing that package costs ~5 s on a 2-core machine
(it imports its datasets, LLM helpers and torch._dynamo), which the explorer's cold start cannot
afford for two small functions.
"""

from __future__ import annotations

import torch


def radius_graph(pos: torch.Tensor, batch: torch.Tensor, cutoff: float, max_neighbors: int) -> torch.Tensor:
    """Edges (2, E) [source j, target i] between points of the same graph closer than `cutoff`.

    Each target keeps at most `max_neighbors` sources, nearest first. Per-graph torch.cdist, so
    torch-cluster is not needed.
    """
    edges = []
    bounds = torch.cat([torch.zeros(1, dtype=torch.long, device=batch.device), torch.bincount(batch).cumsum(0)]).tolist()
    for g in range(len(bounds) - 1):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        if hi - lo < 2:
            continue
        d = torch.cdist(pos[lo:hi], pos[lo:hi])  # (n, n)
        d.fill_diagonal_(float("inf"))
        k = min(max_neighbors, hi - lo - 1)
        dist, nbr = d.topk(k, dim=1, largest=False)  # (n, k) nearest first
        keep = dist < cutoff
        target = torch.arange(hi - lo, device=pos.device).unsqueeze(1).expand_as(nbr)[keep]
        edges.append(torch.stack([nbr[keep], target]) + lo)
    if not edges:
        return torch.zeros(2, 0, dtype=torch.long, device=pos.device)
    return torch.cat(edges, dim=1)


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Row-wise sum of `src` (E, ...) grouped by `index` (E,) -> (dim_size, ...); empty groups are 0."""
    return src.new_zeros((dim_size, *src.shape[1:])).index_add_(0, index, src)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Row-wise mean of `src` (E, H) grouped by `index` (E,) -> (dim_size, H); empty groups are 0."""
    out = src.new_zeros((dim_size, *src.shape[1:])).index_add_(0, index, src)
    count = torch.bincount(index, minlength=dim_size).clamp_(min=1).to(src.dtype)
    return out / count.view(-1, *([1] * (src.dim() - 1)))


def to_dense_batch(x: torch.Tensor, batch: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint node rows (N, H) -> padded (B, L, H) with L the largest graph, and its (B, L) mask.

    `batch` must be sorted (graphs stored one after another); padding rows are 0.
    """
    counts = torch.bincount(batch, minlength=batch_size)
    length = int(counts.max()) if counts.numel() else 0
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(batch), device=x.device) - starts[batch]
    out = x.new_zeros((batch_size, length, *x.shape[1:]))
    mask = torch.zeros((batch_size, length), dtype=torch.bool, device=x.device)
    out[batch, pos] = x
    mask[batch, pos] = True
    return out, mask
