"""One module per ``edge-triage`` subcommand: ``add_arguments(parser)`` and ``run(args)``."""
