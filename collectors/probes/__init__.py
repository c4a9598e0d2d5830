"""Probes: measure what the seed's criteria ask and no metric gives (``slo.probes`` says
what each kind means and how results are judged).  One module per kind, each offering
``run(spec, ctx) -> Outcome``; :mod:`collectors.probes.runner` runs the due ones."""
