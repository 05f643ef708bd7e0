"""Charts: ``plot_<thing>(data, *, ax=None) -> Axes``, one module per report, the theme in :mod:`.base`."""
