"""``python -m kg`` is the ``cartkg`` command."""

from kg.cli import main

raise SystemExit(main())
