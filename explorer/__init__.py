"""The OneProt explorer: a Panel dashboard over the engine (serve with `python -m explorer` or `panel serve explorer/app.py`)."""
