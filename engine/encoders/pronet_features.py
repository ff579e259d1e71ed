"""ProNet's input features, in plain torch (Wang et al., ICLR 2023; the layout of DIG's implementation).

Node features (computed per chain from clean coordinates, as upstream OneProt's data loader does):
  residue type   index into AA_ORDER (20 = unknown or masked), one-hot over NUM_AA_TYPES = 26 slots
  backbone       phi, psi, omega of the N-CA-C chain as (cos x3, sin x3); 0 at the chain ends
  side chain     the first four side-chain torsions chi1..chi4 as (sin x4, cos x4); angle 0 where an atom is absent

Edge features (per directed edge j -> i of the CA radius graph, computed in the forward pass):
  dist           |CA_i - CA_j|
  theta, phi     polar angles of CA_j seen from CA_i in the frame of CA_{i-1}, CA_{i+1}
  tau            (amino-acid level) dihedral between the planes (i, j, i-1) and (i, j, j-1)
  euler angles   (backbone / all-atom levels) the three Euler angles between the N-CA-C frames of i and j
  position       sinusoidal code of the sequence offset j - i

Distances and angles are expanded on spherical Bessel functions times real spherical harmonics
(`theta_phi_basis`, `angle_basis`): j_l(z_ln * d / cutoff), normalised, with Y_lm of the angles.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

AA_ORDER = "ARNDCQEGHILKMFPSTWYV"  # upstream OneProt's residue numbering; X and masked residues are 20
UNKNOWN_TYPE = 20
NUM_AA_TYPES = 26
NUM_BB_EMBS = 6
NUM_SIDE_CHAIN_EMBS = 8
_AA_INDEX = {c: i for i, c in enumerate(AA_ORDER)}


def residue_types(sequence: str) -> torch.Tensor:
    """Residue letters -> (L,) long type indices (anything outside the 20 standard letters -> 20)."""
    return torch.tensor([_AA_INDEX.get(c, UNKNOWN_TYPE) for c in sequence.upper()], dtype=torch.long)


# ---- torsions ------------------------------------------------------------------------------------
def torsion(v1: torch.Tensor, v2: torch.Tensor, v3: torch.Tensor) -> torch.Tensor:
    """Dihedral angle of three consecutive bond vectors (..., 3) -> (...); NaN-free (undefined -> 0)."""
    n1 = torch.cross(v1, v2, dim=-1)
    n2 = torch.cross(v2, v3, dim=-1)
    a = (n1 * n2).sum(-1)
    b = torch.nan_to_num((torch.cross(n1, n2, dim=-1) * v2).sum(-1) / v2.norm(dim=-1))
    return torch.nan_to_num(torch.atan2(b, a))


def backbone_embs(n: torch.Tensor, ca: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(L, 3) N, CA, C -> (L, 6) [cos phi, cos psi, cos omega, sin phi, sin psi, sin omega] along the chain."""
    x = torch.stack([n, ca, c], dim=1).reshape(-1, 3)  # N0 CA0 C0 N1 CA1 ...
    u = x[1:] - x[:-1]
    u = torch.nan_to_num(u / u.norm(dim=-1, keepdim=True))
    ang = torsion(u[:-2], u[1:-1], u[2:])  # (3L - 3,): psi_0, omega_0, phi_1, psi_1, ...
    ang = torch.nn.functional.pad(ang, (1, 2)).reshape(-1, 3)  # phi of the first, psi/omega of the last = 0
    return torch.nan_to_num(torch.cat([torch.cos(ang), torch.sin(ang)], dim=1))


