"""Test harness for upload-portal's integration and end-to-end tests.

Python 3 standard library only. It starts throwaway PostgreSQL clusters (and
PgBouncer in front of them) and real `upload-portal serve` processes, and
talks to them over real sockets. The parts live in their own modules; this
one gathers their public names, which the tests import from here:

    PostgresCluster  a PostgreSQL 15 cluster in a temporary directory
                     (pg_cluster.py)
    PgBouncer        PgBouncer in transaction mode in front of a cluster
                     (pgbouncer.py)
    Portal           the binary (env PORTAL_BINARY) with its own data dir;
                     checks every server's exit status and sanitizer reports
                     when it is cleaned up (portal_server.py)
    PortalTestCase   a unittest base class: one cluster + one migrated,
                     listening server per TestCase class, always cleaned up
                     (portal_case.py)
    wait_until       poll a condition with a deadline (never sleep to sync)
                     (throwaway.py)

Everything started here is also registered for an atexit clean-up, so an
aborted run does not leave postmasters, poolers or servers behind.
"""

from pg_cluster import DURABLE_SETTINGS, FAST_SETTINGS, PG_BIN, PG_TOOLS, PostgresCluster
from pgbouncer import PgBouncer
from pgbouncer import available as pgbouncer_available
from portal_case import PortalTestCase
from portal_server import (SANITIZER_MARKERS, Portal, build_info, parse_http_response,
                           read_until_closed, sanitizer_lines, scrubbed_environ, token_secret)
from throwaway import free_port, is_root, wait_until

__all__ = [
    "DURABLE_SETTINGS", "FAST_SETTINGS", "PG_BIN", "PG_TOOLS", "PostgresCluster",
    "PgBouncer", "pgbouncer_available",
    "PortalTestCase",
    "SANITIZER_MARKERS", "Portal", "build_info", "parse_http_response", "read_until_closed", "sanitizer_lines",
    "scrubbed_environ", "token_secret",
    "free_port", "is_root", "wait_until",
]
