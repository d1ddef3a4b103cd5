"""`python -m hil`: the hil command."""

from hil.commands.cli import main

raise SystemExit(main())
