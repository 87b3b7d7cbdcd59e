"""ICD-10-CM's own conventions applied to a claim's codes: the tabular list's instructional notes
per release (:mod:`drg.conventions.notes`) and the rules built on them
(:mod:`drg.conventions.rules`)."""
