"""A synthetic chain with backbone and side-chain atoms, shared by the upstream tests."""

import numpy as np

from engine.modality import StructureInput


def chain_item(n: int = 24, seed: int = 0) -> StructureInput:
    """A random chain with N/CA/C/O and six side-chain slots (residue 3 without a side chain)."""
    rng = np.random.default_rng(seed)
    ca = np.cumsum(rng.normal(0, 2.2, (n, 3)), 0).astype(np.float32)
    coords = np.stack([ca + rng.normal(0, 0.8, (n, 3)), ca, ca + rng.normal(0, 0.8, (n, 3)),
                       ca + rng.normal(0, 1.2, (n, 3))], 1).astype(np.float32)
    side = (ca[:, None] + rng.normal(0, 1.5, (n, 6, 3))).astype(np.float32)
    side[3] = np.nan
    seq = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), n))
    return StructureInput(seq, coords, side_chains=side)
