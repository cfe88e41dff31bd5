"""``python -m bayes_alliance.cli``: the same as the ``bayes-alliance`` command."""

from bayes_alliance.cli.app import main

raise SystemExit(main())
