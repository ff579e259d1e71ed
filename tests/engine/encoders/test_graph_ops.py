import torch

from engine.encoders.graph_ops import scatter_mean, to_dense_batch


def test_scatter_mean_matches_a_loop_and_leaves_empty_groups_zero():
    g = torch.Generator().manual_seed(1)
    src = torch.randn(40, 3, generator=g)
    index = torch.randint(0, 6, (40,), generator=g)
    index[index == 4] = 5  # group 4 is empty
    out = scatter_mean(src, index, dim_size=7)
    for k in range(7):
        rows = src[index == k]
        want = rows.mean(0) if len(rows) else torch.zeros(3)
        assert torch.allclose(out[k], want, atol=1e-6), k


def test_scatter_mean_backpropagates():
    src = torch.randn(5, 2, requires_grad=True)
    scatter_mean(src, torch.tensor([0, 0, 1, 1, 1]), dim_size=2).sum().backward()
    assert torch.allclose(src.grad, torch.tensor([[0.5] * 2] * 2 + [[1 / 3] * 2] * 3))


def test_to_dense_batch_pads_each_graph_in_order():
    x = torch.arange(12, dtype=torch.float32).view(6, 2)
    batch = torch.tensor([0, 0, 0, 2, 2, 3])  # graph 1 has no node
    dense, mask = to_dense_batch(x, batch, batch_size=4)
    assert dense.shape == (4, 3, 2) and mask.shape == (4, 3)
    assert mask.tolist() == [[True, True, True], [False] * 3, [True, True, False], [True, False, False]]
    assert torch.equal(dense[0], x[:3])
    assert torch.equal(dense[2, :2], x[3:5]) and torch.equal(dense[3, 0], x[5])
    assert dense[~mask].abs().sum() == 0
