"""The command line: parse, load config, call one use case, render, exit. The only package that imports click
(``main``: the entry point); ``fast`` answers ``--help`` and ``ci steps`` without it.
"""
