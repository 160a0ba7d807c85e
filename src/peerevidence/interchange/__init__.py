"""Importers and exporters: the formats of the field.

* :mod:`.csvsafe`   one CSV writer for every export, escaping cells a spreadsheet would run
* :mod:`.exporters` RIS, CSL-JSON, RevMan study-centric CSVs, robvis CSVs, the evidence
                    table with metafor's columns (``write_exports``)
* :mod:`.importers` metafor-style CSV, RevMan data-package analysis CSV, RevMan study-centric
                    CSVs, RIS -> draft records / BibTeX, every number with its row and column
"""
