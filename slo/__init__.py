"""The plan model and the judge.  Pure: no I/O, no clock, no project imports."""
