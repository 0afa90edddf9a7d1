"""Testing automation: run configured suites with timeouts, keep JUnit results, find flaky tests.

No imports here: the deployment gate imports ``results`` alone.
"""
