"""Programs the tests run in their own interpreter (`python -m tests.programs.NAME ARGS...` from
the repository root): real modules, so the linter reads them like any other code."""
