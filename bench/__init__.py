"""The benchmark suite (issue 7): `python -m bench --scale 1000000`.

It creates its own PostgreSQL database, generates data at the given scale with set-based SQL, runs each
scenario in a fresh process (so peak RSS is per scenario), checks the inventory invariants after
generation and after every scenario, prints a table and writes JSON. docs/PERFORMANCE.md has the method.
"""