def side_chain_embs(n: torch.Tensor, ca: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """(L, 3) N, CA and (L, 6, 3) side-chain slots [CB, G, D, E, Z, NH1] -> (L, 8) sin/cos of chi1..chi4."""
    cb, g, d, e, z = side[:, 0], side[:, 1], side[:, 2], side[:, 3], side[:, 4]
    v = [ca - n, cb - ca, g - cb, d - g, e - d, z - e]
    chi = torch.stack([torsion(v[k], v[k + 1], v[k + 2]) for k in range(4)], dim=1)  # (L, 4)
    # a torsion over an absent atom counts as 0 (sin 0, cos 1), as upstream's NaN handling leaves it
    return torch.cat([torch.sin(chi), torch.cos(chi)], dim=1)


# ---- radial and angular bases --------------------------------------------------------------------
def spherical_jn(order: int, x: torch.Tensor) -> torch.Tensor:
    """Spherical Bessel function of the first kind j_order(x), x > 0 (upward recurrence)."""
    j0 = torch.sin(x) / x
    if order == 0:
        return j0
    j1 = torch.sin(x) / x**2 - torch.cos(x) / x
    for l in range(1, order):
        j0, j1 = j1, (2 * l + 1) / x * j1 - j0
    return j1


@lru_cache(maxsize=8)
def bessel_zeros_and_norms(num_spherical: int, num_radial: int) -> tuple[np.ndarray, np.ndarray]:
    """(orders, radials) zeros z_ln of j_l (float32, as DIG stores them) and normalisers 1/sqrt(j_{l+1}(z)^2 / 2)."""
    from scipy.optimize import brentq
    from scipy.special import spherical_jn as sjn

    zeros = np.zeros((num_spherical, num_radial), dtype=np.float32)
    points = np.arange(1, num_radial + num_spherical) * np.pi  # zeros of j_0
    zeros[0] = points[:num_radial]
    for l in range(1, num_spherical):
        # the zeros of j_l interlace with those of j_{l-1}: one in each gap
        points = np.array([brentq(lambda r: sjn(l, r), points[j], points[j + 1]) for j in range(len(points) - 1)])
        zeros[l] = points[:num_radial]
    norms = np.array([[1.0 / math.sqrt(0.5 * sjn(l + 1, float(zeros[l, i])) ** 2) for i in range(num_radial)]
                      for l in range(num_spherical)])
    return zeros, norms


def radial_basis(dist: torch.Tensor, cutoff: float, num_spherical: int, num_radial: int) -> torch.Tensor:
    """(E,) distances -> (E, num_spherical, num_radial) normalised j_l(z_ln * d / cutoff)."""
    zeros, norms = bessel_zeros_and_norms(num_spherical, num_radial)
    x = (dist / cutoff).unsqueeze(-1)  # (E, 1)
    out = []
    for l in range(num_spherical):
        z = torch.as_tensor(zeros[l], dtype=dist.dtype, device=dist.device)
        nrm = torch.as_tensor(norms[l], dtype=dist.dtype, device=dist.device)
        out.append(nrm * spherical_jn(l, z * x))
    return torch.stack(out, dim=1)


def _legendre(l: int, x: torch.Tensor) -> torch.Tensor:
    p0, p1 = torch.ones_like(x), x
    if l == 0:
        return p0
    for k in range(2, l + 1):
        p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
    return p1


def angle_basis(dist: torch.Tensor, angle: torch.Tensor, cutoff: float, num_spherical: int,
                num_radial: int) -> torch.Tensor:
    """(E,) distance and angle -> (E, num_spherical * num_radial): radial_l,n * Y_l0(angle)."""
    rbf = radial_basis(dist, cutoff, num_spherical, num_radial)
    cos = torch.cos(angle)
    sph = torch.stack([math.sqrt((2 * l + 1) / (4 * math.pi)) * _legendre(l, cos) for l in range(num_spherical)], 1)
    return (rbf * sph.unsqueeze(-1)).reshape(len(dist), -1)


def theta_phi_basis(dist: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor, cutoff: float,
                    num_spherical: int, num_radial: int) -> torch.Tensor:
    """(E,) distance, polar and azimuthal angle -> (E, num_spherical^2 * num_radial).

    Rows per degree l and order m in DIG's order (m = 0, 1, ..., l, -1, ..., -l), each times the
    radial functions of degree l. Real harmonics are written out for l <= 1 (ProNet uses num_spherical 2).
    """
    if num_spherical > 2:
        raise ValueError("theta_phi_basis supports num_spherical <= 2")
    rbf = radial_basis(dist, cutoff, num_spherical, num_radial)  # (E, n, k)
    c1 = math.sqrt(3 / (4 * math.pi))
    rows = [(0, torch.full_like(theta, 1 / math.sqrt(4 * math.pi)))]
    if num_spherical == 2:
        rows += [(1, c1 * torch.cos(theta)), (1, c1 * torch.sin(theta) * torch.cos(phi)),
                 (1, c1 * torch.sin(theta) * torch.sin(phi))]
    return torch.cat([rbf[:, l] * y.unsqueeze(-1) for l, y in rows], dim=1)


def position_code(offset: torch.Tensor, size: int = 16) -> torch.Tensor:
    """(E,) integer sequence offsets -> (E, size) [cos, sin] sinusoids (Transformer-style frequencies)."""
    freq = torch.exp(torch.arange(0, size, 2, dtype=torch.float32, device=offset.device) * -(math.log(10000.0) / size))
    ang = offset.unsqueeze(-1).float() * freq
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)


