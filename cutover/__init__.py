"""The command line and the wiring: settings, the worker loop, the demo simulator."""
