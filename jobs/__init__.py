"""RQ entry points (a few lines each), the periodic scheduler and the worker command.

A job here looks its rows up by id, calls one service, and returns; the work is in services/.
Jobs run inside an application context that the worker provides (see jobs.worker).
"""