# ---- edge geometry -------------------------------------------------------------------------------
def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cross(a, b, dim=-1)


def chain_neighbours(batch: torch.Tensor, num_graphs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Previous and next node of every node within its own graph, wrapping at the graph's ends."""
    counts = torch.bincount(batch, minlength=num_graphs)
    start = (torch.cumsum(counts, 0) - counts)[batch]
    end = start + counts[batch] - 1
    idx = torch.arange(len(batch), device=batch.device)
    prev = torch.where(idx > start, idx - 1, end)
    nxt = torch.where(idx < end, idx + 1, start)
    return prev, nxt


def polar_angles(pos: torch.Tensor, i: torch.Tensor, j: torch.Tensor, prev: torch.Tensor,
                 nxt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """theta, phi of CA_j around CA_i, referenced to CA_{i-1} (polar axis) and the plane with CA_{i+1}."""
    rij, r0, r1 = pos[j] - pos[i], pos[prev[i]] - pos[i], pos[nxt[i]] - pos[i]
    theta = torch.atan2(_cross(rij, r0).norm(dim=-1), (rij * r0).sum(-1))
    plane1, plane2 = _cross(r0, r1), _cross(r0, rij)
    a = (plane1 * plane2).sum(-1)
    b = (_cross(plane1, plane2) * r0).sum(-1) / r0.norm(dim=-1)
    return theta, torch.atan2(b, a)


def euler_angles(pos: torch.Tensor, pos_n: torch.Tensor, pos_c: torch.Tensor, i: torch.Tensor,
                 j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three Euler angles between the backbone frames (x: CA->N, z: normal of the N-CA-C plane) of i and j."""
    x1 = pos_n[i] - pos[i]
    z1 = _cross(x1, _cross(x1, pos_c[i] - pos[i]))
    x2 = pos_n[j] - pos[j]
    z2 = _cross(x2, _cross(x2, pos_c[j] - pos[j]))
    node_line = _cross(z1, z2)
    a1 = torch.atan2((_cross(x1, node_line) * z1).sum(-1) / (z1.norm(dim=-1) + 1e-7), (x1 * node_line).sum(-1))
    a2 = torch.atan2(_cross(z1, z2).norm(dim=-1), (z1 * z2).sum(-1))
    a3 = torch.atan2((_cross(node_line, x2) * z2).sum(-1) / (z2.norm(dim=-1) + 1e-7), (node_line * x2).sum(-1))
    return a1, a2, a3


def residue_dihedral(pos: torch.Tensor, i: torch.Tensor, j: torch.Tensor, prev: torch.Tensor,
                     nxt: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """tau: dihedral between the planes (i, j, i-1) and (i, j, j-1), using i+1 / j+1 where i-1 is j (or j-1 is i)."""
    ref_i = torch.where(prev[i] == j, nxt[i], prev[i])
    ref_j = torch.where(prev[j] == i, nxt[j], prev[j])
    rij = pos[j] - pos[i]
    plane1 = _cross(rij, pos[ref_i] - pos[i])
    plane2 = _cross(rij, pos[ref_j] - pos[j])
    a = (plane1 * plane2).sum(-1)
    b = (_cross(plane1, plane2) * rij).sum(-1) / dist
    return torch.atan2(b, a)
