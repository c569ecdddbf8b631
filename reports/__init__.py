"""matchday reports: the run directory, budget verdicts, gates and renderers.

Reads only run directories (or Locust CSV output) and scenarios; never imports the simulator or
the reference stack, so a verdict cannot depend on which of them produced a run.
"""
