"""The command line's exit codes, one place for the parser and the commands (part of the admin's interface)."""

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_CONFIG, EXIT_DATABASE, EXIT_MAILSERVER = 0, 1, 2, 3, 4, 5

EPILOG = """exit codes: 0 success; 1 problems found or the command failed; 2 wrong usage;
3 configuration error; 4 database unreachable; 5 mail server unreachable"""
