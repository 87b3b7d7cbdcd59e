"""``python -m worker`` is the ``claimcoder`` command."""

from worker.cli import main

main()
