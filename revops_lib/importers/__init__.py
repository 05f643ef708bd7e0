"""Importers: vendor exports (Salesforce, HubSpot, Stripe) mapped to the data contract.

A *mapping* (YAML; presets in ``revops_lib/importers/presets/``) says, per contract table, which input
object it comes from and how each column is made; it is applied as Ibis expressions over the input
tables, so the same mapping can run over CSV exports or a warehouse. See ``docs/mappings.md``.

>>> from revops_lib.importers import import_folder, open_source
>>> import_folder("exports/salesforce", "data/crm", preset="salesforce")   # doctest: +SKIP
>>> open_source("postgres://ana@db/dw", preset="fivetran_salesforce,fivetran_stripe")   # doctest: +SKIP

The ``fivetran_*`` presets read the tables Fivetran lands (schemas ``salesforce``, ``hubspot``, ``stripe``)
at query time, without a copy (:mod:`revops_lib.importers.live`).
"""

from revops_lib.importers.engine import Mapped, Unmapped, apply_mapping
from revops_lib.importers.live import (
    MappedSource,
    import_folder,
    load_mappings,
    open_mapped_source,
    open_source,
    preset_items,
)
from revops_lib.importers.mapping import Mapping, MappingError, load_mapping, preset_names
from revops_lib.importers.run import ImportResult, open_mapped, read_folder

__all__ = ["Mapping", "MappingError", "load_mapping", "preset_names", "apply_mapping", "Mapped", "Unmapped",
           "import_folder", "open_mapped", "read_folder", "ImportResult", "open_source", "open_mapped_source",
           "MappedSource", "load_mappings", "preset_items"]
