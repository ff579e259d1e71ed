"""3D structure view: a 3Dmol.js viewer that works offline.

py3Dmol (the Python package) only emits HTML that fetches 3Dmol.js from a CDN, which an offline
machine cannot reach. So the viewer is a Panel JSComponent that loads the 3Dmol-min.js shipped in
explorer/views/static/3dmol (from the npm package `3dmol`, BSD-3; refresh it with
scripts/fetch_3dmol.sh) from Panel's own /components/ route, so a plain `panel serve explorer/app.py`
works with no --static-dirs and no internet. It is listed as `_js` (a name that route serves), not
`__javascript__`: the page does not fetch and parse its 540 kB at start-up, only when a first
structure is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import param
from panel.custom import JSComponent
from panel.io.resources import component_resource_path

from engine.modality import ProteinRecord
from explorer.molecule import backbone_pdb, superpose, transform

if TYPE_CHECKING:
    from engine.evaluate.tmscore import StructureAlignment

# TM-align's time grows with the product of the two lengths: ~0.1 s at 300 x 300 and ~1.1 s at 600 x 570 on the
# 2-core build machine, on the server's event loop that every session shares; larger pairs get the Kabsch fit
MAX_TM_ALIGN_PRODUCT = 400_000
QUERY_COLOUR = "#1f77b4"
HIT_COLOUR = "#ff7f0e"
POCKET_COLOUR = "#d62728"


class MolViewer(JSComponent):
    """A 3Dmol.js canvas showing a list of molecules: [{pdb, color, pocket: [resi], label}]."""

    molecules = param.List(default=[], doc="dicts with pdb text, cartoon colour, pocket residue numbers, label")
    message = param.String(default="", doc="text shown when there is nothing to draw")

    lib_path = param.String(default="", doc="URL of 3Dmol-min.js below the server's root (set below the class)")

    _js = "static/3dmol/3Dmol-min.js"  # served by Panel's component route, fetched on first use

    _esm = """
    export function render({ model, el }) {
      const box = document.createElement('div');
      box.className = 'molviewer';
      box.style.cssText = 'position:relative;width:100%;height:100%;min-height:300px;';
      const note = document.createElement('div');
      note.style.cssText = 'position:absolute;left:8px;top:8px;font:12px sans-serif;color:#555;z-index:2;pointer-events:none;';
      el.appendChild(box); el.appendChild(note);
      let viewer = null;
      function load3Dmol() {  // once per page: a script tag resolved against the URL of Bokeh's own script
        if (typeof $3Dmol !== 'undefined') return Promise.resolve(true);
        if (!window.__oneprot3Dmol) {
          const bokeh = document.querySelector('script[src*="static/js/bokeh"]');
          const root = bokeh ? bokeh.src.replace(/static\/js\/bokeh.*$/, '') : '';
          window.__oneprot3Dmol = new Promise((done) => {
            const s = document.createElement('script');
            s.src = root + model.lib_path;
            s.onload = () => done(true);
            s.onerror = () => done(false);
            document.head.appendChild(s);
          });
        }
        return window.__oneprot3Dmol;
      }
      function draw() {
        const mols = model.molecules || [];
        note.textContent = mols.length ? '' : model.message;  // textContent: never interpreted as HTML
        if (!mols.length && viewer === null) { box.dataset.models = '0'; return; }  // no WebGL context until needed
        if (typeof $3Dmol === 'undefined') {
          note.textContent = 'Loading the 3D viewer…';
          load3Dmol().then((ok) => {
            if (ok && typeof $3Dmol !== 'undefined') { draw(); } else { note.textContent = '3Dmol.js did not load'; }
          });
          return;
        }
        if (viewer === null) {
          viewer = $3Dmol.createViewer(box, { backgroundColor: 'white', antialias: true });
        }
        viewer.clear();
        mols.forEach((m, k) => {
          viewer.addModel(m.pdb, 'pdb');
          const sel = { model: k };
          viewer.setStyle(sel, { cartoon: { color: m.color, opacity: 0.95 } });
          if (m.pocket && m.pocket.length) {
            viewer.setStyle({ model: k, resi: m.pocket },
              { cartoon: { color: m.pocket_color || '#d62728' }, stick: { colorscheme: 'redCarbon', radius: 0.15 } });
          }
          viewer.setStyle({ model: k, hetflag: true }, { stick: { colorscheme: 'greenCarbon', radius: 0.25 } });
        });
        viewer.zoomTo();
        viewer.render();
        box.dataset.models = String(mols.length);  // lets the browser test see that something was drawn
      }
      model.on('molecules', draw);
      model.on('message', draw);
      model.on('after_layout', () => { draw(); if (viewer) { viewer.resize(); viewer.render(); } });
      model.on('resize', () => { if (viewer) { viewer.resize(); viewer.render(); } });
    }
    """


MolViewer.param.lib_path.default = component_resource_path(MolViewer, "_js", MolViewer._js)


def molecule_dict(record: ProteinRecord, colour: str, coords: np.ndarray | None = None, pocket: int | None = 0,
                  r: np.ndarray | None = None, t: np.ndarray | None = None) -> dict:
    """One protein as a viewer entry: backbone PDB (optionally moved by r, t), its pocket and ligand."""
    xyz = record.coords if coords is None else coords
    p = record.pockets[pocket] if (pocket is not None and record.pockets and pocket < len(record.pockets)) else None
    lig = p.ligand_coords if p is not None else None
    if r is not None:
        xyz = transform(xyz, r, t)
        lig = transform(lig, r, t) if lig is not None else None
    pdb = backbone_pdb(record.sequence, xyz, ligand_coords=lig,
                       ligand_elements=p.ligand_elements if p is not None else None,
                       ligand_code=p.ligand_code if p is not None else "LIG")
    return {"pdb": pdb, "color": colour, "label": record.id,
            "pocket": [int(i) + 1 for i in p.residues] if p is not None else []}


def query_and_hit(query: ProteinRecord | None, hit: ProteinRecord | None, superposed: bool = True) -> tuple[list[dict], str]:
    """Viewer entries for a query and a hit, the hit fitted onto the query; plus a caption.

    The fit is TM-align's structural one (engine.evaluate.tmscore.align_structures), so a remote relative
    whose sequence no longer aligns still superposes, and the caption gives its TM-score, normalised by the
    query (above 0.5: mostly the same fold). Beyond MAX_TM_ALIGN_PRODUCT, or with too few CA atoms, it is
    a Kabsch fit on sequence-aligned CA atoms, whose RMSD says little for a distant hit.
    """
    mols, caption = [], ""
    if query is not None and query.coords is not None:
        mols.append(molecule_dict(query, QUERY_COLOUR))
    if hit is not None and hit.coords is not None:
        if superposed and mols:
            fit = structural_fit(hit, query)
            if fit is not None:
                mols.append(molecule_dict(hit, HIT_COLOUR, r=fit.r, t=fit.t))
                caption = (f"hit fitted on the query by TM-align: TM-score {fit.tm_target:.2f} (normalised by the query; "
                           f"above 0.5: mostly the same fold), CA RMSD {fit.rmsd:.2f} Å over {fit.aligned} aligned residues")
            else:
                r, t, rmsd, n = superpose(hit.sequence, hit.coords, query.sequence, query.coords)
                mols.append(molecule_dict(hit, HIT_COLOUR, r=r, t=t))
                caption = f"hit fitted on the query (Kabsch on sequence-aligned CA): RMSD {rmsd:.2f} Å over {n} residues"
        else:
            mols.append(molecule_dict(hit, HIT_COLOUR))
    return mols, caption


def structural_fit(hit: ProteinRecord, query: ProteinRecord) -> StructureAlignment | None:
    """TM-align of the hit's CA trace onto the query's, or None (too long for an interactive fit, or too few CA)."""
    from engine.evaluate.tmscore import fit_chain_on

    if len(hit.sequence) * len(query.sequence) > MAX_TM_ALIGN_PRODUCT:
        return None
    return fit_chain_on(hit, query)
