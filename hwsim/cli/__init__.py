"""The ``hwsim`` command line: each subcommand chains the library's calls."""
