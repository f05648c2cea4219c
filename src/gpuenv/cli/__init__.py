"""The command line: parses flags, calls the stages, and is the only place that prints or exits."""
