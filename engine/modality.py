"""The modality key set and the in-memory protein record every reader produces.

Every other part of the engine speaks in these names: a store column, an encoder key in the
model's ModuleDicts, a key in a batch dict and in a retrieval pair ("sequence->text").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Modality(str, Enum):
    SEQUENCE = "sequence"
    STRUCTURE = "structure"
    STRUCTURE_TOKENS = "structure_tokens"
    POCKET = "pocket"
    TEXT = "text"

    def __str__(self) -> str:  # so f-strings and JSON keys read "sequence", not "Modality.SEQUENCE"
        return self.value


ANCHOR = Modality.SEQUENCE
ALL_MODALITIES: tuple[Modality, ...] = tuple(Modality)
BACKBONE_ATOMS: tuple[str, ...] = ("N", "CA", "C", "O")
# Side-chain atoms ProNet's all-atom level needs for its four side-chain torsions, one slot each; a slot
# takes the first of its names the residue has (upstream OneProt's grouping): CB, gamma, delta, epsilon,
# zeta, and Arg's NH1.
SIDE_CHAIN_SLOTS: tuple[tuple[str, ...], ...] = (
    ("CB",), ("CG", "SG", "OG", "CG1", "OG1"), ("CD", "SD", "CD1", "OD1", "ND1"), ("CE", "NE", "OE1"),
    ("CZ", "NZ"), ("NH1",),
)


def parse_modality(name: str | Modality) -> Modality:
    """Name -> Modality, failing with the list of valid names."""
    if isinstance(name, Modality):
        return name
    try:
        return Modality(str(name).strip().lower())
    except ValueError:
        from engine.errors import OneProtError

        valid = ", ".join(m.value for m in Modality)
        raise OneProtError(f"unknown modality {name!r}; choose one of: {valid}", "modality") from None


@dataclass
class Pocket:
    """A binding pocket on one chain: indices into that chain's residues (0-based)."""

    residues: list[int]
    ligand_code: str = ""  # CCD code, e.g. "NAD"; "" for a predicted pocket with no ligand
    ligand_name: str = ""  # CCD name, e.g. "NICOTINAMIDE-ADENINE-DINUCLEOTIDE"
    source: str = "ligand"  # "ligand" (contacts of a bound ligand), "p2rank", "fpocket", ...
    center: np.ndarray | None = None  # (3,) Angstrom
    ligand_coords: np.ndarray | None = None  # (K, 3) heavy atoms, for display
    ligand_elements: list[str] = field(default_factory=list)
    score: float | None = None  # predictor score where the source gives one


@dataclass
class StructureInput:
    """What the structure and pocket encoders consume: residues with backbone coordinates."""

    sequence: str  # one letter per residue, same length as coords
    coords: np.ndarray  # (L, 4, 3) float32, atoms N, CA, C, O; NaN where an atom is missing
    # Pockets: 0-based indices of the residues lining the pocket. The chain stays whole so the encoder
    # can choose how much surrounding structure it sees (GnnConfig.shell); None: use every residue.
    focus: np.ndarray | None = None
    # (L, 6, 3) float32 side-chain atoms in SIDE_CHAIN_SLOTS order, NaN where absent; None: not read.
    side_chains: np.ndarray | None = None
    center: np.ndarray | None = None  # (3,) pocket centre in Angstrom (ligand centroid / predictor's centre)


@dataclass
class ProteinRecord:
    """One protein (for structures: one chain) with whatever modalities it has.

    Sequence is the anchor and is always present; every other modality is optional.
    """

    id: str
    sequence: str
    name: str = ""
    text: str = ""
    coords: np.ndarray | None = None  # (L, 4, 3) float32, aligned with `sequence`
    residue_numbers: list[str] | None = None  # author numbering incl. insertion codes, e.g. "52A"
    structure_tokens: str | None = None  # Foldseek 3Di, same length as sequence
    pockets: list[Pocket] = field(default_factory=list)
    family: str | None = None
    ec: str | None = None
    organism: str | None = None
    source: str = ""  # where it came from (package / file)
    extra: dict = field(default_factory=dict)

    def modalities(self) -> list[Modality]:
        """The modalities this record can feed."""
        out = [Modality.SEQUENCE]
        if self.coords is not None:
            out.append(Modality.STRUCTURE)
        if self.structure_tokens:
            out.append(Modality.STRUCTURE_TOKENS)
        if self.pockets and self.coords is not None:
            out.append(Modality.POCKET)
        if self.text and self.text.strip():
            out.append(Modality.TEXT)
        return out
