"""`python -m chaos [--minutes N] [--seed S]`: see chaos/__init__.py."""

from chaos.run import main

raise SystemExit(main())
