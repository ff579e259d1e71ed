"""One Viewer per page region: map, query, hits, detail (3D structure), align live, evolution, export.

HoloViews is imported on first use (`holoviews()`, `LazyHoloViews`), never at start-up: it costs about a
second of cold start, and the first page (the map) is drawn with plain Bokeh.
"""

from __future__ import annotations

import panel as pn
import param


def holoviews():
    """The holoviews module with its Bokeh backend loaded (imported and set up on the first call)."""
    import holoviews as hv

    if "bokeh" not in hv.Store.renderers:  # views style their plots with bokeh options
        hv.extension("bokeh", logo=False)
    return hv


class LazyHoloViews(pn.viewable.Viewer):
    """A slot for a HoloViews plot: empty until `object` is first set (pn.pane.HoloViews imports holoviews
    as soon as it is made, even empty), then one HoloViews pane whose object follows `object`."""

    object = param.Parameter(default=None, doc="the HoloViews element shown (None: nothing yet)")

    def __init__(self, **params):
        self._layout = pn.Column(sizing_mode="stretch_width")
        self._pane: pn.pane.HoloViews | None = None
        super().__init__(**params)

    @param.depends("object", watch=True)
    def _show(self) -> None:
        if self._pane is None:
            self._pane = pn.pane.HoloViews(self.object, sizing_mode="stretch_width")
            self._layout.objects = [self._pane]
        else:
            self._pane.object = self.object

    def __panel__(self):
        return self._layout
