"""``python -m needlecheck`` and the ``needlecheck`` console script.

The command's modules read data tables while they are imported (a prefetch template names every spelling of
CPT, for one), so a damaged installation can fail before ``cli.main`` runs: it still gets one line and exit 2.
"""

import sys

from needlecheck.mappings.errors import MappingError

EXIT_INVALID = 2


def main() -> int:
    """Run the command; a data file that cannot be loaded while importing it is one line on stderr, exit 2."""
    try:
        from needlecheck.cds_hooks.cli import main as command
    except MappingError as error:
        print(f"needlecheck: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_INVALID
    return command()


if __name__ == "__main__":
    sys.exit(main())
