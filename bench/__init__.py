"""The harness: CLI, planning, runner, environments, results, statistics, metric catalogue, report. It imports no
deep-learning framework; what runs inside a framework's environment is the `frameworks` package."""
