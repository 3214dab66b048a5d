"""The `heartbeats` command line: click commands over the client library.

The only package that imports click. Commands parse options, call library functions (the same
ones the HTTP API calls) and print; the project's errors become one-line `error: ...` messages with
exit status 1, never a traceback.
"""
