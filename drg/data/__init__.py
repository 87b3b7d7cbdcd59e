"""Reference data shipped with claimcoder: see README.md in this folder for where each file
comes from and how it was converted."""
