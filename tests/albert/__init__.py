"""Tests of the ALBERT tree the tool builds: its scripts run as users run them, its modules,
Horovod, Habana's ops, and learning on tiny tasks."""
