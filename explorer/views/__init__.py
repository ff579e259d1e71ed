"""One Viewer per page region: map, query, hits, detail (3D structure), align live, evolution, export."""

import holoviews as hv

if "bokeh" not in hv.Store.renderers:  # views style their plots with bokeh options, even when used alone
    hv.extension("bokeh", logo=False)
