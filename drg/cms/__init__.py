"""Parsers for the official CMS reference files an operator downloads: pure functions, no I/O
beyond reading the one file given, no database, no network.

- :mod:`drg.cms.sources`: read a file or one member of a CMS zip, check its SHA-256, decode it.
- :mod:`drg.cms.order_file`: the ICD-10-CM order file (``icd10cm_order_YYYY.txt``).
- :mod:`drg.cms.table5`: IPPS Table 5 (MS-DRG relative weights, GMLOS, AMLOS).
- :mod:`drg.cms.rates`: IPPS Tables 1A-1E (national standardized amounts, capital rate).

Every problem with a file is a :class:`drg.exceptions.ReferenceDataError` whose one-line message
names the file and, where it applies, the line and what was expected.
"""
