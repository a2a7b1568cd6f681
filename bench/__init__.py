"""The harness: spec, data, runner, results, report. Imports no deep-learning framework."""
